#!/usr/bin/env bash
# Test the Medusa kit: unit tests always; integration tests against the real
# service when ADMIN_PUSH_BIN points at a built admin-push binary (required
# when CI is set). Usage: ADMIN_PUSH_BIN=target/debug/admin-push examples/medusa/run-tests.sh
set -euo pipefail

# Resolve a relative binary path against the caller's directory before cd.
if [[ -n "${ADMIN_PUSH_BIN:-}" && "${ADMIN_PUSH_BIN}" != /* ]]; then
  ADMIN_PUSH_BIN="$(pwd)/${ADMIN_PUSH_BIN}"
  export ADMIN_PUSH_BIN
fi

cd "$(dirname "${BASH_SOURCE[0]}")"

if [[ -f package-lock.json ]]; then
  npm ci --no-audit --no-fund
else
  npm install --no-audit --no-fund
fi

# The hook test runs the service's browser client, which needs a global
# WebSocket: built in from Node 22, behind a flag in Node 20.
if ! node -e 'process.exit(typeof WebSocket === "function" ? 0 : 1)'; then
  export NODE_OPTIONS="--experimental-websocket ${NODE_OPTIONS:-}"
fi

npx --no-install tsc -p tsconfig.json
npx --no-install tsx --test test/*.test.ts
