//! The Medusa kit (`examples/medusa`) runs its own Node tests against this build's binary.

use std::process::Command;

use crate::helpers::require;

#[test]
fn the_medusa_kit_passes_its_tests_against_the_real_service() {
    if !require("npm") {
        return;
    }
    let status = Command::new("bash")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/medusa/run-tests.sh"
        ))
        .env("ADMIN_PUSH_BIN", env!("CARGO_BIN_EXE_admin-push"))
        .status()
        .expect("run-tests.sh runs");
    assert!(status.success(), "the kit's tests failed (output above)");
}
