//! Build metadata for `--version`, the start log line and `threeport_build_info`: the git
//! commit (when built from a checkout; `unknown` otherwise, e.g. in the container build) and
//! the compiler version.

use std::path::Path;
use std::process::Command;

fn output_of(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

fn main() {
    // A build without a checkout (the container image) can pass the commit in.
    println!("cargo:rerun-if-env-changed=THREEPORT_MANAGER_GIT_SHA");
    let sha = std::env::var("THREEPORT_MANAGER_GIT_SHA")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| output_of("git", &["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".into());
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustc = output_of(&rustc, &["--version"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=THREEPORT_MANAGER_GIT_SHA={sha}");
    println!("cargo:rustc-env=THREEPORT_MANAGER_RUSTC={rustc}");
    println!("cargo:rerun-if-changed=build.rs");
    // A new commit moves the branch ref HEAD points to; a checkout moves HEAD itself.
    let head = Path::new(".git/HEAD");
    if head.exists() {
        println!("cargo:rerun-if-changed=.git/HEAD");
        if let Some(reference) = std::fs::read_to_string(head)
            .ok()
            .and_then(|h| h.strip_prefix("ref: ").map(|r| r.trim().to_string()))
        {
            let path = Path::new(".git").join(reference);
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
}
