//! The emulator (`nucleus` flavour) answers as the Java nucleus and its services do: one
//! check per rule of the tables in the area modules' docs (`src/emulator/shadows.rs`,
//! `iotcore.rs`, `configuration.rs`, `secrets.rs`, `pubsub.rs`, `lifecycle.rs`), each
//! naming the error type and the start of the nucleus's text.

mod common;

use std::time::Duration;

use common::*;
use crossbeam_channel::unbounded;
use ggipc::emulator::{Emulator, RecipeFormat, Secret, SimulatedDeployment};
use ggipc::model::{
    ComponentUpdatePolicyEvents, IoTCoreMessage, IpcError, Qos, SubscribeToComponentUpdatesRequest,
    SubscribeToIoTCoreRequest, SubscribeToTopicRequest, SubscriptionResponseMessage,
};
use ggipc::{CallOptions, Client};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(5);
const ME: &str = "com.example.Fid";

const RECIPE: &str = r#"
ComponentName: com.example.Fid
ComponentVersion: '1.0.0'
ComponentConfiguration:
  DefaultConfiguration:
    limits: { max: 10, min: 1 }
    _hidden: secret-ish
    nested: { _x: 1, y: 2 }
    accessControl:
      aws.greengrass.ShadowManager:
        s:
          operations: ['*']
          resources: ['*']
      aws.greengrass.ipc.mqttproxy:
        m:
          operations: ['*']
          resources: ['dt/#', 'long/#', '$aws/#', '$share/#', 'a/#']
      aws.greengrass.ipc.pubsub:
        p:
          operations: ['*']
          resources: ['fid/*']
      aws.greengrass.SecretManager:
        sec:
          operations: [aws.greengrass#GetSecretValue]
          resources: ['arn:aws:secretsmanager:us-east-1:000000000000:secret:ok*']
      aws.greengrass.ipc.lifecycle:
        l:
          operations: ['*']
          resources: ['*']
"#;

fn emulator(name: &str) -> Emulator {
    Emulator::builder()
        .socket_path(unique_socket_path(name))
        .recipe_str(RECIPE, RecipeFormat::Yaml)
        .secret(Secret::string("ok-secret", "v1").with_version_id("v-1"))
        .secret(Secret::string("denied-secret", "no"))
        .start()
        .unwrap()
}

fn call(client: &Client, op: &str, body: Value) -> Result<Value, ggipc::Error> {
    client.call_json(op, &body, CallOptions::default())
}

/// Asserts an error of `kind` (short model name) whose text starts with `text`.
#[track_caller]
fn expect_error(result: Result<Value, ggipc::Error>, kind: &str, text: &str) -> IpcError {
    let e = match result {
        Err(e) => e
            .as_service_error()
            .cloned()
            .unwrap_or_else(|| panic!("not a service error: {e:?}")),
        Ok(v) => panic!("expected {kind} {text:?}, got {v}"),
    };
    let model = e.model_type().unwrap_or_default().to_owned();
    assert_eq!(model, format!("aws.greengrass#{kind}"), "{e:?}");
    assert!(
        e.message().starts_with(text),
        "{kind}: {:?} does not start with {text:?}",
        e.message()
    );
    e
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unb64(v: &Value) -> Value {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(v["payload"].as_str().unwrap())
        .unwrap();
    if bytes.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(&bytes).unwrap()
}

fn update(client: &Client, thing: &str, doc: &Value) -> Result<Value, ggipc::Error> {
    call(
        client,
        "UpdateThingShadow",
        json!({"thingName": thing, "payload": b64(doc.to_string().as_bytes())}),
    )
    .map(|v| unb64(&v))
}

fn nested(levels: usize) -> Value {
    // `levels` containers counting the returned one (which becomes `desired`), the
    // innermost holding a leaf.
    let mut v = json!(1);
    for i in (0..levels).rev() {
        v = json!({ format!("k{i}"): v });
    }
    v
}

#[test]
fn shadow_names_payloads_and_schema_are_validated() {
    let emu = emulator("fid-shadow-validate");
    let client = emu.connect().unwrap();
    let doc = json!({"state": {"desired": {"a": 1}}});
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        (
            "empty thing",
            json!({"thingName": ""}),
            "InvalidArgumentsError",
            "ThingName is missing",
        ),
        (
            "long thing",
            json!({"thingName": "t".repeat(129)}),
            "InvalidArgumentsError",
            "ThingName has a maximum length of 128",
        ),
        (
            "thing pattern",
            json!({"thingName": "a b"}),
            "InvalidArgumentsError",
            "ThingName must match pattern [a-zA-Z0-9:_-]+",
        ),
        (
            "long shadow",
            json!({"thingName": "t", "shadowName": "s".repeat(65)}),
            "InvalidArgumentsError",
            "ShadowName has a maximum length of 64",
        ),
        (
            "shadow pattern",
            json!({"thingName": "t", "shadowName": "x/y"}),
            "InvalidArgumentsError",
            "ShadowName must match pattern",
        ),
    ];
    for (what, names, kind, text) in cases {
        for op in ["GetThingShadow", "DeleteThingShadow"] {
            let e = expect_error(call(&client, op, names.clone()), kind, text);
            let _ = (what, e);
        }
        let mut body = names.clone();
        body["payload"] = json!(b64(doc.to_string().as_bytes()));
        expect_error(call(&client, "UpdateThingShadow", body), kind, text);
    }
    // The limits themselves are accepted.
    update(&client, &"t".repeat(128), &doc).unwrap();
    call(&client, "UpdateThingShadow", json!({"thingName": "t:_-9", "shadowName": "s".repeat(64), "payload": b64(doc.to_string().as_bytes())})).unwrap();

    let payload = |bytes: &[u8]| json!({"thingName": "p", "payload": b64(bytes)});
    expect_error(
        call(&client, "UpdateThingShadow", payload(b"")),
        "InvalidArgumentsError",
        "Missing update payload",
    );
    expect_error(
        call(&client, "UpdateThingShadow", payload(b"not json")),
        "ServiceError",
        "",
    );
    for bad in [
        json!({}),
        json!(null),
        json!({"version": 1}),
        json!({"state": 5}),
        json!({"state": {"desired": 5}}),
        json!({"state": {"foo": 1}}),
        json!({"state": {"desired": {"a": 1}}, "clientToken": "c".repeat(65)}),
        json!({"state": {"desired": {"a": 1}}, "version": -1}),
    ] {
        expect_error(
            call(
                &client,
                "UpdateThingShadow",
                payload(bad.to_string().as_bytes()),
            ),
            "InvalidArgumentsError",
            "Invalid JSON: ",
        );
    }
    // A state with desired/reported may hold other members; `delta` is dropped.
    let r = update(&client, "p", &json!({"state": {"desired": {"a": 1}, "delta": {"x": 1}, "other": 2}, "clientToken": "c".repeat(64)})).unwrap();
    assert_eq!(r["clientToken"], json!("c".repeat(64)));
    assert!(r["state"].get("delta").is_none(), "{r}");
    assert!(emu.device().shadow("p", "").is_some());
    // Nothing rejected above created a shadow.
    for thing in ["", "a b"] {
        assert!(emu.device().shadow(thing, "").is_none());
    }
}

#[test]
fn shadow_depth_size_and_version_rules() {
    let emu = emulator("fid-shadow-limits");
    let client = emu.connect().unwrap();
    // Depth: six levels of containers (`desired` is the first) pass, seven fail.
    update(&client, "d", &json!({"state": {"desired": nested(6)}})).unwrap();
    expect_error(
        update(&client, "d", &json!({"state": {"reported": nested(7)}})),
        "InvalidArgumentsError",
        "JSON contains too many levels of nesting; maximum is 6",
    );
    // Versions: a new shadow takes 1 or none; a rejected update stores nothing.
    expect_error(
        update(
            &client,
            "v",
            &json!({"state": {"desired": {"a": 1}}, "version": 2}),
        ),
        "InvalidArgumentsError",
        "Invalid version",
    );
    expect_error(
        update(
            &client,
            "v",
            &json!({"state": {"desired": {"a": 1}}, "version": 0}),
        ),
        "InvalidArgumentsError",
        "Invalid version",
    );
    assert!(
        emu.device().shadow("v", "").is_none(),
        "a rejected update stored a shadow"
    );
    expect_error(
        call(&client, "GetThingShadow", json!({"thingName": "v"})),
        "ResourceNotFoundError",
        "No shadow found",
    );
    let r = update(
        &client,
        "v",
        &json!({"state": {"desired": {"a": 1}}, "version": 1}),
    )
    .unwrap();
    assert_eq!(r["version"], 1);
    let e = expect_error(
        update(
            &client,
            "v",
            &json!({"state": {"desired": {"a": 2}}, "version": 5}),
        ),
        "ConflictError",
        "Version conflict",
    );
    let _ = e;
    assert_eq!(
        emu.device().shadow("v", "").unwrap()["state"]["desired"]["a"],
        1,
        "conflict stored nothing"
    );
    let r = update(
        &client,
        "v",
        &json!({"state": {"desired": {"a": 2}}, "version": 1}),
    )
    .unwrap();
    assert_eq!(r["version"], 2);
    // Size: desired + reported over 8 KiB is refused and stores nothing.
    let big = "x".repeat(8 * 1024);
    expect_error(
        update(&client, "v", &json!({"state": {"reported": {"big": big}}})),
        "InvalidArgumentsError",
        "The payload exceeds the maximum size allowed",
    );
    let got = unb64(&call(&client, "GetThingShadow", json!({"thingName": "v"})).unwrap());
    assert_eq!(got["version"], 2);
    assert!(got["state"].get("reported").is_none(), "{got}");
    let fits = "x".repeat(8 * 1024 - 200);
    update(&client, "v", &json!({"state": {"reported": {"big": fits}}})).unwrap();
}

#[test]
fn shadow_documents_carry_metadata_delta_and_delete_semantics() {
    let emu = emulator("fid-shadow-doc");
    let client = emu.connect().unwrap();
    let r = update(
        &client,
        "m",
        &json!({"state": {"desired": {"color": "red", "list": [1, 2]}, "reported": {"color": "blue"}}}),
    )
    .unwrap();
    let ts = r["timestamp"].as_i64().unwrap();
    assert_eq!(r["metadata"]["desired"]["color"]["timestamp"], ts, "{r}");
    assert_eq!(
        r["metadata"]["desired"]["list"],
        json!([{"timestamp": ts}, {"timestamp": ts}])
    );
    assert_eq!(r["state"]["reported"], json!({"color": "blue"}));
    let got = unb64(&call(&client, "GetThingShadow", json!({"thingName": "m"})).unwrap());
    assert_eq!(
        got["metadata"]["reported"]["color"]["timestamp"], ts,
        "{got}"
    );
    assert_eq!(
        got["state"]["delta"],
        json!({"color": "red", "list": [1, 2]})
    );
    assert_eq!(got["version"], 1);
    // `null` removes a key and its metadata; `{}` clears the part's state (its metadata
    // stays, as ShadowStateMetadata.update skips an empty patch); `null` clears both.
    update(&client, "m", &json!({"state": {"desired": {"list": null}}})).unwrap();
    let got = unb64(&call(&client, "GetThingShadow", json!({"thingName": "m"})).unwrap());
    assert!(got["metadata"]["desired"].get("list").is_none(), "{got}");
    update(&client, "m", &json!({"state": {"desired": {}}})).unwrap();
    let got = unb64(&call(&client, "GetThingShadow", json!({"thingName": "m"})).unwrap());
    assert!(got["state"].get("desired").is_none(), "{got}");
    assert!(got["metadata"].get("desired").is_some(), "{got}");
    update(&client, "m", &json!({"state": {"desired": null}})).unwrap();
    let got = unb64(&call(&client, "GetThingShadow", json!({"thingName": "m"})).unwrap());
    assert!(got["metadata"].get("desired").is_none(), "{got}");
    // Numbers compare by value in the delta.
    update(
        &client,
        "m",
        &json!({"state": {"desired": {"n": 1}, "reported": {"n": 1.0}}}),
    )
    .unwrap();
    let got = unb64(&call(&client, "GetThingShadow", json!({"thingName": "m"})).unwrap());
    assert!(
        got["state"]
            .get("delta")
            .map_or(true, |d| d.get("n").is_none()),
        "{got}"
    );
    // Delete: an empty payload; the next update starts again at version 1.
    let deleted = call(&client, "DeleteThingShadow", json!({"thingName": "m"})).unwrap();
    assert_eq!(unb64(&deleted), Value::Null, "{deleted}");
    let e = expect_error(
        call(&client, "DeleteThingShadow", json!({"thingName": "m"})),
        "ResourceNotFoundError",
        "No shadow found",
    );
    match e {
        IpcError::ResourceNotFound(r) => assert_eq!(r.resource_type.as_deref(), Some("shadow")),
        other => panic!("{other:?}"),
    }
    let r = update(&client, "m", &json!({"state": {"reported": {"on": true}}})).unwrap();
    assert_eq!(r["version"], 1);
    // List: page size bounds; a full last page is followed by an empty one.
    expect_error(
        call(
            &client,
            "ListNamedShadowsForThing",
            json!({"thingName": "m", "pageSize": 0}),
        ),
        "InvalidArgumentsError",
        "pageSize argument must be between 1 and 100",
    );
    expect_error(
        call(
            &client,
            "ListNamedShadowsForThing",
            json!({"thingName": "a b"}),
        ),
        "InvalidArgumentsError",
        "ThingName must match pattern",
    );
    for name in ["one", "two"] {
        call(&client, "UpdateThingShadow", json!({"thingName": "m", "shadowName": name, "payload": b64(br#"{"state":{"reported":{"x":1}}}"#)})).unwrap();
    }
    let page = call(
        &client,
        "ListNamedShadowsForThing",
        json!({"thingName": "m", "pageSize": 2}),
    )
    .unwrap();
    assert_eq!(page["results"], json!(["one", "two"]));
    let token = page["nextToken"].clone();
    assert!(token.is_string(), "{page}");
    let next = call(
        &client,
        "ListNamedShadowsForThing",
        json!({"thingName": "m", "pageSize": 2, "nextToken": token}),
    )
    .unwrap();
    assert_eq!(next["results"], json!([]));
    assert!(next.get("nextToken").is_none(), "{next}");
}

fn publish(
    client: &Client,
    topic: &str,
    payload: Option<Vec<u8>>,
    qos: Option<&str>,
) -> Result<Value, ggipc::Error> {
    let mut body = json!({"topicName": topic});
    if let Some(p) = payload {
        body["payload"] = json!(b64(&p));
    }
    if let Some(q) = qos {
        body["qos"] = json!(q);
    }
    call(client, "PublishToIoTCore", body)
}

#[test]
fn iot_core_limits_topics_and_error_types() {
    let emu = emulator("fid-iot");
    let client = emu.connect().unwrap();
    let p = || Some(b"x".to_vec());
    expect_error(
        call(
            &client,
            "PublishToIoTCore",
            json!({"qos": "1", "payload": b64(b"x")}),
        ),
        "InvalidArgumentsError",
        "Topic is required",
    );
    expect_error(
        publish(&client, "dt/a", None, Some("1")),
        "InvalidArgumentsError",
        "Payload is required",
    );
    expect_error(
        publish(&client, "dt/a", p(), None),
        "InvalidArgumentsError",
        "QoS is required",
    );
    expect_error(
        publish(&client, "dt/a", p(), Some("2")),
        "InvalidArgumentsError",
        "Invalid QoS value: 2",
    );
    expect_error(
        publish(&client, "denied/a", p(), Some("1")),
        "UnauthorizedError",
        "Not Authorized",
    );
    // Payload: 128 KiB passes, one byte more is a ServiceError.
    publish(&client, "dt/big", Some(vec![7; 128 * 1024]), Some("1")).unwrap();
    expect_error(
        publish(&client, "dt/big", Some(vec![7; 128 * 1024 + 1]), Some("1")),
        "ServiceError",
        "Publish to topic dt/big failed: The publishing message size 131073 bytes exceeds the configured limit of 131072 bytes",
    );
    // Topics: 7 slashes and 256 characters pass; more is a ServiceError; so is a wildcard.
    publish(&client, "dt/1/2/3/4/5/6/7", p(), Some("1")).unwrap();
    expect_error(publish(&client, "dt/1/2/3/4/5/6/7/8", p(), Some("1")), "ServiceError", "Publish to topic dt/1/2/3/4/5/6/7/8 failed: The request topic must have no more than 7 forward slashes (/)");
    let long = format!("long/{}", "x".repeat(251));
    publish(&client, &long, p(), Some("1")).unwrap();
    expect_error(publish(&client, &format!("{long}x"), p(), Some("1")), "ServiceError", &format!("Publish to topic {long}x failed: The topic size of request must be no larger than 256 bytes"));
    expect_error(publish(&client, "dt/+", p(), Some("1")), "ServiceError", "Publish to topic dt/+ failed: Publish topics must not contain wildcard characters of '#' or '+'");
    // The basic ingest prefix does not count.
    publish(&client, "$aws/rules/r/1/2/3/4/5/6/7", p(), Some("1")).unwrap();
    // Subscribe: the same checks as ServiceError; a malformed filter too.
    let sub = |topic: &str| {
        client
            .subscribe_to_iot_core(
                SubscribeToIoTCoreRequest::new(topic, Qos::AtLeastOnce),
                |_e: IoTCoreMessage| {},
            )
            .map(|_| Value::Null)
    };
    expect_error(sub("dt/1/2/3/4/5/6/7/8"), "ServiceError", "Subscribe to topic dt/1/2/3/4/5/6/7/8 failed with error com.aws.greengrass.mqttclient.MqttRequestException: The request topic must have no more than 7 forward slashes (/)");
    expect_error(
        sub("a/#/b"),
        "ServiceError",
        "Subscribe to topic a/#/b failed with error",
    );
    sub("$share/g/1/2/3/4/5/6/7/8").unwrap();
    expect_error(
        sub("$share/g/1/2/3/4/5/6/7/8/9"),
        "ServiceError",
        "Subscribe to topic",
    );
    expect_error(sub("denied"), "UnauthorizedError", "Not Authorized");
    // Offline: QoS 0 is dropped with a ServiceError, QoS 1 is spooled.
    emu.cloud().set_connected(false);
    expect_error(
        publish(&client, "dt/off", p(), Some("0")),
        "ServiceError",
        "Publish to topic dt/off failed: Device is offline. Dropping QoS 0 message.",
    );
    publish(&client, "dt/off", p(), Some("1")).unwrap();
    emu.cloud().set_connected(true);
    assert_eq!(
        emu.cloud()
            .published()
            .iter()
            .filter(|m| m.topic == "dt/off")
            .count(),
        1
    );
}

fn update_config(
    client: &Client,
    key_path: Value,
    value: Value,
    millis: i64,
) -> Result<Value, ggipc::Error> {
    call(
        client,
        "UpdateConfiguration",
        json!({"keyPath": key_path, "valueToMerge": value, "timestamp": millis as f64 / 1000.0}),
    )
}

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn configuration_keys_hidden_keys_texts_and_stale_timestamps() {
    let emu = emulator("fid-config");
    let client = emu.connect().unwrap();
    // Case-insensitive lookup; the stored spelling is answered.
    let v = call(
        &client,
        "GetConfiguration",
        json!({"keyPath": ["LIMITS", "Max"]}),
    )
    .unwrap();
    assert_eq!(v["value"], json!({"max": 10}));
    // Case-insensitive merge: no second key.
    update_config(&client, json!(["Limits"]), json!({"MAX": 11}), now_millis()).unwrap();
    let limits = &emu.device().configuration(ME).unwrap()["limits"];
    assert_eq!(limits, &json!({"max": 11, "min": 1}));
    // `_` keys are hidden from their container, at every depth, but readable directly.
    let all = call(&client, "GetConfiguration", json!({"keyPath": []})).unwrap();
    assert!(all["value"].get("_hidden").is_none(), "{all}");
    assert_eq!(all["value"]["nested"], json!({"y": 2}));
    let v = call(&client, "GetConfiguration", json!({"keyPath": ["_hidden"]})).unwrap();
    assert_eq!(v["value"], json!({"_hidden": "secret-ish"}));
    // Fixed texts.
    expect_error(
        call(
            &client,
            "GetConfiguration",
            json!({"keyPath": ["no", "such"]}),
        ),
        "ResourceNotFoundError",
        "Key not found",
    );
    expect_error(
        call(
            &client,
            "GetConfiguration",
            json!({"componentName": "no.such.Component", "keyPath": []}),
        ),
        "ResourceNotFoundError",
        "Key not found",
    );
    expect_error(
        call(
            &client,
            "UpdateConfiguration",
            json!({"keyPath": ["a"], "valueToMerge": {"b": 1}}),
        ),
        "InvalidArgumentsError",
        "Timestamp is required",
    );
    expect_error(
        call(
            &client,
            "UpdateConfiguration",
            json!({"keyPath": ["a"], "timestamp": 1.0}),
        ),
        "InvalidArgumentsError",
        "ValueToMerge is required",
    );
    expect_error(
        update_config(
            &client,
            json!(["accessControl"]),
            json!({"x": 1}),
            now_millis(),
        ),
        "InvalidArgumentsError",
        "Config update is not allowed for following fields [accessControl]",
    );
    expect_error(
        call(
            &client,
            "SendConfigurationValidityReport",
            json!({"configurationValidityReport": {"status": "ACCEPTED", "deploymentId": "nope"}}),
        ),
        "InvalidArgumentsError",
        "Validation request either timed out or was never made",
    );
    // A stale request: the stale leaf is skipped, the rest applied, then the error.
    let t = now_millis();
    update_config(&client, json!(["stale"]), json!({"a": 1, "b": 1}), t).unwrap();
    expect_error(
        update_config(&client, json!(["stale"]), json!({"a": 2, "c": 3}), t - 1000),
        "FailedUpdateConditionCheckError",
        "Proposed timestamp is older than the config's latest modified timestamp",
    );
    let stale = &emu.device().configuration(ME).unwrap()["stale"];
    assert_eq!(stale, &json!({"a": 1, "b": 1, "c": 3}));
    // A key path that does not exist yet is created "now": an old timestamp is fine.
    update_config(&client, json!(["fresh"]), json!({"a": 1}), 1000).unwrap();
    assert_eq!(
        emu.device().configuration(ME).unwrap()["fresh"],
        json!({"a": 1})
    );
}

#[test]
fn secrets_error_types_and_order() {
    let emu = emulator("fid-secrets");
    let client = emu.connect().unwrap();
    let get = |body: Value| call(&client, "GetSecretValue", body);
    expect_error(
        get(json!({"secretId": ""})),
        "ServiceError",
        "SecretId absent in the request",
    );
    // An unknown name is ResourceNotFound before authorization (no policy covers it).
    let e = expect_error(
        get(json!({"secretId": "nope"})),
        "ResourceNotFoundError",
        "Secret not configured nope",
    );
    match e {
        IpcError::ResourceNotFound(r) => assert_eq!(r.resource_type.as_deref(), Some("secret")),
        other => panic!("{other:?}"),
    }
    expect_error(
        get(json!({"secretId": "denied-secret"})),
        "UnauthorizedError",
        &format!("Principal {ME} is not authorized to perform aws.greengrass.SecretManager:aws.greengrass#GetSecretValue on resource arn:aws:secretsmanager:us-east-1:000000000000:secret:denied-secret"),
    );
    expect_error(
        get(json!({"secretId": "ok-secret", "versionId": "v-1", "versionStage": "AWSCURRENT"})),
        "ServiceError",
        "Both versionId and Stage are set in the request",
    );
    expect_error(
        get(json!({"secretId": "ok-secret", "versionId": "v-9"})),
        "ResourceNotFoundError",
        "Version Id v-9 not found for secret ok-secret",
    );
    expect_error(
        get(json!({"secretId": "ok-secret", "versionStage": "OLD"})),
        "ResourceNotFoundError",
        "Version stage OLD not found for secret ok-secret",
    );
    let arn = "arn:aws:secretsmanager:us-east-1:000000000000:secret:ok-unknown-AbCdEf";
    expect_error(
        get(json!({"secretId": arn})),
        "ResourceNotFoundError",
        &format!("Secret not found {arn}"),
    );
    let v = get(json!({"secretId": "ok-secret", "versionId": "v-1"})).unwrap();
    assert_eq!(v["secretValue"]["secretString"], "v1");
}

#[test]
fn pubsub_topics_split_like_java_and_texts_are_the_nucleus_ones() {
    let emu = emulator("fid-pubsub");
    let client = emu.connect().unwrap();
    let (tx, rx) = unbounded();
    let _sub = client
        .subscribe_to_topic(
            SubscribeToTopicRequest::new("fid/a/b"),
            move |e: SubscriptionResponseMessage| {
                tx.send(e.json().cloned()).unwrap();
            },
        )
        .unwrap();
    // `fid/a/b/` is `fid/a/b` after Java's split.
    call(
        &client,
        "PublishToTopic",
        json!({"topic": "fid/a/b/", "publishMessage": {"jsonMessage": {"message": 1}}}),
    )
    .unwrap();
    assert_eq!(
        expect_within(&rx, WAIT, "trailing slash publish"),
        Some(json!(1))
    );
    for topic in ["fid/+", "fid/#", "fid/*"] {
        expect_error(
            call(
                &client,
                "PublishToTopic",
                json!({"topic": topic, "publishMessage": {"jsonMessage": {"message": 1}}}),
            ),
            "InvalidArgumentsError",
            "Publish topic must not contain a wildcard.",
        );
    }
    expect_error(
        call(&client, "PublishToTopic", json!({"topic": "other", "publishMessage": {"jsonMessage": {"message": 1}}})),
        "UnauthorizedError",
        &format!("Principal {ME} is not authorized to perform aws.greengrass.ipc.pubsub:aws.greengrass#PublishToTopic on resource other"),
    );
    let empty = client
        .subscribe_to_topic(
            SubscribeToTopicRequest::new(""),
            |_e: SubscriptionResponseMessage| {},
        )
        .map(|_| Value::Null);
    expect_error(empty, "UnauthorizedError", "Resource cannot be empty");
}

#[test]
fn lifecycle_accepts_a_negative_recheck_and_uses_the_nucleus_texts() {
    let emu = emulator("fid-lifecycle");
    let client = emu.connect().unwrap();
    expect_error(
        call(
            &client,
            "DeferComponentUpdate",
            json!({"deploymentId": "d", "recheckAfterMs": 1}),
        ),
        "InvalidArgumentsError",
        "Component is not subscribed to component update events",
    );
    expect_error(
        call(&client, "PauseComponent", json!({})),
        "InvalidArgumentsError",
        "Component name is required.",
    );
    let (utx, urx) = unbounded();
    let _u = client
        .subscribe_to_component_updates(
            SubscribeToComponentUpdatesRequest::new(),
            move |e: ComponentUpdatePolicyEvents| {
                utx.send(e).unwrap();
            },
        )
        .unwrap();
    expect_error(
        call(
            &client,
            "DeferComponentUpdate",
            json!({"deploymentId": "none", "recheckAfterMs": 1}),
        ),
        "ServiceError",
        "Time limit to respond to PreComponentUpdateEvent exceeded",
    );
    let deployment = emu.device().simulate_deployment(
        SimulatedDeployment::new().merge_configuration(ME, json!({"limits": {"max": 50}})),
    );
    let ComponentUpdatePolicyEvents::PreUpdateEvent(pre) = expect_within(&urx, WAIT, "pre-update")
    else {
        panic!()
    };
    call(
        &client,
        "DeferComponentUpdate",
        json!({"deploymentId": pre.deployment_id, "recheckAfterMs": -5}),
    )
    .unwrap();
    deployment.wait(WAIT).expect("the deployment finished");
    assert_eq!(
        emu.records().deferrals().last().map(|d| d.recheck_after_ms),
        Some(-5)
    );
}

fn with_more_components(name: &str) -> Emulator {
    Emulator::builder()
        .socket_path(unique_socket_path(name))
        .recipe_str(RECIPE, RecipeFormat::Yaml)
        .component("aws.example.NoPolicy", "nopolicy-token")
        .permissive_component("aws.greengrass.StreamManager", "sm-token")
        .start()
        .unwrap()
}

#[test]
fn metrics_validation_order_and_texts() {
    let emu = with_more_components("fid-metrics");
    let metric = |name: &str, unit: &str, value: f64| json!({"metrics": [{"name": name, "unit": unit, "value": value}]});
    let me = emu.connect().unwrap();
    expect_error(
        call(&me, "PutComponentMetric", metric("m", "COUNT", 1.0)),
        "UnauthorizedError",
        &format!("Principal {ME} is not authorized to perform aws.greengrass.ipc.componentmetric:aws.greengrass#PutComponentMetric "),
    );
    let aws = emu.connect_as("aws.example.NoPolicy").unwrap();
    expect_error(
        call(&aws, "PutComponentMetric", json!({"metrics": []})),
        "InvalidArgumentsError",
        "Null or Empty list of metrics found in PutComponentMetricRequest",
    );
    expect_error(
        call(
            &aws,
            "PutComponentMetric",
            metric(&"n".repeat(33), "COUNT", 1.0),
        ),
        "InvalidArgumentsError",
        "Invalid argument found in PutComponentMetricRequest",
    );
    expect_error(
        call(&aws, "PutComponentMetric", metric("m", "COUNT", -1.0)),
        "InvalidArgumentsError",
        "Invalid argument found in PutComponentMetricRequest",
    );
    expect_error(
        call(&aws, "PutComponentMetric", metric("m", "COUNT", 1.0)),
        "UnauthorizedError",
        "Principal aws.example.NoPolicy is not authorized to perform aws.greengrass.ipc.componentmetric:aws.greengrass#PutComponentMetric with metric name m",
    );
    let sm = emu.connect_as("aws.greengrass.StreamManager").unwrap();
    expect_error(
        call(&sm, "PutComponentMetric", metric("m", "FURLONGS", 1.0)),
        "InvalidArgumentsError",
        "Invalid telemetry unit: No matching TelemetryUnit type found",
    );
    call(
        &sm,
        "PutComponentMetric",
        metric(&"n".repeat(32), "COUNT", 0.0),
    )
    .unwrap();
}

#[test]
fn tokens_are_validated_for_stream_manager_only() {
    let emu = with_more_components("fid-tokens");
    let me = emu.connect().unwrap();
    expect_error(
        call(&me, "ValidateAuthorizationToken", json!({"token": "x"})),
        "UnauthorizedError",
        &format!("{ME} is not authorized to perform aws.greengrass#ValidateAuthorizationToken"),
    );
    let sm = emu.connect_as("aws.greengrass.StreamManager").unwrap();
    expect_error(
        call(&sm, "ValidateAuthorizationToken", json!({"token": "nope"})),
        "InvalidTokenError",
        "Authentication token not found",
    );
    let v = call(
        &sm,
        "ValidateAuthorizationToken",
        json!({"token": emu.auth_token()}),
    )
    .unwrap();
    assert_eq!(v["isValid"], true);
}

#[test]
fn cli_validates_before_authorizing_and_uses_its_texts() {
    let emu = with_more_components("fid-cli");
    // The component without policies: validation errors come before the denial.
    let c = emu.connect_as("aws.example.NoPolicy").unwrap();
    for op in ["GetComponentDetails", "RestartComponent", "StopComponent"] {
        expect_error(
            call(&c, op, json!({"componentName": ""})),
            "InvalidArgumentsError",
            "Component name cannot be empty",
        );
        expect_error(
            call(&c, op, json!({"componentName": ME})),
            "UnauthorizedError",
            "Principal aws.example.NoPolicy is not authorized",
        );
    }
    for op in ["GetLocalDeploymentStatus", "CancelLocalDeployment"] {
        expect_error(
            call(&c, op, json!({"deploymentId": "not-a-uuid"})),
            "InvalidArgumentsError",
            "Invalid deploymentId format received. DeploymentId is a UUID",
        );
    }
    let sm = emu.connect_as("aws.greengrass.StreamManager").unwrap();
    expect_error(
        call(
            &sm,
            "GetComponentDetails",
            json!({"componentName": "no.such.C"}),
        ),
        "ResourceNotFoundError",
        "Component with name no.such.C not found in Greengrass",
    );
    expect_error(
        call(
            &sm,
            "RestartComponent",
            json!({"componentName": "no.such.C"}),
        ),
        "ResourceNotFoundError",
        "Component with name no.such.C not found in Greengrass",
    );
    let unknown = "00000000-0000-0000-0000-000000000009";
    expect_error(
        call(
            &sm,
            "GetLocalDeploymentStatus",
            json!({"deploymentId": unknown}),
        ),
        "ResourceNotFoundError",
        "Cannot find deployment",
    );
}
