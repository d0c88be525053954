#!/usr/bin/env bash
# Runs every BENCHMARKS.md scenario against a freshly spawned release server, three times each,
# appending one JSON line per run to $OUT/<scenario>.jsonl. Usage: benches/run.sh [scenario...]
# Scenarios: smoke idle-ws idle-sse idle-5k burst-ws churn max-rate-ws max-rate-sse ws-1000 mixed-10k c19k emit
#            nchan redis
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

redis_env() { echo --server-env ADMIN_PUSH__HUB__BACKEND=redis --server-env "ADMIN_PUSH__HUB__STREAM_KEY=bench:$RANDOM"; }

nchan() { # name, workers, args... — each run against a freshly started nginx (warm pools skew RSS)
  local name=$1 workers=$2; shift 2
  mkdir -p /tmp/bench-nchan
  sed "s|^worker_processes .*|worker_processes $workers;|" benches/nchan.conf >/tmp/bench-nchan/nchan.conf
  for _ in $(seq "$RUNS"); do
    nginx -c /tmp/bench-nchan/nchan.conf -p /tmp/bench-nchan; sleep 0.5
    local worker; worker=$(pgrep -P "$(cat /tmp/bench-nchan/nginx.pid)" | head -1)
    "$B" --scenario "nchan-$name" --server-pid "$worker" "$@" >>"$OUT/nchan-$name.jsonl"
    nginx -c /tmp/bench-nchan/nchan.conf -p /tmp/bench-nchan -s stop; sleep 1
  done
}

scenarios=("$@")
[ ${#scenarios[@]} -eq 0 ] && scenarios=(smoke idle-ws idle-sse max-rate-ws max-rate-sse ws-1000 mixed-10k c19k emit)
for s in "${scenarios[@]}"; do
  case $s in
    smoke)        "$B" --smoke --spawn-server "$S" ;;
    idle-ws)      run idle-10k-ws  --spawn-server "$S" --ws 10000 --events 0 --idle 5 --sources 4 ;;
    idle-sse)     run idle-10k-sse --spawn-server "$S" --sse 10000 --events 0 --idle 5 --sources 4 ;;
    idle-5k)      run idle-5k-ws  --spawn-server "$S" --ws 5000 --events 0 --idle 5 --sources 2
                  run idle-5k-sse --spawn-server "$S" --sse 5000 --events 0 --idle 5 --sources 2 ;;
    burst-ws)     run burst-5k-ws --spawn-server "$S" --ws 5000 --events 0 --idle 5 --sources 2 --ws-burst 8192 ;;
    churn)        RUNS=1 run churn-20k-sse --spawn-server "$S" --sse 1 --churn 20000 --sources 4 --connect-concurrency 64
                  RUNS=1 run churn-20k-ws  --spawn-server "$S" --ws 1  --churn 20000 --sources 4 --connect-concurrency 64 ;;
    max-rate-ws)  run max-rate-100-ws  --spawn-server "$S" --ws 100  --max-rate --rate 1000 --emit-concurrency 8 ;;
    max-rate-sse) run max-rate-100-sse --spawn-server "$S" --sse 100 --max-rate --rate 1000 --emit-concurrency 8 ;;
    ws-1000)      run ws-1000-50eps --spawn-server "$S" --ws 1000 --rate 50 --duration 10 ;;
    mixed-10k)    run mixed-10k-5eps --spawn-server "$S" --ws 5000 --sse 5000 --rate 5 --duration 20 --sources 4 ;;
    c19k)         run concurrent-19k --spawn-server "$S" --ws 9500 --sse 9500 --rate 5 --duration 30 --sources 4 --procs 2 ;;
    emit)         run emit-10-subs --spawn-server "$S" --ws 10 --rate 0 --events 50000 --emit-concurrency 16 ;;
    nchan)        # Nchan side by side (apt-get install -y nginx libnginx-mod-nchan); a fresh nginx per run.
                  N="--target nchan --url http://127.0.0.1:18090"
                  nchan idle-10k-ws  1 $N --ws 10000 --events 0 --idle 5 --sources 4
                  nchan idle-10k-sse 1 $N --sse 10000 --events 0 --idle 5 --sources 4
                  nchan idle-5k-ws  1 $N --ws 5000 --events 0 --idle 5 --sources 2
                  nchan idle-5k-sse 1 $N --sse 5000 --events 0 --idle 5 --sources 2
                  nchan ws-1000-50eps 2 $N --ws 1000 --rate 50 --duration 10
                  nchan mixed-10k-5eps 2 $N --ws 5000 --sse 5000 --rate 5 --duration 20 --sources 4
                  nchan max-rate-100-ws 2 $N --ws 100 --max-rate --rate 1000 --emit-concurrency 8
                  nchan max-rate-100-sse 2 $N --sse 100 --max-rate --rate 1000 --emit-concurrency 8 ;;
    redis)        # the Redis backend (a local redis-server on 6379), a fresh stream per run
                  for _ in $(seq "$RUNS"); do   # a fresh stream per run
                    RUNS=1 run redis-max-rate-100-ws --spawn-server "$S" $(redis_env) --ws 100 --max-rate --rate 1000 --emit-concurrency 8
                    RUNS=1 run redis-emit-10-subs --spawn-server "$S" $(redis_env) --ws 10 --rate 0 --events 50000 --emit-concurrency 16
                  done
                  for _ in $(seq "$RUNS"); do   # publish on instance B, subscribe on instance A
                    key=bench:cross-$RANDOM
                    ADMIN_PUSH__SERVER__BIND=127.0.0.1:18081 ADMIN_PUSH__HUB__BACKEND=redis ADMIN_PUSH__HUB__STREAM_KEY=$key \
                      ADMIN_PUSH__LOG__LEVEL=warn "$S" --config /dev/null >/dev/null 2>&1 &
                    other=$!; sleep 1
                    "$B" --scenario redis-cross-ws-1000 --spawn-server "$S" --server-env ADMIN_PUSH__HUB__BACKEND=redis \
                      --server-env ADMIN_PUSH__HUB__STREAM_KEY=$key --emit-url http://127.0.0.1:18081 \
                      --ws 1000 --rate 50 --duration 10 >>"$OUT/redis-cross-ws-1000.jsonl"
                    kill "$other"; wait "$other" 2>/dev/null || true
                  done ;;
    *) echo "unknown scenario $s" >&2; exit 2 ;;
  esac
done
