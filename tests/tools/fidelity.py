"""Fidelity check: the official Python client against ggipc-emulator.

Run by tests/tools/fidelity.sh with the emulator's exported environment. Prints one line
per check (`ok - ...` / `not ok - ...`), then `N passed, M failed`; exits 1 on any failure.
"""

import datetime
import json
import queue
import sys
import traceback

from awsiot.greengrasscoreipc.clientv2 import GreengrassCoreIPCClientV2
from awsiot.greengrasscoreipc.model import (
    QOS,
    BinaryMessage,
    ConfigurationValidityReport,
    ConfigurationValidityStatus,
    ConflictError,
    FailedUpdateConditionCheckError,
    InvalidArgumentsError,
    JsonMessage,
    PublishMessage,
    ReceiveMode,
    ReportedLifecycleState,
    ResourceNotFoundError,
    ServiceError,
    UnauthorizedError,
)

WAIT = 10.0
DEPLOY_TOPIC = "$ggipc/emulator/deploy"
COMPONENT = "com.example.Fidelity"
passed = 0
failed = 0


def check(name, fn):
    global passed, failed
    try:
        result = fn()
        if result is False:
            raise AssertionError("check returned False")
        print(f"ok - {name}", flush=True)
        passed += 1
    except Exception as e:  # noqa: BLE001 - any failure is a failed check
        print(f"not ok - {name}: {type(e).__name__}: {e}", flush=True)
        traceback.print_exc(file=sys.stderr)
        failed += 1


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


ipc = GreengrassCoreIPCClientV2()

# --- pub/sub -------------------------------------------------------------------------
events = queue.Queue()


def on_message(event):
    if event.json_message is not None:
        events.put(("json", event.json_message.context.topic, event.json_message.message))
    elif event.binary_message is not None:
        events.put(("binary", event.binary_message.context.topic, event.binary_message.message))


sub_resp, sub_op = ipc.subscribe_to_topic(
    topic="fidelity/+/data",
    receive_mode=ReceiveMode.RECEIVE_ALL_MESSAGES,
    on_stream_event=on_message,
)


def pubsub_json():
    ipc.publish_to_topic(
        topic="fidelity/a/data",
        publish_message=PublishMessage(json_message=JsonMessage(message={"t": 21.5, "n": None})),
    )
    kind, topic, message = events.get(timeout=WAIT)
    expect(kind == "json", f"kind {kind}")
    expect(topic == "fidelity/a/data", f"topic {topic}")
    expect(message == {"t": 21.5, "n": None}, f"message {message}")


def pubsub_binary():
    payload = bytes(range(256))
    ipc.publish_to_topic(
        topic="fidelity/b/data",
        publish_message=PublishMessage(binary_message=BinaryMessage(message=payload)),
    )
    kind, topic, message = events.get(timeout=WAIT)
    expect(kind == "binary", f"kind {kind}")
    expect(topic == "fidelity/b/data", f"topic {topic}")
    expect(message == payload, "payload differs")


def denied_publish():
    try:
        ipc.publish_to_topic(
            topic="forbidden/topic",
            publish_message=PublishMessage(json_message=JsonMessage(message={})),
        )
    except UnauthorizedError as e:
        expect(COMPONENT in (e.message or ""), f"message {e.message!r}")
        return
    raise AssertionError("the publish was not denied")


check("pub/sub JSON message through a wildcard subscription", pubsub_json)
check("pub/sub binary message through a wildcard subscription", pubsub_binary)
check("publish outside the policy is UnauthorizedError", denied_publish)
sub_op.close()

# --- configuration -------------------------------------------------------------------


def get_config():
    resp = ipc.get_configuration(key_path=["mqtt"])
    expect(resp.component_name == COMPONENT, f"component {resp.component_name}")
    expect(resp.value == {"port": 1883, "host": "localhost"}, f"value {resp.value}")
    leaf = ipc.get_configuration(key_path=["greeting"])
    expect(leaf.value == {"greeting": "hello"}, f"leaf {leaf.value}")


config_events = queue.Queue()
cfg_resp, cfg_op = ipc.subscribe_to_configuration_update(
    key_path=["mqtt"],
    on_stream_event=lambda e: config_events.put(list(e.configuration_update_event.key_path)),
)


def update_config():
    ipc.update_configuration(
        key_path=["mqtt"],
        timestamp=datetime.datetime.now(datetime.timezone.utc),
        value_to_merge={"port": 8883},
    )
    expect(ipc.get_configuration(key_path=["mqtt", "port"]).value == {"port": 8883}, "port not merged")
    expect(ipc.get_configuration(key_path=["mqtt", "host"]).value == {"host": "localhost"}, "host lost")


