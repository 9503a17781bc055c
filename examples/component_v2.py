# examples/component.rs written with the official Python V2 client (pip install awsiotsdk),
# to compare the two (README: "A whole component"); tests/tools/component_v2.sh runs it
# against ggipc-emulator.
# Same behaviour: configuration read and followed, every message under sensors/+
# republished as it came to IoT Core (dt/<topic>) and to a local topic (relayed/<topic>)
# from inside the handler, a secret, RUNNING, exit 0 on SIGTERM and non-zero when the
# nucleus goes away. Differences: the configuration stays a dict (no typed struct); an
# exception in a handler is printed by the V2 client itself (the Rust handlers return their
# error, which ggipc prints); the V2 client has no typed "follow the configuration", so the
# site is read after subscribing to its changes, and again on each change.
import json
import signal
import sys
import threading

from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2
from awsiot.greengrasscoreipc.model import PublishMessage, QOS, ReportedLifecycleState

ipc = GreengrassCoreIPCClientV2()  # reads the socket path and SVCUID from the environment


def show_site():
    print(f"site: {ipc.get_configuration(key_path=['settings']).value['site']}", flush=True)


def relay(event):
    message = event.json_message or event.binary_message
    payload = json.dumps(message.message).encode() if event.json_message else message.message
    ipc.publish_to_iot_core(topic_name=f"dt/{message.context.topic}", qos=QOS.AT_LEAST_ONCE,
                            payload=payload)
    ipc.publish_to_topic(topic=f"relayed/{message.context.topic}", publish_message=PublishMessage(
        json_message=event.json_message, binary_message=event.binary_message))


stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
ipc.subscribe_to_configuration_update(key_path=["settings"], on_stream_event=lambda _: show_site())
show_site()
ipc.subscribe_to_topic(topic="sensors/+", on_stream_event=relay, on_stream_closed=stop.set)
secret = ipc.get_secret_value(secret_id="MyGreengrassSecret").secret_value
print(f"secret: {len(secret.secret_string or secret.secret_binary)} bytes", flush=True)
ipc.update_state(state=ReportedLifecycleState.RUNNING)
stop.wait()
sys.exit("connection lost")
