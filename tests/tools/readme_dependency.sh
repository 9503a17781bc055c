#!/usr/bin/env bash
# README "Using it in a component", as a new user does it (issue 14, item 1): in a temp dir
# outside the repository, runs the README's `dependency` block as written (`cargo new`,
# `cargo add ggipc --path ../ggipc`, where ../ggipc is a link to this clone), puts the
# README's `component` block in src/main.rs verbatim, builds it, and runs it against the
# ggipc-emulator binary with the README's `recipe` block: the component must subscribe,
# publish its status, and print an event that another component publishes.
#
# Offline when the registry cache has what it needs (it has, after `cargo test`); builds go
# to <target dir>/readme-project so later runs are incremental.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$ROOT"
cargo build --quiet --features emulator --bin ggipc-emulator --example publish
BIN="$DEBUG_DIR/ggipc-emulator"
PUBLISH="$DEBUG_DIR/examples/publish"
BLOCK="python3 $ROOT/tests/tools/readme_block.py $ROOT/README.md"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ggipc-readme-dep.XXXXXX")
EMU=""
COMP=""
stop() {
    local pid=$1
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
}
cleanup() {
    stop "$COMP"
    stop "$EMU"
    rm -rf "$WORK"
}
trap cleanup EXIT
fail() {
    echo "not ok - $*"
    for f in emulator.log component.out component.err; do
        [ -f "$WORK/$f" ] && { echo "--- $f"; cat "$WORK/$f"; }
    done
    exit 1
}
# Waits up to $1 tenths of a second for `grep -q "$3" "$2"`.
wait_for() {
    local tenths=$1 file=$2 pattern=$3
    for _ in $(seq 1 "$tenths"); do
        grep -qF -- "$pattern" "$file" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

ln -s "$ROOT" "$WORK/ggipc"
cd "$WORK"
$BLOCK dependency >dependency.sh
$BLOCK component >main.rs
$BLOCK recipe >recipe.yaml
echo "# the README's dependency block:"
sed 's/^/#   /' dependency.sh
# As written; offline first (no index update), online only if the cache lacks something.
if ! CARGO_NET_OFFLINE=true bash -e dependency.sh >dep.log 2>&1; then
    rm -rf my-component
    bash -e dependency.sh >dep.log 2>&1 || { cat dep.log; fail "the README's dependency block failed"; }
fi
cp main.rs my-component/src/main.rs
cd my-component
grep -q '^ggipc = {.*path = "../ggipc"' Cargo.toml || fail "cargo add wrote no path dependency: $(cat Cargo.toml)"
export CARGO_TARGET_DIR="$TARGET_DIR/readme-project"
if ! timeout 600 cargo build --offline --quiet 2>build.log; then
    timeout 600 cargo build --quiet 2>build.log || { cat build.log; fail "the README's component does not build in a fresh project"; }
fi
echo "ok - a fresh project with the README's dependency and component builds"
COMPONENT="$CARGO_TARGET_DIR/debug/my-component"

# A second component that publishes temperatures, so the README component has an event.
cat >"$WORK/sensor.yaml" <<'YAML'
ComponentName: com.example.Sensor
ComponentVersion: '1.0.0'
ComponentConfiguration:
  DefaultConfiguration:
    accessControl:
      aws.greengrass.ipc.pubsub:
        com.example.Sensor:pubsub:1:
          operations: [aws.greengrass#PublishToTopic]
          resources: [factory/line1/temperature]
YAML
cd "$WORK"
"$BIN" --socket "$WORK/ipc.socket" --recipe recipe.yaml --recipe sensor.yaml \
    --env-file "$WORK/env.sh" >/dev/null 2>"$WORK/emulator.log" </dev/null &
EMU=$!
for _ in $(seq 1 100); do [ -f "$WORK/env.sh" ] && break; sleep 0.1; done
[ -f "$WORK/env.sh" ] || fail "no env file within 10 s"
. "$WORK/env.sh"
SENSOR=$(sed -n "s/^# com.example.Sensor: SVCUID=//p" "$WORK/env.sh" | tr -d "'")
[ -n "$SENSOR" ] || fail "no SVCUID for the sensor in env.sh"

"$COMPONENT" >"$WORK/component.out" 2>"$WORK/component.err" </dev/null &
COMP=$!
wait_for 100 "$WORK/emulator.log" 'com.example.Factory SubscribeToTopic ["factory/+/temperature"] -> ok' ||
    fail "the component did not subscribe within 10 s"
wait_for 100 "$WORK/emulator.log" 'com.example.Factory PublishToTopic ["factory/line1/status"] -> ok' ||
    fail "the component did not publish its status within 10 s"
echo "ok - the README component subscribed and published (emulator log)"

SVCUID=$SENSOR timeout 20 "$PUBLISH" factory/line1/temperature '{"celsius": 21.5}' ||
    fail "the sensor could not publish"
wait_for 100 "$WORK/component.out" 'factory/line1/temperature: ' || fail "the component printed no event within 10 s"
grep -q '21.5' "$WORK/component.out" || fail "the event printed lacks its payload"
echo "ok - the README component printed: $(head -1 "$WORK/component.out")"

stop "$COMP"
COMP=""
wait_for 50 "$WORK/emulator.log" 'com.example.Factory disconnected' || fail "no disconnect logged within 5 s"
echo "ok - the emulator logged the component's disconnect"
