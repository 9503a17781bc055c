# Sourced by the scripts in tests/tools: where cargo puts its builds, and the venv with the
# official Python client. Honours CARGO_TARGET_DIR and build.target-dir (asks cargo).
#
#   . "$(dirname "${BASH_SOURCE[0]}")/env.sh"   # sets ROOT, TARGET_DIR, DEBUG_DIR
#   ggipc_venv                                  # sets PY (installs awsiotsdk once)
#   ggipc_scratch NAME                          # sets WORK; stops $PID, removes WORK at exit

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TARGET_DIR=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps 2>/dev/null |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
if [ -z "$TARGET_DIR" ]; then
    echo "cannot ask cargo for the target directory (cargo metadata failed)" >&2
    exit 1
fi
DEBUG_DIR="$TARGET_DIR/debug"

# The venv with the official Python client (awsiotsdk from PyPI), shared by fidelity.sh,
# readme_shell.sh and v2_reordering.sh.
ggipc_venv() {
    local venv="$TARGET_DIR/fidelity-venv"
    PY="$venv/bin/python"
    if [ ! -x "$PY" ]; then
        mkdir -p "$TARGET_DIR"
        python3 -m venv "$venv"
    fi
    if ! "$PY" -c 'import awsiot.greengrasscoreipc.clientv2' 2>/dev/null; then
        "$PY" -m pip install --quiet --disable-pip-version-check awsiotsdk
    fi
}

# A scratch folder, $WORK, for a script that starts the emulator in the background and
# keeps its pid in $PID; at exit the emulator is stopped (`ggipc_stop_emulator`) and the
# folder removed.
ggipc_scratch() {
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/ggipc-$1.XXXXXX")
    PID=""
    trap 'ggipc_stop_emulator; rm -rf "$WORK"' EXIT
}

# Stops the emulator of $PID, if it runs: SIGTERM, then SIGKILL after 5 s.
ggipc_stop_emulator() {
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
        kill -TERM "$PID" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$PID" 2>/dev/null || true
    fi
    wait "$PID" 2>/dev/null || true
    PID=""
}
