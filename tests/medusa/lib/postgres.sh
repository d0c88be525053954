# shellcheck shell=bash
# A throwaway PostgreSQL server of the suite's own, sourced by tests/medusa/run.sh: Debian's
# `postgresql` package binaries, a data directory it is given, a free port on 127.0.0.1 (its unix
# socket beside the data directory), trust auth, stopped by its pid. It never looks at a server
# someone else is running, nor at PGHOST/PGPORT.
#
# initdb and postgres refuse to run as root (CI runs as root): then they run as the `postgres`
# user that Debian's package creates, and the directories they write belong to it.

# The directory holding initdb, pg_ctl, postgres and createdb: from PATH, else from
# `pg_config --bindir`, else the newest /usr/lib/postgresql/*/bin (Debian keeps them off PATH).
pg_find_bindir() {
  local dir candidates=()
  if dir="$(command -v initdb)"; then candidates+=("$(dirname "$(realpath "$dir")")"); fi
  if dir="$(pg_config --bindir 2>/dev/null)"; then candidates+=("$dir"); fi
  while IFS= read -r dir; do candidates+=("$dir"); done \
    < <(printf '%s\n' /usr/lib/postgresql/*/bin | sort -rV)
  for dir in "${candidates[@]}"; do
    if [[ -x $dir/initdb && -x $dir/pg_ctl && -x $dir/postgres && -x $dir/createdb ]]; then
      echo "$dir"
      return 0
    fi
  done
  echo "PostgreSQL's server programs (initdb, pg_ctl, postgres) were not found on PATH, in" \
    "\`pg_config --bindir\` or in /usr/lib/postgresql/*/bin: install Debian's postgresql package" >&2
  return 1
}

PG_BIN="$(pg_find_bindir)"
pg_as=()
pg_owner="$(id -un)"
if ((EUID == 0)); then
  pg_owner=postgres
  id "$pg_owner" >/dev/null 2>&1 ||
    { echo "running as root, but there is no \`postgres\` user to run PostgreSQL as" >&2; exit 1; }
  pg_as=(runuser -u "$pg_owner" --)
fi
pg_pid=""
pg_data=""
PG_PORT=""

# pg_dir: a new temporary directory that the server's user owns (for its data and socket).
pg_dir() {
  local dir
  dir="$(mktemp -d)"
  chown "$pg_owner" "$dir"
  echo "$dir"
}

# pg_init DATA: a new, empty cluster in DATA (whose parent pg_dir made), superuser `postgres`,
# trusted on local connections only.
pg_init() {
  (cd "$(dirname "$1")" && "${pg_as[@]}" "$PG_BIN/initdb" -D "$1" -U postgres --auth=trust \
    -E UTF8 --no-locale --no-sync >"$(dirname "$1")/initdb.log" 2>&1) ||
    { cat "$(dirname "$1")/initdb.log" >&2; return 1; }
}

# A port that was free a moment ago (another process may take it first: pg_start tries again).
pg_free_port() {
  node -e 'const s = require("node:net").createServer();
    s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

# pg_start DATA: serves DATA on 127.0.0.1:$PG_PORT (and a socket in DATA's parent), returning
# once it accepts connections. Sets pg_pid and PG_PORT.
pg_start() {
  local data="$1" dir attempt
  dir="$(dirname "$data")"
  for attempt in 1 2 3; do
    PG_PORT="$(pg_free_port)"
    pg_data="$data"
    # Throwaway data: no fsync. One connection pool per Medusa process and a few test clients.
    if (cd "$dir" && "${pg_as[@]}" "$PG_BIN/pg_ctl" start -w -t 60 -D "$data" -l "$dir/server.log" \
      -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $dir -c fsync=off -c full_page_writes=off" \
      >"$dir/pg_ctl.log" 2>&1); then
      pg_pid="$(head -n1 "$data/postmaster.pid")"
      return 0
    fi
    # A server that did start (pg_ctl gave up waiting) is stopped before the next try.
    pg_stop
    if ! grep -qE 'could not bind|Address already in use' "$dir/server.log" 2>/dev/null || ((attempt == 3)); then
      cat "$dir/pg_ctl.log" "$dir/server.log" >&2 2>/dev/null || true
      return 1
    fi
  done
}

# Whether pid $1 is a live postgres process (a zombie nobody has reaped yet has exited, and a
# pid file left by a crash may name a pid reused since by something else).
pg_running() {
  local stat
  [[ $(cat "/proc/$1/comm" 2>/dev/null) == postgres ]] && stat="$(cat "/proc/$1/stat" 2>/dev/null)" &&
    [[ ${stat##*) } != Z* ]]
}

# pg_stop: stops the server pg_start started, by its pid (a fast shutdown: a clean checkpoint,
# so its data directory can be copied), and waits for it to exit; SIGKILL if it will not.
pg_stop() {
  if [[ -z $pg_pid && -n $pg_data && -f $pg_data/postmaster.pid ]]; then
    pg_pid="$(head -n1 "$pg_data/postmaster.pid")"
  fi
  if [[ -z $pg_pid ]] || ! pg_running "$pg_pid"; then
    pg_pid=""
    return 0
  fi
  local deadline=$((SECONDS + 60))
  kill -INT "$pg_pid" 2>/dev/null || true
  while pg_running "$pg_pid"; do
    if ((SECONDS >= deadline)); then
      echo "PostgreSQL (pid $pg_pid) did not stop: killing it" >&2
      kill -KILL "$pg_pid" 2>/dev/null || true
      break
    fi
    sleep 0.1
  done
  pg_pid=""
}
