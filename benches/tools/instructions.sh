#!/usr/bin/env bash
# Instructions per publish on each side, counted by valgrind's callgrind: deterministic
# where the CPU time per call moves ±30 % on shared machines, so it shows what a change
# to the hot path saves (memset and memcpy count more than they cost natively, and
# callgrind runs the code without the SIMD paths that some crates choose at run time).
#
#   cargo build --release --features emulator --bin ggipc-emulator --example in_flight
#   bash benches/tools/instructions.sh target/release/examples/in_flight target/release/ggipc-emulator
#
# Each side is counted under callgrind while the other runs natively: the client publishes
# sequentially (`in_flight t N`, one thread, one call at a time, so that no batching
# varies the count), twice, with 2,000 and 12,000 publishes; the difference divided by
# 10,000 leaves out the start and the connection. The emulator runs with `--busy-poll 0`,
# so that its count is the work per call, not the polling between calls. Needs valgrind.
set -euo pipefail
if [ $# -ne 2 ]; then
    sed -n '2,14p' "$0" >&2
    exit 2
fi
client=$(realpath "$1") emulator=$(realpath "$2")
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }
dir=$(mktemp -d)
trap 'pkill -f -- "--socket $dir/" 2>/dev/null || true; rm -rf "$dir"' EXIT

started() { # env file
    for _ in $(seq 150); do
        [ -f "$1" ] && return
        sleep 0.2
    done
    echo "the emulator did not start" >&2
    exit 1
}

collected() { # log: callgrind's total
    grep -h Collected "$1" | awk '{ gsub(",", "", $4); print $4 }'
}

publish() { # env file, count
    (set -a && . "$1" && set +a && "$client" t "$2" >/dev/null)
}

client_side() { # count
    (set -a && . "$dir/native.env" && set +a &&
        valgrind --tool=callgrind --callgrind-out-file="$dir/client.out" "$client" t "$1" \
            >/dev/null 2>"$dir/client.log")
    collected "$dir/client.log"
}

emulator_side() { # count
    rm -f "$dir/counted.env" "$dir/emulator.log"
    GGIPC_LOG=warn valgrind --tool=callgrind --callgrind-out-file="$dir/emulator.out" \
        "$emulator" --busy-poll 0 --socket "$dir/counted.sock" --env-file "$dir/counted.env" \
        >/dev/null 2>"$dir/emulator.log" &
    local pid=$!
    started "$dir/counted.env"
    publish "$dir/counted.env" "$1"
    kill -INT "$pid"
    wait "$pid" || true
    collected "$dir/emulator.log"
}

GGIPC_LOG=warn "$emulator" --busy-poll 0 --socket "$dir/native.sock" --env-file "$dir/native.env" >/dev/null 2>&1 &
native=$!
started "$dir/native.env"
small=$(client_side 2000)
large=$(client_side 12000)
kill -INT "$native"
wait "$native" || true
echo "client: $(((large - small) / 10000)) instructions per publish"
small=$(emulator_side 2000)
large=$(emulator_side 12000)
echo "emulator: $(((large - small) / 10000)) instructions per publish"
