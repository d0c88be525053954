//! Keeps the load tool working: a few hundred real connections for a second, zero loss required.
//! (Its figures are for BENCHMARKS.md, never asserted here.)

use std::process::Command;

#[test]
fn the_load_tool_smoke_run_delivers_everything() {
    let output = Command::new(env!("CARGO_BIN_EXE_admin-push-bench"))
        .args([
            "--smoke",
            "--spawn-server",
            env!("CARGO_BIN_EXE_admin-push"),
        ])
        .output()
        .expect("the load tool runs");
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "smoke run failed: {report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line: serde_json::Value = serde_json::from_str(report.trim()).expect("one JSON line");
    assert_eq!(line["lost"], 0, "{line}");
}
