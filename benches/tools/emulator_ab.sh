#!/usr/bin/env bash
# Two `ggipc-emulator` binaries side by side under the same client: each runs in its own
# process, and `examples/in_flight.rs` publishes against one, then the other, alternating
# for ROUNDS rounds. Prints each run's rate and, when `perf` works, the emulator's context
# switches and CPU time per publish (`perf stat -p`, all its threads).
#
#   cargo build --release --features emulator --bin ggipc-emulator --example in_flight
#   cp target/release/ggipc-emulator /tmp/emu-before   # (from the other commit)
#   bash benches/tools/emulator_ab.sh /tmp/emu-before target/release/ggipc-emulator 5 40000 1 8
#
# Arguments: BEFORE AFTER ROUNDS CALLS [WINDOW [THREADS]] (the last three are in_flight's:
# `40000 1 8` is 8 threads each publishing in a loop, `20000` sequential, `40000 64` one
# thread with 64 in flight). The client is target/release/examples/in_flight unless
# CLIENT names another. Both emulators log at warn (GGIPC_LOG=warn), as in the bench.
set -euo pipefail
if [ $# -lt 4 ]; then
    sed -n '2,13p' "$0" >&2
    exit 2
fi
before=$1 after=$2 rounds=$3 calls=$4
shift 3
cd "$(dirname "$0")/../.."
client="${CLIENT:-${CARGO_TARGET_DIR:-$PWD/target}/release/examples/in_flight}"
dir=$(mktemp -d)
pids=()
cleanup() {
    kill "${pids[@]}" 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT

start() { # binary name
    GGIPC_LOG=warn "$1" --socket "$dir/$2.sock" --env-file "$dir/$2.env" >"$dir/$2.log" 2>&1 &
    pids+=($!)
    echo $! >"$dir/$2.pid"
    for _ in $(seq 100); do
        [ -f "$dir/$2.env" ] && return
        sleep 0.1
    done
    echo "$1 did not start: $(tail -1 "$dir/$2.log")" >&2
    exit 1
}
start "$before" before
start "$after" after

perf_ok=0
if perf stat -e task-clock -p "$(cat "$dir/before.pid")" -- sleep 0.1 >/dev/null 2>&1; then
    perf_ok=1
fi

for round in $(seq "$rounds"); do
    for which in before after; do
        pid=$(cat "$dir/$which.pid")
        if [ $perf_ok = 1 ]; then
            perf stat -x, -e context-switches,task-clock -p "$pid" -o "$dir/perf" &
            perf_pid=$!
            sleep 0.3
        fi
        line=$(set -a && . "$dir/$which.env" && set +a && "$client" t "$@" 2>&1 | head -1)
        rate=$(echo "$line" | grep -o '[0-9]* publishes/s' || echo "failed: $line")
        extra=""
        if [ $perf_ok = 1 ]; then
            kill -INT $perf_pid
            wait $perf_pid || true
            switches=$(awk -F, '/context-switches/ {print $1}' "$dir/perf")
            clock=$(awk -F, '/task-clock/ {print $1}' "$dir/perf")
            extra=$(awk -v s="$switches" -v c="$clock" -v n="$calls" \
                'BEGIN {printf "  emulator: %.2f context switches, %.1f µs CPU per publish", s / n, c * 1000 / n}')
        fi
        echo "round $round $which: $rate$extra"
    done
done
