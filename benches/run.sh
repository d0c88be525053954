#!/usr/bin/env bash
# Runs every BENCHMARKS.md scenario against a freshly spawned release server, three times each,
# appending one JSON line per run to $OUT/<scenario>.jsonl. Usage: benches/run.sh [scenario...]
# Scenarios: smoke idle-ws idle-sse max-rate-ws max-rate-sse ws-1000 mixed-10k c19k emit nchan
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
cargo build --release --bin admin-push --bin admin-push-bench
B="$CARGO_TARGET_DIR/release/admin-push-bench"
S="$CARGO_TARGET_DIR/release/admin-push"
OUT=${OUT:-bench-results}
RUNS=${RUNS:-3}
mkdir -p "$OUT"

run() { # name, args...
  local name=$1; shift
  for _ in $(seq "$RUNS"); do
    "$B" --scenario "$name" "$@" >>"$OUT/$name.jsonl"
  done
}

scenarios=("$@")
[ ${#scenarios[@]} -eq 0 ] && scenarios=(smoke idle-ws idle-sse max-rate-ws max-rate-sse ws-1000 mixed-10k c19k emit)
for s in "${scenarios[@]}"; do
  case $s in
    smoke)        "$B" --smoke --spawn-server "$S" ;;
    idle-ws)      run idle-10k-ws  --spawn-server "$S" --ws 10000 --events 0 --idle 5 --sources 4 ;;
    idle-sse)     run idle-10k-sse --spawn-server "$S" --sse 10000 --events 0 --idle 5 --sources 4 ;;
    max-rate-ws)  run max-rate-100-ws  --spawn-server "$S" --ws 100  --max-rate --rate 1000 --emit-concurrency 8 ;;
    max-rate-sse) run max-rate-100-sse --spawn-server "$S" --sse 100 --max-rate --rate 1000 --emit-concurrency 8 ;;
    ws-1000)      run ws-1000-50eps --spawn-server "$S" --ws 1000 --rate 50 --duration 20 ;;
    mixed-10k)    run mixed-10k-5eps --spawn-server "$S" --ws 5000 --sse 5000 --rate 5 --duration 30 --sources 4 ;;
    c19k)         run concurrent-19k --spawn-server "$S" --ws 9500 --sse 9500 --rate 5 --duration 30 --sources 4 --procs 2 ;;
    emit)         run emit-10-subs --spawn-server "$S" --ws 10 --rate 0 --events 100000 --emit-concurrency 16 ;;
    nchan)        # needs: apt-get install -y nginx libnginx-mod-nchan (never run so far, see BENCHMARKS.md)
                  mkdir -p /tmp/bench-nchan
                  nginx -c "$PWD/benches/nchan.conf" -p /tmp/bench-nchan
                  run nchan-100-ws --target nchan --url http://127.0.0.1:18090 --ws 100 --max-rate --rate 1000 --emit-concurrency 8 \
                    --server-pid "$(cat /tmp/bench-nchan/nginx.pid)"
                  nginx -c "$PWD/benches/nchan.conf" -p /tmp/bench-nchan -s stop ;;
    *) echo "unknown scenario $s" >&2; exit 2 ;;
  esac
done
