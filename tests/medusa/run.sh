#!/usr/bin/env bash
# The Medusa suite: @admin-push/medusa's own tests, then the plugin packed with `npm pack` and
# installed from that tarball into a minimal Medusa shop (tests/medusa/shop) on a throwaway
# PostgreSQL server of the suite's own (lib/postgres.sh), the admin dashboard built, and headless
# Chromium driving it against the real admin-push binary.
# Usage: ADMIN_PUSH_BIN=target/debug/admin-push tests/medusa/run.sh [extra node --test args]
# MEDUSA_SUITE_FILES (e.g. "tests/every-screen.test.mjs") runs only those browser test files.
#
# What only depends on the plugin, the client it bundles and the shop (the packed tarball, the
# shop's install of it, `medusa build`'s output, and a migrated database with the admin user) is
# kept between runs, under a hash of every file it is made from, so a second run with nothing
# changed goes straight to the browser tests. Any change to those files makes all of it again.
set -euo pipefail

# Absolute, before any cd: a relative path means the caller's directory.
ADMIN_PUSH_BIN="$(realpath "${ADMIN_PUSH_BIN:?must point at a built admin-push binary}")"
export ADMIN_PUSH_BIN

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
plugin="$repo/packages/medusa"
shop="$here/shop"
# Medusa's database client would take any of these as defaults: the suite talks to its own server.
unset "${!PG@}"
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 MEDUSA_DISABLE_TELEMETRY=true

step() { echo "--- [medusa suite ${SECONDS}s] $*"; }

# `npm ci` wipes node_modules (a minute or two for Medusa's), so skip it while the lockfile and
# the bundled client are what the last install saw. A fresh clone always installs.
install() {
  local dir="$1" stamp sum
  stamp="$dir/node_modules/.admin-push-installed"
  sum="$(cat "$dir/package-lock.json" "${@:2}" | sha256sum | cut -d' ' -f1)"
  if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$sum" ]]; then
    step "npm ci in ${dir#"$repo/"}"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$sum" >"$stamp"
  fi
}

install "$here"
install "$plugin" "$plugin/../client/admin-push.js" "$plugin/../client/package.json"
install "$shop"

# shellcheck source=tests/medusa/lib/postgres.sh
source "$here/lib/postgres.sh"

work="$(mktemp -d)"
pg_work="$(pg_dir)"
template=""
cache=""
cleanup() {
  pg_stop
  rm -rf "$work" "$pg_work" "$template"
  # What a failed run had half-written into the cache.
  [[ -z $cache ]] || rm -rf "$cache/pack.$$" "$cache/pgdata.$$"
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# The plugin's unit tests and its tests against the real service.
step "plugin tests"
(cd "$plugin" && npm test)

# Everything the tarball, the shop's install of it, the build and the migrated database are made
# from: the plugin and the client it bundles (sources, package files, lockfiles), the shop, this
# script, and the versions of node, npm and PostgreSQL. File contents, not times.
key="$(
  {
    echo "node $(node --version) npm $(npm --version) $("$PG_BIN/postgres" --version)"
    cd "$repo" && find packages/client packages/medusa tests/medusa/shop tests/medusa/run.sh \
      tests/medusa/lib/postgres.sh \( -name node_modules -o -name .medusa \) -prune \
      -o -type f ! -name '*.tgz' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
  } | sha256sum | cut -c1-20
)"
cache_root="${CARGO_TARGET_DIR:-$repo/target}/medusa-suite"
cache="$cache_root/$key"
mkdir -p "$cache"
touch "$cache"
# Entries for other keys go once nothing has used them for a while (another run of the suite in
# the same tree, at another state of its files, may be using one right now).
find "$cache_root" -mindepth 1 -maxdepth 1 ! -name "$key" -mmin +30 -exec rm -rf {} +
installed_stamp="$shop/node_modules/@admin-push/medusa/.admin-push-suite-key"
built_stamp="$shop/.medusa/.admin-push-suite-key"
step "cache $cache"

# As a shop would get it: the packed tarball (`prepack` builds it), installed with npm.
if [[ ! -d $cache/pack ]]; then
  step "npm pack"
  rm -rf "$cache/pack.$$"
  mkdir "$cache/pack.$$"
  (cd "$plugin" && npm pack --pack-destination "$cache/pack.$$" --loglevel=error >/dev/null)
  mv -T "$cache/pack.$$" "$cache/pack" 2>/dev/null || rm -rf "$cache/pack.$$"
fi
if [[ "$(cat "$installed_stamp" 2>/dev/null)" != "$key" ]]; then
  step "npm install the tarball into the shop"
  rm -f "$installed_stamp" "$built_stamp"
  (cd "$shop" && npm install --no-save --no-audit --no-fund --loglevel=error "$cache"/pack/admin-push-medusa-*.tgz)
  echo "$key" >"$installed_stamp"
fi

export ADMIN_PUSH_SECRET="e2e-emit-secret-0123456789abcdef0123456789"
export ADMIN_PUSH_JWT_SECRET="e2e-token-secret-0123456789abcdef0123456789"
medusa="$shop/node_modules/.bin/medusa"
db=admin_push_e2e

# A migrated database with the admin user, made once per key on a server of its own and kept as
# its stopped data directory; each run serves a fresh copy of it.
if [[ ! -d $cache/pgdata ]]; then
  step "database: initdb, create, migrate, admin user"
  template="$(pg_dir)"
  pg_init "$template/data"
  pg_start "$template/data"
  export DATABASE_URL="postgres://postgres@127.0.0.1:${PG_PORT}/${db}"
  "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres "$db"
  (cd "$shop" && "$medusa" db:migrate >"$work/migrate.log" 2>&1) || { cat "$work/migrate.log"; exit 1; }
  (cd "$shop" && "$medusa" user -e admin@example.com -p e2e-admin-password >"$work/user.log" 2>&1) ||
    { cat "$work/user.log"; exit 1; }
  pg_stop
  rm -rf "$cache/pgdata.$$"
  cp -a "$template/data" "$cache/pgdata.$$"
  rm -rf "$template"
  template=""
  mv -T "$cache/pgdata.$$" "$cache/pgdata" 2>/dev/null || rm -rf "$cache/pgdata.$$"
fi
step "PostgreSQL: a fresh copy of the migrated database"
cp -a "$cache/pgdata" "$pg_work/data"
pg_start "$pg_work/data"
export DATABASE_URL="postgres://postgres@127.0.0.1:${PG_PORT}/${db}"

if [[ "$(cat "$built_stamp" 2>/dev/null)" != "$key" ]]; then
  step "medusa build (server and admin dashboard)"
  rm -f "$built_stamp"
  (cd "$shop" && "$medusa" build >"$work/build.log" 2>&1) || { cat "$work/build.log"; exit 1; }
  echo "$key" >"$built_stamp"
fi
# `medusa start` runs from the build output, which in production gets its own `npm install`;
# here it borrows the shop's node_modules.
ln -sfn ../../node_modules "$shop/.medusa/server/node_modules"

step "browser tests"
cd "$here"
MEDUSA_BIN="$medusa" MEDUSA_SERVER_DIR="$shop/.medusa/server" \
  node --test --test-concurrency=1 "$@" ${MEDUSA_SUITE_FILES:-tests/*.test.mjs}
step "done"
