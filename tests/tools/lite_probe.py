"""Probe a nucleus lite IPC server with the official Python client (manual tool).

Runs the same cases against a real nucleus lite (built with /work/shared/tools/nucleus-lite,
see its README) and against `ggipc-emulator --flavor lite`, so the two can be compared:

    AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT=... SVCUID=... python3 lite_probe.py

Prints one `case: result` line per case; the results are facts to compare, not pass/fail.
Not run by CI (it needs the lite peer, which needs root to run).
"""

import base64
import datetime
import os
import queue
import re

from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2
from awsiot.greengrasscoreipc.model import (
    BinaryMessage,
    JsonMessage,
    PublishMessage,
    ReceiveMode,
)

WAIT = 3.0


def outcome(fn):
    try:
        r = fn()
        return f"ok {r}" if r is not None else "ok"
    except Exception as e:  # noqa: BLE001 - the type is the result
        msg = getattr(e, "message", None) or str(e)
        return f"{type(e).__name__}: {msg[:90]}"


def report(name, result):
    print(f"{name}: {result}", flush=True)


svcuid = os.environ["SVCUID"]
report("svcuid is 16 base64 characters",
       len(svcuid) == 16 and re.fullmatch(r"[A-Za-z0-9+/]{16}", svcuid) is not None
       and len(base64.b64decode(svcuid)) == 12)

ipc = GreengrassCoreIPCClientV2()

# receiveMode
got = queue.Queue()
_, op = ipc.subscribe_to_topic(
    topic="probe/own", receive_mode=ReceiveMode.RECEIVE_MESSAGES_FROM_OTHERS,
    on_stream_event=lambda e: got.put(e.json_message.message if e.json_message else None),
)
ipc.publish_to_topic(topic="probe/own", publish_message=PublishMessage(json_message=JsonMessage(message={"n": 1})))
try:
    own = got.get(timeout=WAIT)
    report("RECEIVE_MESSAGES_FROM_OTHERS gets own message", f"yes {own}")
except queue.Empty:
    report("RECEIVE_MESSAGES_FROM_OTHERS gets own message", "no")
op.close()

# wildcards in a publish topic
for topic in ["probe/+", "probe/#"]:
    report(f"publish to {topic}", outcome(lambda: ipc.publish_to_topic(
        topic=topic, publish_message=PublishMessage(json_message=JsonMessage(message={})))))

# stale UpdateConfiguration
now = datetime.datetime.now(datetime.timezone.utc)
report("update probeKey=1 now", outcome(lambda: ipc.update_configuration(
    key_path=[], timestamp=now, value_to_merge={"probeKey": 1})))
report("update probeKey=2 one minute earlier", outcome(lambda: ipc.update_configuration(
    key_path=[], timestamp=now - datetime.timedelta(minutes=1), value_to_merge={"probeKey": 2})))
report("probeKey afterwards", outcome(lambda: ipc.get_configuration(key_path=["probeKey"]).value))
report("get missing key", outcome(lambda: ipc.get_configuration(key_path=["no", "such"])))
report("get leaf", outcome(lambda: ipc.get_configuration(key_path=["probeKey"]).value))
report("unsupported operation (GetSecretValue)", outcome(lambda: ipc.get_secret_value(secret_id="x")))
ipc.close()

# frame limit: binary publishes on topic b/t, each on a fresh connection
for size in [7305, 7306]:
    c = GreengrassCoreIPCClientV2()
    report(f"binary publish of {size} bytes on b/t", outcome(lambda: c.publish_to_topic(
        topic="b/t", publish_message=PublishMessage(binary_message=BinaryMessage(message=b"x" * size)))))
    try:
        c.close()
    except Exception:  # noqa: BLE001
        pass
