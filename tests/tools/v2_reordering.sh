#!/usr/bin/env bash
# Runs tests/tools/v2_reordering.py (the official Python V2 client, one subscription, N
# numbered events published by ggipc's `publish` example) against the ggipc-emulator
# binary, and prints how many adjacent pairs of events its callbacks saw out of order.
# Fails on errors (lost events, a timeout), not on the figure.
#
#   bash tests/tools/v2_reordering.sh [N [WORK_MS]]   # default 3000 events, 1 ms of work each
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
ggipc_venv
cargo build --quiet --features emulator --bin ggipc-emulator --example publish
N=${1:-3000}
WORK_MS=${2:-1}

ggipc_scratch v2-order

# One permissive component (no --recipe); a queue that holds the whole burst, so that
# no event is dropped for a slow subscriber and every one is counted.
"$DEBUG_DIR/ggipc-emulator" --socket "$WORK/ipc.socket" --env-file "$WORK/env.sh" \
    --queue-events $((N + 100)) --queue-bytes $((N * 1024 + 1048576)) \
    >/dev/null 2>"$WORK/emulator.log" </dev/null &
PID=$!
for _ in $(seq 1 100); do [ -f "$WORK/env.sh" ] && break; sleep 0.1; done
[ -f "$WORK/env.sh" ] || { echo "not ok - no env file within 10 s"; cat "$WORK/emulator.log"; exit 1; }
. "$WORK/env.sh"
status=0
timeout 600 "$PY" tests/tools/v2_reordering.py "$DEBUG_DIR/examples/publish" "$N" "$WORK_MS" || status=$?
if [ "$status" -ne 0 ]; then
    echo "--- emulator log (last 20 lines)"
    tail -20 "$WORK/emulator.log"
fi
exit "$status"
