//! The browser suite (`tests/browser`) drives a real headless Chromium, through a real nginx (in
//! front of two instances on a real Redis too), against this build's binary.

use crate::helpers::{one_chromium_suite_at_a_time, run_script_suite};

#[test]
fn a_real_browser_passes_the_browser_suite() {
    let _alone = one_chromium_suite_at_a_time();
    run_script_suite(
        "tests/browser/run.sh",
        &["chromium", "nginx", "npm", "redis-server"],
        "the browser suite",
    );
}
