#!/usr/bin/env bash
# Runs BENCHMARKS.md's scenarios against fresh release servers and appends one JSON line per run to
# $OUT/<name>.jsonl; `benches/summary.py $OUT` prints the medians and the ratios to Nchan.
#
#   benches/run.sh [scenario...]       (none: all of them but churn, presence, redis and durability)
#
# Side by side: where Nchan can run the scenario, each of the $RUNS rounds runs admin-push and then
# a freshly started nginx + Nchan (benches/nchan.conf) with the same arguments, so drift in the
# machine's load hits both alike. NCHAN=0 skips Nchan.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target}
cargo build --release --bin admin-push --bin admin-push-bench
B="$CARGO_TARGET_DIR/release/admin-push-bench"
S="$CARGO_TARGET_DIR/release/admin-push"
OUT=${OUT:-bench-results}
RUNS=${RUNS:-3}
NCHAN=${NCHAN:-1}
NCHAN_DIR=/tmp/bench-nchan
mkdir -p "$OUT"

if [ "$NCHAN" = 1 ] && ! [ -e /usr/lib/nginx/modules/ngx_nchan_module.so ]; then
  echo "Nchan is not installed (apt-get install -y nginx libnginx-mod-nchan): admin-push only" >&2
  NCHAN=0
fi

# One admin-push run: a server spawned for it alone.
ours() { # name, args...
  local name=$1; shift
  "$B" --scenario "$name" --spawn-server "$S" "$@" >>"$OUT/$name.jsonl"
}

# One Nchan run against a freshly started nginx (warm pools skew RSS), every worker sampled.
theirs() { # name, workers, args...
  local name=$1 workers=$2; shift 2
  mkdir -p "$NCHAN_DIR"
  sed "s|^worker_processes .*|worker_processes $workers;|" benches/nchan.conf >"$NCHAN_DIR/nchan.conf"
  nginx -c "$NCHAN_DIR/nchan.conf" -p "$NCHAN_DIR"
  local master pids=()
  until master=$(cat "$NCHAN_DIR/nginx.pid" 2>/dev/null) && [ "$(pgrep -c -P "$master")" -ge "$workers" ]; do sleep 0.1; done
  for pid in $(pgrep -P "$master"); do pids+=(--server-pid "$pid"); done
  "$B" --scenario "nchan-$name" --target nchan --url http://127.0.0.1:18090 "${pids[@]}" "$@" \
    >>"$OUT/nchan-$name.jsonl" || echo "the Nchan run of $name failed" >&2
  nginx -c "$NCHAN_DIR/nchan.conf" -p "$NCHAN_DIR" -s stop
  while kill -0 "$master" 2>/dev/null; do sleep 0.1; done
}

# $RUNS rounds of admin-push, then Nchan with `workers` workers ("-": Nchan cannot run it).
pair() { # name, workers, args...
  local name=$1 workers=$2; shift 2
  for _ in $(seq "$RUNS"); do
    ours "$name" "$@"
    if [ "$NCHAN" = 1 ] && [ "$workers" != - ]; then theirs "$name" "$workers" "$@"; fi
  done
}

redis_env() { echo --server-env ADMIN_PUSH__HUB__BACKEND=redis --server-env "ADMIN_PUSH__HUB__STREAM_KEY=bench:$RANDOM"; }

