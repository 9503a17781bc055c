#!/usr/bin/env bash
# Builds and installs what `cargo bench --bench ggipc` runs beside its own code, so the
# bench itself only measures. The bench calls it once per part it needs; run it by hand
# to prepare everything ahead of a bench run:
#
#   bash benches/tools/prepare.sh                 # all parts
#   bash benches/tools/prepare.sh emulator python # some parts
#
# Parts (each is a no-op when already up to date):
#   emulator    release `ggipc-emulator` binary (the external process every contender uses)
#   examples    release `footprint` and `publish` examples (footprint group)
#   async-peer  greengrass-ipc-rust contender, benches/peers/greengrass-ipc-rust
#   c-sdk       official C component SDK contender, benches/peers/c-sdk (needs a C compiler
#               and libclang for bindgen: Debian's `libclang-dev`)
#   python      official Python client: a venv with awsiotsdk from PyPI
#
# Everything goes under target/ (target/release, target/ggipc-bench/{peers,venv}).
# The peers are standalone crates with their own lock files (built with --locked), outside
# ggipc's workspace: their dependencies (tokio, bindgen, ...) never enter ggipc's.
# On failure a part exits non-zero with the reason on its last stderr line.
set -euo pipefail
cd "$(dirname "$0")/../.."

target="${CARGO_TARGET_DIR:-$PWD/target}"
out="$target/ggipc-bench"
cargo="${CARGO:-cargo}"
mkdir -p "$out"

# The awsiotsdk release the figures in BENCHMARKS.md were measured with.
AWSIOTSDK_VERSION="${AWSIOTSDK_VERSION:-1.31.0}"

part() {
    case "$1" in
    emulator)
        "$cargo" build --release --quiet --features emulator --bin ggipc-emulator
        ;;
    examples)
        "$cargo" build --release --quiet --example footprint --example publish
        ;;
    async-peer)
        "$cargo" build --release --quiet --locked \
            --manifest-path benches/peers/greengrass-ipc-rust/Cargo.toml \
            --target-dir "$out/peers"
        ;;
    c-sdk)
        if ! command -v cc >/dev/null; then
            echo "no C compiler (cc) to build the C SDK" >&2
            return 1
        fi
        if ! ls /usr/lib/llvm-*/lib/libclang.so* /usr/lib/*/libclang*.so* 2>/dev/null \
            | grep -q 'libclang\(-[0-9.]*\)\?\.so'; then
            echo "no libclang for bindgen (Debian: apt-get install libclang-dev)" >&2
            return 1
        fi
        "$cargo" build --release --quiet --locked \
            --manifest-path benches/peers/c-sdk/Cargo.toml \
            --target-dir "$out/peers"
        ;;
    python)
        local venv="$out/venv"
        if "$venv/bin/python" -c 'import awsiot.greengrasscoreipc.clientv2' 2>/dev/null; then
            return 0
        fi
        if ! command -v python3 >/dev/null; then
            echo "no python3" >&2
            return 1
        fi
        echo "installing awsiotsdk==$AWSIOTSDK_VERSION into $venv ..." >&2
        python3 -m venv "$venv"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
            "awsiotsdk==$AWSIOTSDK_VERSION"
        "$venv/bin/python" -c 'import awsiot.greengrasscoreipc.clientv2'
        ;;
    *)
        echo "unknown part $1 (emulator examples async-peer c-sdk python)" >&2
        return 2
        ;;
    esac
}

if [ $# -eq 0 ]; then
    set -- emulator examples async-peer c-sdk python
fi
status=0
for p in "$@"; do
    if ! part "$p"; then
        echo "prepare.sh: $p failed" >&2
        status=1
    fi
done
exit $status
