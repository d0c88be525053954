//! The Medusa plugin (`packages/medusa`) runs its own Node tests against this build's binary,
//! then the Medusa suite (`tests/medusa`) installs it from its `npm pack` tarball into a real
//! Medusa shop and drives the admin dashboard in a real headless Chromium. The shop's database is
//! on a PostgreSQL server the suite starts for itself from Debian's `postgresql` package
//! (`tests/medusa/lib/postgres.sh` finds its `initdb`, `pg_ctl` and `postgres`, which are off
//! PATH). `pg_config` stands for that package here: it comes with it, on PATH. Its presence test
//! across two instances of the service starts a `redis-server` of its own for their backplane.

use crate::helpers::{one_chromium_suite_at_a_time, run_script_suite};

#[test]
fn the_medusa_plugin_keeps_a_real_admin_dashboard_live() {
    let _alone = one_chromium_suite_at_a_time();
    run_script_suite(
        "tests/medusa/run.sh",
        &["npm", "pg_config", "chromium", "redis-server"],
        "the Medusa suite",
    );
}
