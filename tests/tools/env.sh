# Sourced by the scripts in tests/tools: where cargo puts its builds, and the venv with the
# official Python client. Honours CARGO_TARGET_DIR and build.target-dir (asks cargo).
#
#   . "$(dirname "${BASH_SOURCE[0]}")/env.sh"   # sets ROOT, TARGET_DIR, DEBUG_DIR
#   ggipc_venv                                  # sets PY (installs awsiotsdk once)

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
