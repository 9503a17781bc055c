#!/usr/bin/env bash
# The README compares examples/component.rs with examples/component_v2.py, the same
# component written with the official Python V2 client; this checks that the Python one
# does what the Rust one does (tests/examples.rs checks the Rust one), against the
# ggipc-emulator binary: once stopped by SIGTERM, once by the nucleus going away.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
ggipc_venv

cargo build --quiet --features emulator --bin ggipc-emulator
BIN="$DEBUG_DIR/ggipc-emulator"
ggipc_scratch component-v2

cat >"$WORK/observer.yaml" <<'YAML'
RecipeFormatVersion: '2020-01-25'
ComponentName: test.Observer
ComponentVersion: '1.0.0'
ComponentConfiguration:
  DefaultConfiguration:
    accessControl:
      aws.greengrass.ipc.pubsub:
        test.Observer:pubsub:1:
          operations: ['*']
          resources: ['*']
YAML

for ending in term nucleus-dies; do
    rm -f "$WORK/out"
    "$BIN" --socket "$WORK/ipc.socket" --control-topic \
        --recipe examples/emulator/com.example.Relay.yaml --recipe "$WORK/observer.yaml" \
        --secrets examples/emulator/secrets.json >"$WORK/out" 2>"$WORK/log" </dev/null &
    PID=$!
    for _ in $(seq 1 100); do
        grep -q '^export SVCUID=' "$WORK/out" 2>/dev/null && break
        sleep 0.1
    done
    relay=$(sed -n 's/^export SVCUID=//p' "$WORK/out")
    observer=$(sed -n 's/^# test.Observer: SVCUID=//p' "$WORK/out")
    [ -n "$relay" ] && [ -n "$observer" ] || { echo "not ok - no tokens"; cat "$WORK/out" "$WORK/log"; exit 1; }
    AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT="$WORK/ipc.socket" SVCUID="$observer" \
        timeout 120 "$PY" tests/tools/component_v2.py "$relay" "$ending" "$PID"
    ggipc_stop_emulator
done
