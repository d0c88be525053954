#!/usr/bin/env bash
# The browser suite: the real admin-push binary, a real nginx and the system's headless Chromium
# (driven by playwright-core; no browser is ever downloaded).
# Usage: ADMIN_PUSH_BIN=target/debug/admin-push tests/browser/run.sh [extra node --test args]
set -euo pipefail

# Absolute, before any cd: a relative path means the caller's directory.
ADMIN_PUSH_BIN="$(realpath "${ADMIN_PUSH_BIN:?must point at a built admin-push binary}")"
export ADMIN_PUSH_BIN

cd "$(dirname "${BASH_SOURCE[0]}")"

export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
npm ci --no-audit --no-fund --loglevel=error

# One file at a time: the timing assertions should not compete with other Chromiums for the CPU.
exec node --test --test-concurrency=1 "$@" tests/*.test.mjs
