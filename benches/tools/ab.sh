#!/usr/bin/env bash
# Two builds side by side, alternating for ROUNDS rounds: `examples/in_flight.rs` publishes
# against a `ggipc-emulator` process (in its own process, GGIPC_LOG=warn, as in the bench;
# with the binary's defaults, so its 50 µs busy poll: its CPU per publish includes the
# polling, the same for both builds).
#
#   emulator mode: two emulator binaries, each its own process, under one client; the
#                  emulator's context switches and CPU time per publish (all its threads),
#                  and its user and system CPU per publish (from /proc).
#   client mode:   two client binaries against one emulator process; the client's context
#                  switches, CPU time, futex and sendto calls per publish, and its user
#                  and system CPU per publish (as in_flight prints them).
#
#   cargo build --release --features emulator --bin ggipc-emulator --example in_flight
#   cp target/release/ggipc-emulator /tmp/emu-before   # (from the other commit)
#   bash benches/tools/ab.sh emulator /tmp/emu-before target/release/ggipc-emulator 5 40000 1 8
#   cp target/release/examples/in_flight /tmp/client-before   # (from the other commit)
#   bash benches/tools/ab.sh client /tmp/client-before target/release/examples/in_flight 6 120000 1 8
#
# Arguments: MODE BEFORE AFTER ROUNDS CALLS [WINDOW [THREADS]] (the last three are
# in_flight's: `40000 1 8` is 8 threads each publishing in a loop, `20000` sequential,
# `40000 64` one thread with 64 in flight). In emulator mode the client is
# target/release/examples/in_flight unless CLIENT names another; in client mode the
# emulator is target/release/ggipc-emulator unless EMULATOR names another. The counts
# need `perf` (the futex and sendto counts its syscall tracepoints); without it, only the
# rates are printed.
set -euo pipefail
if [ $# -lt 5 ] || { [ "$1" != emulator ] && [ "$1" != client ]; }; then
    sed -n '2,26p' "$0" >&2
    exit 2
fi
mode=$1 before=$2 after=$3 rounds=$4 calls=$5
shift 4
cd "$(dirname "$0")/../.."
release=${CARGO_TARGET_DIR:-$PWD/target}/release
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

# What perf can count here.
events=""
if perf stat -e task-clock -- true >/dev/null 2>&1; then
    events=context-switches,task-clock
    if [ "$mode" = client ] &&
        perf stat -e syscalls:sys_enter_futex,syscalls:sys_enter_sendto -- true >/dev/null 2>&1; then
        events=$events,syscalls:sys_enter_futex,syscalls:sys_enter_sendto
    fi
fi

# perf's CSV output ($dir/perf) as figures per publish.
per_publish() { # who
    awk -F, -v n="$calls" -v who="$1" '
        $3 == "context-switches" { s = sprintf("%.2f context switches", $1 / n) }
        $3 == "task-clock" { c = sprintf(", %.1f µs CPU", $1 * 1000 / n) }
        $3 ~ /sys_enter_futex/ { f = sprintf(", %.2f futex", $1 / n) }
        $3 ~ /sys_enter_sendto/ { w = sprintf(", %.2f sendto", $1 / n) }
        END { if (s != "") printf "  %s: %s%s%s%s per publish", who, s, c, f, w }' "$dir/perf"
}

rate_of() { # in_flight's output
    echo "$1" | grep -o '[0-9]* publishes/s' || echo "failed: $1"
}

# User and system CPU time of a process so far, in ticks of 10 ms (`/proc/PID/stat`,
# fields 14 and 15, all its threads).
cpu_ticks() { # pid
    sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12, $13 }'
}

# The user and system CPU per publish between two `cpu_ticks`.
cpu_per_publish() { # who before after
    echo "$2 $3" | awk -v n="$calls" -v who="$1" '{
        printf "; %s: %.1f µs user, %.1f µs system per publish", who, ($3 - $1) * 1e4 / n, ($4 - $2) * 1e4 / n }'
}

if [ "$mode" = emulator ]; then
    client="${CLIENT:-$release/examples/in_flight}"
    start "$before" before
    start "$after" after
else
    start "${EMULATOR:-$release/ggipc-emulator}" emulator
fi

for round in $(seq "$rounds"); do
    for which in before after; do
        : >"$dir/perf"
        if [ "$mode" = emulator ]; then
            if [ -n "$events" ]; then
                perf stat -x, -e "$events" -p "$(cat "$dir/$which.pid")" -o "$dir/perf" &
                perf_pid=$!
                sleep 0.3
            fi
            ticks=$(cpu_ticks "$(cat "$dir/$which.pid")")
            line=$(set -a && . "$dir/$which.env" && set +a && "$client" t "$@" 2>&1 | head -1)
            ticks_after=$(cpu_ticks "$(cat "$dir/$which.pid")")
            if [ -n "$events" ]; then
                kill -INT $perf_pid
                wait $perf_pid || true
            fi
            echo "round $round $which: $(rate_of "$line")$(per_publish emulator)$(cpu_per_publish emulator "$ticks" "$ticks_after")"
        else
            binary=$before
            [ "$which" = after ] && binary=$after
            run=("$binary" t "$@")
            [ -n "$events" ] && run=(perf stat -x, -e "$events" -o "$dir/perf" -- "${run[@]}")
            output=$(set -a && . "$dir/emulator.env" && set +a && "${run[@]}" 2>&1)
            line=$(echo "$output" | head -1)
            cpu=$(echo "$output" | grep -o '[0-9.]* µs user, [0-9.]* µs system' || true)
            echo "round $round $which: $(rate_of "$line")$(per_publish client)${cpu:+; client: $cpu per publish}"
        fi
    done
done
