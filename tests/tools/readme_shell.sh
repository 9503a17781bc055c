#!/usr/bin/env bash
# README "Testing your component without a device", as written (issue 14, item 2): runs the
# section's shell blocks `start` + `rust` + `stop`, and `start` + `python` + `stop`, five
# times each, from the clone's root, each run bounded in time. The one difference from a
# user's shell: the freshly built ggipc-emulator (not a `cargo install`ed one) and the venv
# with the official Python client (awsiotsdk) come first on PATH.
#
# Each run must print the component's line, log its publish and its disconnect, stop the
# emulator (its process group is empty afterwards) and leave neither env.sh nor the socket.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
ggipc_venv
cargo build --quiet --features emulator --bin ggipc-emulator --example hello_world
BLOCK="python3 $ROOT/tests/tools/readme_block.py $ROOT/README.md"
RUNS=${GGIPC_README_RUNS:-5}
BOUND=${GGIPC_README_BOUND:-120} # seconds per run: a hang bound, not a speed

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ggipc-readme-shell.XXXXXX")
PGID=""
cleanup() {
    if [ -n "$PGID" ]; then kill -KILL -- "-$PGID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# The README shows the two components' files: they must be the files the blocks run.
$BLOCK hello_world.rs | cmp -s - examples/hello_world.rs ||
    { echo "not ok - README's hello_world.rs differs from examples/hello_world.rs"; exit 1; }
$BLOCK hello_world.py | cmp -s - examples/emulator/hello_world.py ||
    { echo "not ok - README's hello_world.py differs from examples/emulator/hello_world.py"; exit 1; }

export PATH="$DEBUG_DIR:$(dirname "$PY"):$PATH"
[ "$(command -v ggipc-emulator)" = "$DEBUG_DIR/ggipc-emulator" ] || { echo "not ok - PATH"; exit 1; }

status=0
for lang in rust python; do
    { $BLOCK start; $BLOCK "$lang"; $BLOCK stop; } >"$WORK/$lang.sh"
    for run in $(seq 1 "$RUNS"); do
        out="$WORK/$lang-$run.log"
        # Every other run starts with a stale env.sh from an "earlier run".
        if [ $((run % 2)) -eq 0 ]; then
            echo "export SVCUID=stale-from-an-earlier-run" >env.sh
        fi
        # Its own process group, so that whatever it leaves behind can be found and killed.
        setsid bash -e "$WORK/$lang.sh" >"$out" 2>&1 </dev/null &
        PGID=$!
        rc=""
        for _ in $(seq 1 $((BOUND * 10))); do
            if ! kill -0 "$PGID" 2>/dev/null; then
                wait "$PGID" && rc=0 || rc=$?
                break
            fi
            sleep 0.1
        done
        problems=()
        if [ -z "$rc" ]; then
            problems+=("did not finish within $BOUND s")
        elif [ "$rc" -ne 0 ]; then
            problems+=("exited with $rc")
        fi
        grep -q '^published hello world' "$out" || problems+=("no 'published hello world'")
        grep -qF 'com.example.HelloWorld PublishToTopic ["hello"] -> ok' "$out" ||
            problems+=("no publish in the emulator log")
        grep -qF 'com.example.HelloWorld disconnected' "$out" || problems+=("no disconnect logged")
        grep -qF 'stale-from-an-earlier-run' "$out" && problems+=("the stale env.sh was used")
        # Give the group a moment to be gone (bounded), then it must be.
        for _ in $(seq 1 30); do pgrep -g "$PGID" >/dev/null 2>&1 || break; sleep 0.1; done
        pgrep -g "$PGID" >/dev/null 2>&1 && problems+=("processes left running: $(pgrep -g "$PGID" | tr '\n' ' ')")
        [ -e env.sh ] && problems+=("env.sh left behind")
        kill -KILL -- "-$PGID" 2>/dev/null || true
        PGID=""
        rm -f env.sh
        if [ ${#problems[@]} -eq 0 ]; then
            echo "ok - README shell blocks, $lang component, run $run/$RUNS"
        else
            echo "not ok - README shell blocks, $lang component, run $run/$RUNS: ${problems[*]}"
            sed 's/^/    /' "$out"
            status=1
        fi
    done
done
exit "$status"