scenarios=("$@")
[ ${#scenarios[@]} -eq 0 ] &&
  scenarios=(smoke idle-5k idle-10k burst-ws ws-1000 max-rate-ws max-rate-sse mixed-10k c19k emit)
for s in "${scenarios[@]}"; do
  case $s in
    smoke)        "$B" --smoke --spawn-server "$S" ;;
    # Idle memory: Nchan with one worker, so each connection lands in the one measured process.
    idle-5k)      pair idle-5k-ws 1 --ws 5000 --events 0 --idle 5 --sources 2
                  pair idle-5k-sse 1 --sse 5000 --events 0 --idle 5 --sources 2 ;;
    idle-10k)     pair idle-10k-ws 1 --ws 10000 --events 0 --idle 5 --sources 4
                  pair idle-10k-sse 1 --sse 10000 --events 0 --idle 5 --sources 4 ;;
    # Nchan closes a subscriber that sends anything, so it has no figure here.
    burst-ws)     pair burst-5k-ws - --ws 5000 --events 0 --idle 5 --sources 2 --ws-burst 8192 ;;
    ws-1000)      pair ws-1000-50eps 2 --ws 1000 --rate 50 --duration 10 ;;
    max-rate-ws)  pair max-rate-100-ws 2 --ws 100 --max-rate --rate 1000 --emit-concurrency 8 ;;
    max-rate-sse) pair max-rate-100-sse 2 --sse 100 --max-rate --rate 1000 --emit-concurrency 8 ;;
    mixed-10k)    pair mixed-10k-5eps 2 --ws 5000 --sse 5000 --rate 5 --duration 20 --sources 4 ;;
    c19k)         pair concurrent-19k 2 --ws 9500 --sse 9500 --rate 5 --duration 30 --sources 4 --procs 2 ;;
    emit)         pair emit-10-subs 2 --ws 10 --rate 0 --events 50000 --emit-concurrency 16 ;;
    # Presence on and off, alternating in each round: 1,000 WebSocket tabs on 200 records.
    presence)     for _ in $(seq "$RUNS"); do
                    RUNS=1 pair presence-off-idle-1000 - --ws 1000 --events 0 --idle 5
                    RUNS=1 pair presence-on-idle-1000 - --ws 1000 --events 0 --idle 5 --presence-records 200
                    RUNS=1 pair presence-off-ws-1000-50eps - --ws 1000 --rate 50 --duration 10
                    RUNS=1 pair presence-on-ws-1000-50eps - --ws 1000 --rate 50 --duration 10 --presence-records 200
                  done ;;
    churn)        RUNS=1 pair churn-20k-sse - --sse 1 --churn 20000 --sources 4 --connect-concurrency 64
                  RUNS=1 pair churn-20k-ws - --ws 1 --churn 20000 --sources 4 --connect-concurrency 64 ;;
    redis)        # the Redis backend (a local redis-server on 6379), a fresh stream per run
                  for _ in $(seq "$RUNS"); do
                    RUNS=1 pair redis-max-rate-100-ws - $(redis_env) --ws 100 --max-rate --rate 1000 --emit-concurrency 8
                    RUNS=1 pair redis-emit-10-subs - $(redis_env) --ws 10 --rate 0 --events 50000 --emit-concurrency 16
                  done
                  for _ in $(seq "$RUNS"); do   # publish on instance B, subscribe on instance A
                    key=bench:cross-$RANDOM
                    ADMIN_PUSH__SERVER__BIND=127.0.0.1:18081 ADMIN_PUSH__HUB__BACKEND=redis ADMIN_PUSH__HUB__STREAM_KEY=$key \
                      ADMIN_PUSH__LOG__LEVEL=warn "$S" --config /dev/null >/dev/null 2>&1 &
                    other=$!
                    until curl -sf http://127.0.0.1:18081/healthz >/dev/null; do sleep 0.1; done
                    RUNS=1 pair redis-cross-ws-1000 - --server-env ADMIN_PUSH__HUB__BACKEND=redis \
                      --server-env ADMIN_PUSH__HUB__STREAM_KEY=$key --emit-url http://127.0.0.1:18081 \
                      --ws 1000 --rate 50 --duration 10
                    kill "$other"; wait "$other" 2>/dev/null || true
                  done ;;
    durability)   # hub.redis_min_replicas 0 and 1, alternating, on a master and a replica of its own
                  dir=$(mktemp -d)
                  redis-server --port 16379 --save '' --appendonly no --dir "$dir" --daemonize yes --pidfile "$dir/m.pid"
                  redis-server --port 16380 --save '' --appendonly no --dir "$dir" --daemonize yes --pidfile "$dir/r.pid" \
                    --replicaof 127.0.0.1 16379
                  until redis-cli -p 16380 info replication | grep -q 'master_link_status:up'; do sleep 0.1; done
                  for _ in $(seq "$RUNS"); do
                    for n in 0 1; do
                      RUNS=1 pair "redis-min-replicas-$n-emit-10-subs" - $(redis_env) \
                        --server-env ADMIN_PUSH__HUB__REDIS_URL=redis://127.0.0.1:16379 \
                        --server-env ADMIN_PUSH__HUB__REDIS_MIN_REPLICAS=$n \
                        --ws 10 --rate 0 --events 50000 --emit-concurrency 16
                    done
                  done
                  kill "$(cat "$dir/r.pid")" "$(cat "$dir/m.pid")"; rm -rf "$dir" ;;
    *) echo "unknown scenario $s" >&2; exit 2 ;;
  esac
done
