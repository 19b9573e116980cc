//! SIGTERM / SIGINT handling: the first signal starts a graceful shutdown, a second one exits at
//! once (README, "Admin endpoints and metrics"). Unlike Threeport's controllers, SIGTERM really stops the process
//! (spec 1.11, 4.1 #7).

use tracing::{error, warn};

/// Wait for SIGTERM or SIGINT. Returns the signal's name.
pub async fn first_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => "SIGTERM",
                    _ = int.recv() => "SIGINT",
                }
            }
            _ => {
                error!("cannot install signal handlers; falling back to Ctrl-C only");
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "SIGINT"
    }
}

/// After the first signal: exit immediately on the next one.
pub fn exit_on_second_signal() {
    tokio::spawn(async {
        let sig = first_signal().await;
        warn!(signal = sig, "second signal: exiting immediately");
        std::process::exit(130);
    });
}