def config_event():
    path = config_events.get(timeout=WAIT)
    expect(path == ["mqtt", "port"], f"key path {path}")


def missing_key():
    try:
        ipc.get_configuration(key_path=["no", "such", "key"])
    except ResourceNotFoundError:
        return
    raise AssertionError("no ResourceNotFoundError")


check("GetConfiguration of a map and of a leaf", get_config)
check("UpdateConfiguration merges", update_config)
check("SubscribeToConfigurationUpdate reports the changed key path", config_event)
check("GetConfiguration of a missing key is ResourceNotFoundError", missing_key)

# --- lifecycle, secrets, shadows ------------------------------------------------------
check("UpdateState RUNNING", lambda: ipc.update_state(state=ReportedLifecycleState.RUNNING) is not None)


def secret_by_name():
    resp = ipc.get_secret_value(secret_id="fidelity-db-password")
    expect(resp.secret_value.secret_string == "correct horse battery staple", "secret string")
    expect(resp.secret_id.endswith(":secret:fidelity-db-password"), f"secret id {resp.secret_id}")
    expect(resp.version_id == "11111111-1111-1111-1111-111111111111", f"version {resp.version_id}")


def secret_binary():
    resp = ipc.get_secret_value(
        secret_id="arn:aws:secretsmanager:us-east-1:000000000000:secret:fidelity-key"
    )
    expect(resp.secret_value.secret_binary == bytes([0, 1, 2, 3, 255]), "secret bytes")


def secret_denied():
    try:
        ipc.get_secret_value(secret_id="other-secret")
    except UnauthorizedError:
        return
    raise AssertionError("not denied")


check("GetSecretValue by name (string)", secret_by_name)
check("GetSecretValue by ARN (binary)", secret_binary)
check("GetSecretValue outside the policy is UnauthorizedError", secret_denied)


def shadow_update_and_get():
    doc = {"state": {"desired": {"color": "red"}, "reported": {"color": "blue"}}}
    resp = ipc.update_thing_shadow(thing_name="fidelity-thing", payload=json.dumps(doc).encode())
    updated = json.loads(resp.payload)
    expect(updated["version"] == 1, f"version {updated}")
    got = json.loads(ipc.get_thing_shadow(thing_name="fidelity-thing").payload)
    expect(got["state"]["desired"] == {"color": "red"}, f"desired {got}")
    expect(got["state"]["delta"] == {"color": "red"}, f"delta {got}")


check("UpdateThingShadow then GetThingShadow (delta)", shadow_update_and_get)

# --- the nucleus's rules, one case per family (see the tables in src/emulator/*.rs) ------


def expect_raises(kind, text, fn):
    try:
        fn()
    except kind as e:
        message = e.message or ""
        expect(message.startswith(text), f"{kind.__name__} message {message!r}")
        return
    raise AssertionError(f"no {kind.__name__}")


def rule_limits():
    # Shadow: desired + reported over 8 KiB; IoT Core: more than 7 '/' in a topic.
    big = {"state": {"reported": {"big": "x" * 8192}}}
    expect_raises(
        InvalidArgumentsError,
        "The payload exceeds the maximum size allowed",
        lambda: ipc.update_thing_shadow(thing_name="fidelity-thing", payload=json.dumps(big).encode()),
    )
    expect_raises(
        ServiceError,
        "Publish to topic fidelity/1/2/3/4/5/6/7/8 failed: The request topic must have no more than 7",
        lambda: ipc.publish_to_iot_core(topic_name="fidelity/1/2/3/4/5/6/7/8", qos=QOS.AT_LEAST_ONCE, payload=b"x"),
    )
    ipc.publish_to_iot_core(topic_name="fidelity/1/2/3/4/5/6/7", qos=QOS.AT_LEAST_ONCE, payload=b"x")


def rule_versions():
    current = json.loads(ipc.get_thing_shadow(thing_name="fidelity-thing").payload)
    expect("metadata" in current, f"no metadata in {current}")
    stale = {"state": {"desired": {"color": "green"}}, "version": current["version"] + 5}
    expect_raises(
        ConflictError,
        "Version conflict",
        lambda: ipc.update_thing_shadow(thing_name="fidelity-thing", payload=json.dumps(stale).encode()),
    )
    after = json.loads(ipc.get_thing_shadow(thing_name="fidelity-thing").payload)
    expect(after["version"] == current["version"], "a rejected update changed the version")
    expect(after["state"]["desired"] == current["state"]["desired"], "a rejected update stored")


