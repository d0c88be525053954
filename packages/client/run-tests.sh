#!/usr/bin/env bash
# The package's own checks: its published types with tsc, the module itself with tsc's JS
# checker, then its Node tests against a real admin-push binary.
# Usage: ADMIN_PUSH_BIN=target/debug/admin-push packages/client/run-tests.sh
set -euo pipefail

# Absolute, before any cd: a relative path means the caller's directory.
ADMIN_PUSH_BIN="$(realpath "${ADMIN_PUSH_BIN:?must point at a built admin-push binary}")"
export ADMIN_PUSH_BIN

cd "$(dirname "${BASH_SOURCE[0]}")"
npm ci --no-audit --no-fund --loglevel=error
npx --no-install tsc -p tsconfig.json
npx --no-install tsc -p tsconfig.module.json

# The client needs a global WebSocket: built in from Node 22, behind a flag in Node 20.
if ! node -e 'process.exit(typeof WebSocket === "function" ? 0 : 1)'; then
  export NODE_OPTIONS="--experimental-websocket ${NODE_OPTIONS:-}"
fi
exec node --test --test-concurrency=1 "$@" test/*.test.mjs
