#!/usr/bin/env bash
# The Medusa suite: @admin-push/medusa's own tests, then the plugin packed with `npm pack` and
# installed from that tarball into a minimal Medusa shop (tests/medusa/shop) on a throwaway
# PostgreSQL database, the admin dashboard built, and headless Chromium driving it against the
# real admin-push binary.
# Usage: ADMIN_PUSH_BIN=target/debug/admin-push tests/medusa/run.sh [extra node --test args]
# PostgreSQL: PGHOST/PGPORT/PGUSER as for psql (default 127.0.0.1:5432, user postgres).
set -euo pipefail

# Absolute, before any cd: a relative path means the caller's directory.
ADMIN_PUSH_BIN="$(realpath "${ADMIN_PUSH_BIN:?must point at a built admin-push binary}")"
export ADMIN_PUSH_BIN

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
plugin="$here/../../packages/medusa"
shop="$here/shop"
export PGHOST="${PGHOST:-127.0.0.1}" PGPORT="${PGPORT:-5432}" PGUSER="${PGUSER:-postgres}"
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 MEDUSA_DISABLE_TELEMETRY=true

step() { echo "--- [medusa suite ${SECONDS}s] $*"; }

# `npm ci` wipes node_modules (a minute or two for Medusa's), so skip it while the lockfile and
# the bundled client are what the last install saw. A fresh clone always installs.
install() {
  local dir="$1" stamp sum
  stamp="$dir/node_modules/.admin-push-installed"
  sum="$(cat "$dir/package-lock.json" "${@:2}" | sha256sum | cut -d' ' -f1)"
  if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$sum" ]]; then
    step "npm ci in ${dir#"$here/../../"}"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$sum" >"$stamp"
  fi
}

install "$here"
install "$plugin" "$plugin/../client/admin-push.js" "$plugin/../client/package.json"
install "$shop"

# The plugin's unit tests and its tests against the real service.
step "plugin tests"
(cd "$plugin" && npm test)

# As a shop would get it: the packed tarball (`prepack` builds it), installed with npm.
work="$(mktemp -d)"
db="admin_push_e2e_$$_$(date +%s)"
cleanup() {
  psql -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

step "npm pack"
(cd "$plugin" && npm pack --pack-destination "$work" --loglevel=error >/dev/null)
step "npm install the tarball into the shop"
(cd "$shop" && npm install --no-save --no-audit --no-fund --loglevel=error "$work"/admin-push-medusa-*.tgz)

export ADMIN_PUSH_SECRET="e2e-emit-secret-0123456789abcdef0123456789"
export ADMIN_PUSH_JWT_SECRET="e2e-token-secret-0123456789abcdef0123456789"
export DATABASE_URL="postgres://${PGUSER}@${PGHOST}:${PGPORT}/${db}"
medusa="$shop/node_modules/.bin/medusa"

step "database $db: create, migrate, admin user"
psql -q -d postgres -c "CREATE DATABASE $db" >/dev/null
(cd "$shop" && "$medusa" db:migrate >"$work/migrate.log" 2>&1) || { cat "$work/migrate.log"; exit 1; }
(cd "$shop" && "$medusa" user -e admin@example.com -p e2e-admin-password >"$work/user.log" 2>&1) ||
  { cat "$work/user.log"; exit 1; }

step "medusa build (server and admin dashboard)"
(cd "$shop" && "$medusa" build >"$work/build.log" 2>&1) || { cat "$work/build.log"; exit 1; }
# `medusa start` runs from the build output, which in production gets its own `npm install`;
# here it borrows the shop's node_modules.
ln -sfn ../../node_modules "$shop/.medusa/server/node_modules"

step "browser tests"
cd "$here"
MEDUSA_BIN="$medusa" MEDUSA_SERVER_DIR="$shop/.medusa/server" \
  node --test --test-concurrency=1 "$@" tests/*.test.mjs
step "done"
