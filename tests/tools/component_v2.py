"""Runs examples/component_v2.py (the component example written with the official Python V2
client) against the emulator and checks that it behaves as examples/component.rs does:
prints the site, the secret's length and each change of the site; relays a JSON and a binary
message to the local `relayed/` topics; exits 0 on SIGTERM and non-zero when the nucleus goes
away. Called by component_v2.sh with the relay's SVCUID and `term` or `nucleus-dies`; this
process itself connects as the observer (the environment's SVCUID)."""
import os
import signal
import subprocess
import sys
import threading
import time

from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2
from awsiot.greengrasscoreipc.model import BinaryMessage, JsonMessage, PublishMessage

relay_token, ending, emulator_pid = sys.argv[1], sys.argv[2], int(sys.argv[3])
component = subprocess.Popen(
    [sys.executable, "examples/component_v2.py"], env=dict(os.environ, SVCUID=relay_token),
    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
lines = []


def read_stdout():
    for line in component.stdout:
        lines.append(line.rstrip("\n"))


threading.Thread(target=read_stdout, daemon=True).start()


def wait_for(what, condition, within=20):
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            component.kill()
            sys.exit(f"not ok - {what}: not within {within} s (stdout: {lines})")
        time.sleep(0.05)
    print(f"ok - {what}")


wait_for("site and secret printed", lambda: lines[:2] == ["site: plant-1", "secret: 7 bytes"])
observer = GreengrassCoreIPCClientV2()
relayed = []
observer.subscribe_to_topic(topic="relayed/sensors/+", on_stream_event=relayed.append)
observer.publish_to_topic(topic="sensors/t1", publish_message=PublishMessage(
    json_message=JsonMessage(message={"celsius": 21.5})))
observer.publish_to_topic(topic="sensors/raw", publish_message=PublishMessage(
    binary_message=BinaryMessage(message=b"\x01\x02")))
wait_for("both messages relayed", lambda: len(relayed) == 2)
got = sorted((e.json_message or e.binary_message).context.topic for e in relayed)
if got != ["relayed/sensors/raw", "relayed/sensors/t1"]:
    sys.exit(f"not ok - relayed to {got}")
observer.publish_to_topic(topic="$ggipc/emulator/deploy", publish_message=PublishMessage(
    json_message=JsonMessage(message={
        "configuration": {"com.example.Relay": {"settings": {"site": "plant-2"}}}})))
wait_for("the change printed", lambda: "site: plant-2" in lines)
if ending == "term":
    component.send_signal(signal.SIGTERM)
else:
    os.kill(emulator_pid, signal.SIGTERM)
try:
    code = component.wait(timeout=10)
except subprocess.TimeoutExpired:
    component.kill()
    sys.exit(f"not ok - still running 10 s after {ending}")
if (code == 0) != (ending == "term"):
    sys.exit(f"not ok - exit {code} after {ending}: {component.stderr.read()}")
print(f"ok - exit {code} after {ending}")
observer.close()