def rule_case_insensitivity():
    leaf = ipc.get_configuration(key_path=["MQTT", "Port"]).value
    expect(leaf == {"port": 8883}, f"leaf {leaf}")
    ipc.update_configuration(
        key_path=["Mqtt"],
        timestamp=datetime.datetime.now(datetime.timezone.utc),
        value_to_merge={"HOST": "example"},
    )
    mqtt = ipc.get_configuration(key_path=["mqtt"]).value
    expect(mqtt == {"port": 8883, "host": "example"}, f"mqtt {mqtt}")


def rule_error_types():
    expect_raises(ResourceNotFoundError, "Secret not configured no-such-secret",
                  lambda: ipc.get_secret_value(secret_id="no-such-secret"))
    expect_raises(ServiceError, "SecretId absent in the request", lambda: ipc.get_secret_value(secret_id=""))
    expect_raises(UnauthorizedError, "Not Authorized",
                  lambda: ipc.publish_to_iot_core(topic_name="denied/x", qos=QOS.AT_LEAST_ONCE, payload=b"x"))
    expect_raises(ServiceError, "Publish to topic fidelity/+ failed",
                  lambda: ipc.publish_to_iot_core(topic_name="fidelity/+", qos=QOS.AT_LEAST_ONCE, payload=b"x"))
    expect_raises(ResourceNotFoundError, "Key not found", lambda: ipc.get_configuration(key_path=["nope"]))
    old = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)
    expect_raises(
        FailedUpdateConditionCheckError,
        "Proposed timestamp is older than the config's latest modified timestamp",
        lambda: ipc.update_configuration(key_path=["mqtt"], timestamp=old, value_to_merge={"port": 1, "extra": 2}),
    )
    mqtt = ipc.get_configuration(key_path=["mqtt"]).value
    expect(mqtt.get("port") == 8883 and mqtt.get("extra") == 2, f"partial stale update {mqtt}")


check("rules: limits (shadow 8 KiB, IoT Core topic slashes)", rule_limits)
check("rules: versions (conflict stores nothing, metadata)", rule_versions)
check("rules: configuration keys are case-insensitive", rule_case_insensitivity)
check("rules: error types and the nucleus's texts", rule_error_types)

# --- deployment: validation, deferral ---------------------------------------------------
validations = queue.Queue()
updates = queue.Queue()
val_resp, val_op = ipc.subscribe_to_validate_configuration_updates(
    on_stream_event=lambda e: validations.put(e.validate_configuration_update_event),
)
upd_resp, upd_op = ipc.subscribe_to_component_updates(
    on_stream_event=lambda e: updates.put(e),
)


def deployment_flow():
    ipc.publish_to_topic(
        topic=DEPLOY_TOPIC,
        publish_message=PublishMessage(
            json_message=JsonMessage(message={"configuration": {COMPONENT: {"greeting": "hi"}}})
        ),
    )
    validation = validations.get(timeout=WAIT)
    expect(validation.configuration.get("greeting") == "hi", f"proposed {validation.configuration}")
    ipc.send_configuration_validity_report(
        configuration_validity_report=ConfigurationValidityReport(
            status=ConfigurationValidityStatus.ACCEPTED, deployment_id=validation.deployment_id
        )
    )
    first = updates.get(timeout=WAIT)
    expect(first.pre_update_event is not None, "expected a pre-update event")
    deployment_id = first.pre_update_event.deployment_id
    expect(deployment_id == validation.deployment_id, "deployment ids differ")
    ipc.defer_component_update(deployment_id=deployment_id, message="busy", recheck_after_ms=300)
    second = updates.get(timeout=WAIT)
    expect(second.pre_update_event is not None, "the deferred update was not re-offered")
    ipc.defer_component_update(deployment_id=deployment_id, recheck_after_ms=0)
    post = updates.get(timeout=WAIT)
    expect(post.post_update_event is not None, "expected a post-update event")
    value = ipc.get_configuration(key_path=["greeting"]).value
    expect(value == {"greeting": "hi"}, f"greeting {value}")


check("deployment: validate, defer once, then update", deployment_flow)
val_op.close()
upd_op.close()
cfg_op.close()
ipc.close()

print(f"{passed} passed, {failed} failed", flush=True)
sys.exit(1 if failed else 0)
