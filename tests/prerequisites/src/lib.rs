//! The outside programs the test suite uses for real (never mocked), what each one is needed for,
//! and how to get it: one table, read both by the tests that need a program (`require` in the
//! integration tests) and by the summary that ends every `cargo test`.
//!
//! Why a crate of its own: the summary must be the last thing `cargo test` prints, and a test
//! binary of the workspace's last member runs after every other one. A skip that only a test's
//! captured output mentions is invisible in a passing run; this table makes every skip named,
//! with the program that was missing and how to install it.

use std::path::Path;

/// An outside program some tests need.
#[derive(Debug)]
pub struct Program {
    pub name: &'static str,
    /// How to install it (on Debian, as `.ci/run` does).
    pub install: &'static str,
    /// What is skipped without it.
    pub needed_by: &'static str,
}

/// Every outside program the suite checks for. `.ci/run` installs all of them.
pub const PROGRAMS: &[Program] = &[
    Program {
        name: "redis-server",
        install: "apt-get install redis-server",
        needed_by: "every Redis backplane test, and the browser and Medusa suites",
    },
    Program {
        name: "redis-cli",
        install: "apt-get install redis-tools",
        needed_by: "the Redis Cluster tests",
    },
    Program {
        name: "redis-sentinel",
        install: "apt-get install redis-sentinel",
        needed_by: "the Redis Sentinel failover tests",
    },
    Program {
        name: "openssl",
        install: "apt-get install openssl",
        needed_by: "the TLS-to-Redis test",
    },
    Program {
        name: "npm",
        install: "apt-get install nodejs npm",
        needed_by: "the client package, browser and Medusa suites",
    },
    Program {
        name: "chromium",
        install: "apt-get install chromium",
        needed_by: "the browser and Medusa suites",
    },
    Program {
        name: "nginx",
        install: "apt-get install nginx",
        needed_by: "the browser suite's proxy tests and the nginx recipe test",
    },
    Program {
        name: "pg_config",
        install: "apt-get install postgresql (the suite starts its own server)",
        needed_by: "the Medusa suite",
    },
    Program {
        name: "caddy",
        install: "apt-get install caddy",
        needed_by: "the Caddy recipe test",
    },
    Program {
        name: "systemd-analyze",
        install: "apt-get install systemd",
        needed_by: "the systemd unit test",
    },
    Program {
        name: "kubernetes-validate",
        install: "pip install kubernetes-validate (in a venv; see .ci/run)",
        needed_by: "the Kubernetes manifests' schema check",
    },
    Program {
        name: "podman",
        install: "apt-get install podman",
        needed_by: "the container image test",
    },
    Program {
        name: "runc",
        install: "apt-get install runc",
        needed_by: "the container image test",
    },
    Program {
        name: "debootstrap",
        install: "apt-get install debootstrap",
        needed_by: "the container image test",
    },
];

/// The table's entry for `name`; a program missing from the table is a mistake in the suite.
pub fn program(name: &str) -> &'static Program {
    PROGRAMS
        .iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("`{name}` is not in the prerequisites table; add it there"))
}

/// Whether `name` is an executable file on `PATH`.
pub fn installed(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| is_executable(&dir.join(name))))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The programs of the table that are not installed.
pub fn missing() -> Vec<&'static Program> {
    PROGRAMS.iter().filter(|p| !installed(p.name)).collect()
}

/// Whether this run is CI's, where nothing may be skipped.
pub fn under_ci() -> bool {
    std::env::var_os("CI").is_some()
}

/// The line a test prints, past the test harness's capture, when it skips for want of `program`.
pub fn skip_line(program: &Program) -> String {
    format!(
        "SKIPPED {}: `{}` is not installed ({})\n",
        program.needed_by, program.name, program.install
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_program_on_path_is_installed_and_a_made_up_one_is_not() {
        assert!(installed("sh"));
        assert!(!installed("no-such-program-anywhere"));
    }

    #[test]
    #[should_panic(expected = "not in the prerequisites table")]
    fn a_program_missing_from_the_table_is_a_mistake_in_the_suite() {
        program("no-such-program-anywhere");
    }

    #[test]
    fn the_skip_line_names_the_program_and_how_to_get_it() {
        let line = skip_line(program("caddy"));
        assert!(line.contains("`caddy`") && line.contains("apt-get install caddy"));
    }
}
