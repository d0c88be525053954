//! The browser suite (`tests/browser`) drives a real headless Chromium, through a real nginx,
//! against this build's binary.

use std::process::Command;

use crate::helpers::{one_chromium_suite_at_a_time, require};

#[test]
fn a_real_browser_passes_the_browser_suite() {
    // Check all three, so a developer machine reports every missing program at once.
    let found = ["chromium", "nginx", "npm"].map(require);
    if found.contains(&false) {
        return;
    }
    let _alone = one_chromium_suite_at_a_time();
    let status = Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/run.sh"))
        .env("ADMIN_PUSH_BIN", env!("CARGO_BIN_EXE_admin-push"))
        .status()
        .expect("run.sh runs");
    assert!(status.success(), "the browser suite failed (output above)");
}
