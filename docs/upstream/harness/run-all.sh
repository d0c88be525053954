#!/usr/bin/env bash
# Every scenario three times with the stock and the patched build; fresh server per run.
set -euo pipefail
cd "$(dirname "$0")"
n=${N:-5000}
for build in stock patched; do
  for scenario in "sse" "ws" "ws burst" "ws-actix-ws" "ws-actix-ws burst"; do
    read -r shape burst <<<"$scenario"
    for run in 1 2 3; do
      echo "$build $(./measure.sh "target-$build/release/server" "target-$build/release/clients" "$shape" "$n" $burst)"
    done
  done
done
