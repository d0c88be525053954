//! The end of every `cargo test`: which checks were skipped for want of an outside program, and
//! how to get each one; under CI, where nothing may be skipped, a failure naming them.

use std::process::ExitCode;

use admin_push_prerequisites::{missing, under_ci};

fn main() -> ExitCode {
    let missing = missing();
    if missing.is_empty() {
        println!(
            "\nprerequisites: every outside program the suite uses is installed; nothing was skipped\n"
        );
        return ExitCode::SUCCESS;
    }
    let mut summary = format!(
        "\n!!! {} outside program(s) missing: these checks were SKIPPED, not passed !!!\n",
        missing.len()
    );
    for program in &missing {
        summary.push_str(&format!(
            "  - {}: `{}` missing; install: {}\n",
            program.needed_by, program.name, program.install
        ));
    }
    summary.push_str("  (.ci/run installs all of them)\n");
    eprintln!("{summary}");
    if under_ci() {
        eprintln!("CI is set: a skipped check is a failure");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
