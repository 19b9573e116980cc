//! The helm-workload controller (spec 3.5): Helm releases of a chart on runtimes, driven by the
//! helm CLI.
//!
//! In progress (issue 14), not registered yet (`--enable helm-workload` exits 2). Built so far:
//! [`post_render`], the post-renderer helm runs on every install and upgrade (`helm ...
//! --post-renderer threeport-manager --post-renderer-args helm-post-render ...`): Threeport's
//! labels on every object, the definition's and instance's additional resources appended,
//! without Threeport's data loss (spec 4.5 item 37).

pub mod post_render;
pub mod release;
