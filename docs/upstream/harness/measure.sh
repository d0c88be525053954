#!/usr/bin/env bash
# Resident memory per idle connection: VmRSS of the server before and after a separate client
# process opens N connections of one shape and holds them idle.
#
#   measure.sh SERVER CLIENTS SHAPE N [burst]
#
# SHAPE is sse, ws or ws-actix-ws; `burst` makes each WebSocket send one 8 KiB frame first.
# Prints: shape, N, RSS before and after (KiB), bytes per connection.
set -euo pipefail
server=$1 clients=$2 shape=$3 n=$4 burst=${5:-}
ulimit -n "$(ulimit -Hn)"  # N connections need N descriptors on each side

coproc SRV { exec "$server"; }
read -r _ pid _ port <&"${SRV[0]}"

rss() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }

# One round of the same connections first, so one-time allocations (worker start-up, routing,
# date service, allocator arenas) are not counted per connection.
"$clients" "$port" "$shape" 100 $burst </dev/null >/dev/null
before=$(rss)

# The clients hold their connections until their stdin closes; their "ready N" line says every
# connection finished its handshake (and burst) before the second reading.
fifos=$(mktemp -d)
mkfifo "$fifos/hold" "$fifos/out"
"$clients" "$port" "$shape" "$n" $burst <"$fifos/hold" >"$fifos/out" &
clients_pid=$!
exec {hold}>"$fifos/hold" {out}<"$fifos/out"
read -r ready count <&"$out"
[ "$ready" = ready ] && [ "$count" = "$n" ]
after=$(rss)

exec {hold}>&-
wait "$clients_pid"
kill -KILL "$pid"
wait "$SRV_PID" 2>/dev/null || true
rm -r "$fifos"

echo "$shape${burst:+ +burst} n=$n rss_before_kib=$before rss_after_kib=$after bytes_per_conn=$(( (after - before) * 1024 / n ))"
