//! The browser client ships twice: as the npm package `@admin-push/client` (`packages/client`)
//! and embedded in the binary at `/static/admin-push.js`. The served file must be the package's
//! module byte for byte, and the package's own Node tests (types and logic) run against this
//! build's binary.

use crate::helpers::{run_script_suite, spawn_app};

const PACKAGE_MODULE: &str = include_str!("../../packages/client/admin-push.js");

#[tokio::test]
async fn the_served_client_is_the_npm_package_module() {
    let app = spawn_app().await;
    let served = app.get("/static/admin-push.js").await;
    assert_eq!(served.status(), 200);
    assert!(
        served.text().await.expect("body") == PACKAGE_MODULE,
        "/static/admin-push.js is not packages/client/admin-push.js"
    );
}

#[test]
fn the_client_package_passes_its_type_checks_and_node_tests() {
    run_script_suite(
        "packages/client/run-tests.sh",
        &["npm"],
        "the client package's tests",
    );
}
