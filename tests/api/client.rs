//! The browser client ships twice: as the npm package `@admin-push/client` (`packages/client`)
//! and embedded in the binary at `/static/admin-push.js`. Both must be the same file, and the
//! package's own Node tests (types and logic) run against this build's binary.

use std::process::Command;

use crate::helpers::require;

const PACKAGE_MODULE: &str = include_str!("../../packages/client/admin-push.js");
const SERVED_MODULE: &str = include_str!("../../static/admin-push.js");

#[test]
fn the_served_client_is_the_npm_package_module() {
    assert!(
        PACKAGE_MODULE == SERVED_MODULE,
        "static/admin-push.js differs from packages/client/admin-push.js; the package is the \
         source: cp packages/client/admin-push.js static/admin-push.js"
    );
}

#[test]
fn the_client_package_passes_its_type_checks_and_node_tests() {
    if !require("npm") {
        return;
    }
    let status = Command::new("bash")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/packages/client/run-tests.sh"
        ))
        .env("ADMIN_PUSH_BIN", env!("CARGO_BIN_EXE_admin-push"))
        .status()
        .expect("run-tests.sh runs");
    assert!(
        status.success(),
        "the client package's tests failed (output above)"
    );
}
