//! The Medusa plugin (`packages/medusa`) runs its own Node tests against this build's binary,
//! then the Medusa suite (`tests/medusa`) installs it from its `npm pack` tarball into a real
//! Medusa shop and drives the admin dashboard in a real headless Chromium.

use std::process::Command;

use crate::helpers::{one_chromium_suite_at_a_time, require};

#[test]
fn the_medusa_plugin_keeps_a_real_admin_dashboard_live() {
    // Check every program, so a developer machine reports all that is missing at once.
    let found = ["npm", "psql", "chromium"].map(require);
    if found.contains(&false) {
        return;
    }
    let _alone = one_chromium_suite_at_a_time();
    let status = Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/medusa/run.sh"))
        .env("ADMIN_PUSH_BIN", env!("CARGO_BIN_EXE_admin-push"))
        .status()
        .expect("run.sh runs");
    assert!(status.success(), "the Medusa suite failed (output above)");
}
