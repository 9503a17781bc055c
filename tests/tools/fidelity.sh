#!/usr/bin/env bash
# Fidelity check: the official Python client (awsiotsdk, GreengrassCoreIPCClientV2) against
# the ggipc-emulator binary. Prints one line per check and exits non-zero on any mismatch.
# Creates (or reuses) a venv under the target dir (fidelity-venv); needs python3 and PyPI.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
ggipc_venv

cargo build --quiet --features emulator --bin ggipc-emulator
BIN="$DEBUG_DIR/ggipc-emulator"

ggipc_scratch fidelity
SOCK="$WORK/ipc.socket"
OUT="$WORK/emulator.out"
LOG="$WORK/emulator.log"

"$BIN" --socket "$SOCK" \
    --recipe tests/data/recipes/com.example.Fidelity.yaml \
    --secrets tests/data/secrets/fidelity.json \
    --control-topic >"$OUT" 2>"$LOG" </dev/null &
PID=$!

for _ in $(seq 1 100); do
    grep -q '^export SVCUID=' "$OUT" 2>/dev/null && break
    kill -0 "$PID" 2>/dev/null || { echo "not ok - emulator exited early"; cat "$LOG"; exit 1; }
    sleep 0.1
done
grep -q '^export SVCUID=' "$OUT" || { echo "not ok - emulator printed no exports"; cat "$LOG"; exit 1; }
eval "$(grep '^export ' "$OUT")"

status=0
timeout 150 "$PY" tests/tools/fidelity.py || status=$?

ggipc_stop_emulator
if [ -e "$SOCK" ]; then
    echo "not ok - the emulator left its socket behind"
    status=1
fi
if [ "$status" -ne 0 ]; then
    echo "--- emulator log ---"
    cat "$LOG"
fi
exit "$status"
