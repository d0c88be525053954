#!/usr/bin/env bash
# A WebSocket client frame whose header announces 1 GiB, followed by 48 MiB of its payload, sent to
# a fresh release server on a raw socket; prints the server's RSS before and after.
# Usage: benches/huge-frame.sh [port]   (S=path/to/admin-push to measure another build)
set -euo pipefail
cd "$(dirname "$0")/.."
S=${S:-target/release/admin-push}
PORT=${1:-18385}
ADMIN_PUSH__SERVER__BIND=127.0.0.1:$PORT ADMIN_PUSH__LOG__LEVEL=error "$S" --config /dev/null >/dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
until curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null; do sleep 0.1; done
token=$("$S" --config /dev/null token --actor-id huge-frame)
rss() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }

exec 3<>"/dev/tcp/127.0.0.1/$PORT"
printf 'GET /admin-ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer %s\r\n\r\n' "$token" >&3
read -r status <&3
echo "handshake: ${status%$'\r'}"
before=$(rss)
# FIN + text, masked, 64-bit length 2^30, then the mask key; then 48 MiB of the payload.
printf '\x81\xff\x00\x00\x00\x00\x40\x00\x00\x00\x01\x02\x03\x04' >&3
head -c $((48 << 20)) /dev/zero >&3 2>/dev/null || true
sleep 1
echo "server RSS: before ${before} KiB, after $(rss) KiB"
