//! The emulator's service areas end to end: configuration, lifecycle and deployments,
//! IoT Core connection status, secrets, shadows, the CLI operations, client devices,
//! metrics and tokens.

mod common;

use std::time::{Duration, Instant};

use common::*;
use crossbeam_channel::unbounded;
use ggipc::emulator::{Emulator, RecipeFormat, Reply, Secret, SimulatedDeployment};
use ggipc::model::{
    ComponentUpdatePolicyEvents, DeploymentStatus, IoTCoreConnectionStatusEvent, IpcError,
    SubscribeToComponentUpdatesRequest, SubscribeToIoTCoreConnectionStatusRequest,
    SubscribeToValidateConfigurationUpdatesRequest, ValidateConfigurationUpdateEvents,
};
use ggipc::{CallOptions, Client};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(5);

const MAIN: &str = r#"
ComponentName: com.example.Main
ComponentVersion: '2.0.0'
ComponentConfiguration:
  DefaultConfiguration:
    limits: { max: 10, min: 1 }
    accessControl:
      aws.greengrass.ShadowManager:
        s1:
          operations: ['*']
          resources: ['$aws/things/dev/shadow', '$aws/things/dev/shadow/name/*', 'dev']
      aws.greengrass.SecretManager:
        s2:
          operations: [aws.greengrass#GetSecretValue]
          resources: ['*']
      aws.greengrass.Cli:
        s3:
          operations: ['*']
          resources: ['*']
      aws.greengrass.clientdevices.Auth:
        s4:
          operations: ['*']
          resources: ['*']
      aws.greengrass.ipc.lifecycle:
        s5:
          operations: ['*']
          resources: [com.example.Other]
"#;

const OTHER: &str = r#"{"ComponentName": "com.example.Other", "ComponentVersion": "1.0.0",
  "ComponentConfiguration": {"DefaultConfiguration": {"color": "blue"}}}"#;

fn emulator(name: &str) -> Emulator {
    Emulator::builder()
        .socket_path(unique_socket_path(name))
        .recipe_str(MAIN, RecipeFormat::Yaml)
        .recipe_str(OTHER, RecipeFormat::Json)
        .secret(Secret::string("db", "s3cret"))
        .start()
        .unwrap()
}

fn call(client: &Client, op: &str, body: Value) -> Result<Value, ggipc::Error> {
    client.call_json(op, &body, CallOptions::default())
}

fn service_error(result: Result<Value, ggipc::Error>) -> IpcError {
    match result {
        Err(e) => e
            .as_service_error()
            .cloned()
            .unwrap_or_else(|| panic!("{e:?}")),
        Ok(v) => panic!("expected an error, got {v}"),
    }
}

#[test]
fn configuration_of_other_components_and_timestamp_ordering() {
    let emu = emulator("areas-config");
    let client = emu.connect().unwrap();
    let other = call(
        &client,
        "GetConfiguration",
        json!({"componentName": "com.example.Other", "keyPath": ["color"]}),
    )
    .unwrap();
    assert_eq!(
        other,
        json!({"componentName": "com.example.Other", "value": {"color": "blue"}})
    );
    let whole = call(&client, "GetConfiguration", json!({"keyPath": []})).unwrap();
    assert_eq!(whole["value"]["limits"], json!({"max": 10, "min": 1}));
    // A newer write, then an older one: FailedUpdateConditionCheckError.
    call(
        &client,
        "UpdateConfiguration",
        json!({"keyPath": ["limits"], "timestamp": 2_000_000_000.0, "valueToMerge": {"max": 20}}),
    )
    .unwrap();
    let e = service_error(call(
        &client,
        "UpdateConfiguration",
        json!({"keyPath": ["limits"], "timestamp": 1_000_000_000.0, "valueToMerge": {"max": 30}}),
    ));
    assert!(
        matches!(e, IpcError::FailedUpdateConditionCheck(_)),
        "{e:?}"
    );
    assert_eq!(
        emu.configuration("com.example.Main").unwrap()["limits"]["max"],
        20
    );
    // A leaf set directly, and accessControl is off limits.
    call(
        &client,
        "UpdateConfiguration",
        json!({"keyPath": ["limits", "min"], "timestamp": 2_100_000_000.0, "valueToMerge": 5}),
    )
    .unwrap();
    assert_eq!(
        emu.configuration("com.example.Main").unwrap()["limits"]["min"],
        5
    );
    let e = service_error(call(
        &client,
        "UpdateConfiguration",
        json!({"keyPath": ["accessControl"], "timestamp": 2_100_000_000.0, "valueToMerge": {}}),
    ));
    assert!(matches!(e, IpcError::InvalidArguments(_)), "{e:?}");
    let e = service_error(call(
        &client,
        "GetConfiguration",
        json!({"componentName": "com.example.Nope", "keyPath": []}),
    ));
    assert!(matches!(e, IpcError::ResourceNotFound(_)), "{e:?}");
}

#[test]
fn deployments_validate_and_honour_deferrals() {
    let emu = emulator("areas-deploy");
    let client = emu.connect().unwrap();
    let (vtx, vrx) = unbounded();
    let _v = client
        .subscribe_to_validate_configuration_updates(
            SubscribeToValidateConfigurationUpdatesRequest::new(),
            move |e: ValidateConfigurationUpdateEvents| {
                vtx.send(e).unwrap();
            },
        )
        .unwrap();
    let (utx, urx) = unbounded();
    let _u = client
        .subscribe_to_component_updates(
            SubscribeToComponentUpdatesRequest::new(),
            move |e: ComponentUpdatePolicyEvents| {
                utx.send(e).unwrap();
            },
        )
        .unwrap();

    // A rejected configuration fails the deployment and changes nothing.
    let rejected = emu.simulate_deployment(
        SimulatedDeployment::new()
            .merge_configuration("com.example.Main", json!({"limits": {"max": -1}})),
    );
    let ValidateConfigurationUpdateEvents::ValidateConfigurationUpdateEvent(v) =
        expect_within(&vrx, WAIT, "validation")
    else {
        panic!()
    };
    assert_eq!(v.configuration.as_ref().unwrap()["limits"]["max"], -1);
    call(&client, "SendConfigurationValidityReport", json!({"configurationValidityReport": {"status": "REJECTED", "deploymentId": v.deployment_id, "message": "max must be positive"}})).unwrap();
    let done = rejected.wait(WAIT).expect("finished");
    assert_eq!(done.status, DeploymentStatus::Failed);
    assert_eq!(
        emu.configuration("com.example.Main").unwrap()["limits"]["max"],
        10
    );

    // An accepted one, deferred once by 300 ms.
    let started = Instant::now();
    let accepted = emu.simulate_deployment(
        SimulatedDeployment::new()
            .merge_configuration("com.example.Main", json!({"limits": {"max": 50}})),
    );
    let ValidateConfigurationUpdateEvents::ValidateConfigurationUpdateEvent(v) =
        expect_within(&vrx, WAIT, "validation")
    else {
        panic!()
    };
    call(&client, "SendConfigurationValidityReport", json!({"configurationValidityReport": {"status": "ACCEPTED", "deploymentId": v.deployment_id}})).unwrap();
    let ComponentUpdatePolicyEvents::PreUpdateEvent(pre) = expect_within(&urx, WAIT, "pre-update")
    else {
        panic!()
    };
    assert_eq!(pre.deployment_id, accepted.id());
    call(
        &client,
        "DeferComponentUpdate",
        json!({"deploymentId": pre.deployment_id, "message": "busy", "recheckAfterMs": 300}),
    )
    .unwrap();
    let ComponentUpdatePolicyEvents::PreUpdateEvent(_) =
        expect_within(&urx, WAIT, "pre-update again")
    else {
        panic!()
    };
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(
        emu.configuration("com.example.Main").unwrap()["limits"]["max"],
        10,
        "not applied while deferred"
    );
    call(
        &client,
        "DeferComponentUpdate",
        json!({"deploymentId": accepted.id(), "recheckAfterMs": 0}),
    )
    .unwrap();
    let ComponentUpdatePolicyEvents::PostUpdateEvent(post) =
        expect_within(&urx, WAIT, "post-update")
    else {
        panic!()
    };
    assert_eq!(post.deployment_id, accepted.id());
    assert_eq!(
        accepted.wait(WAIT).unwrap().status,
        DeploymentStatus::Succeeded
    );
    assert_eq!(
        emu.configuration("com.example.Main").unwrap()["limits"]["max"],
        50
    );
    let deferrals = emu.deferrals();
    assert_eq!(deferrals[0].recheck_after_ms, 300);
    // Deferring with no pending update (or answering twice) is a ServiceError
    // ("Time limit to respond to PreComponentUpdateEvent exceeded" in the nucleus).
    let e = service_error(call(
        &client,
        "DeferComponentUpdate",
        json!({"deploymentId": "nope"}),
    ));
    assert!(matches!(e, IpcError::Service(_)), "{e:?}");
    let e = service_error(call(
        &client,
        "DeferComponentUpdate",
        json!({"deploymentId": accepted.id(), "recheckAfterMs": 0}),
    ));
    assert!(matches!(e, IpcError::Service(_)), "{e:?}");
}

#[test]
fn deferring_without_an_update_subscription_is_invalid_arguments() {
    let emu = emulator("areas-defer-nosub");
    let client = emu.connect().unwrap();
    let e = service_error(call(
        &client,
        "DeferComponentUpdate",
        json!({"deploymentId": "d1"}),
    ));
    assert!(matches!(e, IpcError::InvalidArguments(_)), "{e:?}");
}

#[test]
fn cli_operations_over_the_loaded_components() {
    let emu = emulator("areas-cli");
    let client = emu.connect().unwrap();
    let list = call(&client, "ListComponents", json!({})).unwrap();
    let names: Vec<&str> = list["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["componentName"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["com.example.Main", "com.example.Other"]);
    let details = call(
        &client,
        "GetComponentDetails",
        json!({"componentName": "com.example.Main"}),
    )
    .unwrap();
    assert_eq!(details["componentDetails"]["version"], "2.0.0");
    let created = call(&client, "CreateLocalDeployment", json!({"rootComponentVersionsToAdd": {"com.example.Other": "1.1.0"}, "componentToConfiguration": {"com.example.Other": {"MERGE": {"color": "red"}}}})).unwrap();
    let id = created["deploymentId"].as_str().unwrap().to_owned();
    wait_until(WAIT, "deployment succeeds", || {
        call(
            &client,
            "GetLocalDeploymentStatus",
            json!({"deploymentId": id}),
        )
        .unwrap()["deployment"]["status"]
            == "SUCCEEDED"
    });
    assert_eq!(
        emu.configuration("com.example.Other").unwrap()["color"],
        "red"
    );
    let listed = call(&client, "ListLocalDeployments", json!({})).unwrap();
    assert_eq!(listed["localDeployments"][0]["deploymentId"], id.as_str());
    let restarted = call(
        &client,
        "RestartComponent",
        json!({"componentName": "com.example.Other"}),
    )
    .unwrap();
    assert_eq!(restarted["restartStatus"], "SUCCEEDED");
    let e = service_error(call(
        &client,
        "StopComponent",
        json!({"componentName": "com.example.Ghost"}),
    ));
    // The CLI answers ResourceNotFoundError (CLIEventStreamAgent.java:369-372).
    assert!(matches!(e, IpcError::ResourceNotFound(_)), "{e:?}");
    let e = service_error(call(
        &client,
        "CancelLocalDeployment",
        json!({"deploymentId": id}),
    ));
    assert!(matches!(e, IpcError::Unauthorized(_)), "{e:?}");
    call(
        &client,
        "PauseComponent",
        json!({"componentName": "com.example.Other"}),
    )
    .unwrap();
    let e = service_error(call(
        &client,
        "PauseComponent",
        json!({"componentName": "com.example.Main"}),
    ));
    assert!(matches!(e, IpcError::Unauthorized(_)), "{e:?}");
    assert_eq!(emu.lifecycle_requests().len(), 2);
    let password = call(&client, "CreateDebugPassword", json!({})).unwrap();
    assert_eq!(password["username"], "debug");
}

#[test]
fn shadows_follow_document_semantics() {
    let emu = emulator("areas-shadow");
    let client = emu.connect().unwrap();
    let e = service_error(call(&client, "GetThingShadow", json!({"thingName": "dev"})));
    assert!(matches!(e, IpcError::ResourceNotFound(_)), "{e:?}");
    let doc = |v: Value| base64_of(v.to_string().as_bytes());
    call(&client, "UpdateThingShadow", json!({"thingName": "dev", "payload": doc(json!({"state": {"desired": {"on": true, "lvl": 3}}}))})).unwrap();
    call(&client, "UpdateThingShadow", json!({"thingName": "dev", "payload": doc(json!({"state": {"reported": {"on": true, "lvl": 1}}}))})).unwrap();
    let got = emu.shadow("dev", "").unwrap();
    assert_eq!(got["version"], 2);
    assert_eq!(got["state"]["delta"], json!({"lvl": 3}));
    let e = service_error(call(
        &client,
        "UpdateThingShadow",
        json!({"thingName": "dev", "payload": doc(json!({"state": {"desired": {"on": false}}, "version": 1}))}),
    ));
    assert!(matches!(e, IpcError::Conflict(_)), "{e:?}");
    call(
        &client,
        "UpdateThingShadow",
        json!({"thingName": "dev", "payload": doc(json!({"state": {"desired": {"lvl": null}}}))}),
    )
    .unwrap();
    assert_eq!(
        emu.shadow("dev", "").unwrap()["state"]["desired"],
        json!({"on": true})
    );
    for name in ["b", "a", "c"] {
        call(&client, "UpdateThingShadow", json!({"thingName": "dev", "shadowName": name, "payload": doc(json!({"state": {"reported": {}}}))})).unwrap();
    }
    let page = call(
        &client,
        "ListNamedShadowsForThing",
        json!({"thingName": "dev", "pageSize": 2}),
    )
    .unwrap();
    assert_eq!(page["results"], json!(["a", "b"]));
    let next = call(
        &client,
        "ListNamedShadowsForThing",
        json!({"thingName": "dev", "nextToken": page["nextToken"]}),
    )
    .unwrap();
    assert_eq!(next["results"], json!(["c"]));
    call(&client, "DeleteThingShadow", json!({"thingName": "dev"})).unwrap();
    let e = service_error(call(
        &client,
        "DeleteThingShadow",
        json!({"thingName": "dev"}),
    ));
    assert!(matches!(e, IpcError::ResourceNotFound(_)), "{e:?}");
    let e = service_error(call(
        &client,
        "GetThingShadow",
        json!({"thingName": "other"}),
    ));
    assert!(matches!(e, IpcError::Unauthorized(_)), "{e:?}");
    let e = service_error(call(
        &client,
        "UpdateThingShadow",
        json!({"thingName": "dev", "payload": base64_of(b"not json")}),
    ));
    // The shadow manager turns the JSON parser's IOException into a ServiceError.
    assert!(matches!(e, IpcError::Service(_)), "{e:?}");
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[test]
fn secrets_resolve_names_and_versions() {
    let emu = emulator("areas-secret");
    let client = emu.connect().unwrap();
    let s = call(&client, "GetSecretValue", json!({"secretId": "db"})).unwrap();
    assert_eq!(s["secretValue"]["secretString"], "s3cret");
    assert!(s["secretId"]
        .as_str()
        .unwrap()
        .starts_with("arn:aws:secretsmanager:"));
    assert_eq!(s["versionStage"], json!(["AWSCURRENT"]));
    let e = service_error(call(
        &client,
        "GetSecretValue",
        json!({"secretId": "db", "versionStage": "AWSPREVIOUS"}),
    ));
    assert!(matches!(e, IpcError::ResourceNotFound(_)), "{e:?}");
    let e = service_error(call(
        &client,
        "GetSecretValue",
        json!({"secretId": "missing"}),
    ));
    assert!(matches!(e, IpcError::ResourceNotFound(_)), "{e:?}");
}

#[test]
fn cloud_connection_status_is_sent_first_and_on_change() {
    let emu = emulator("areas-status");
    let client = emu.connect().unwrap();
    let (tx, rx) = unbounded();
    let _s = client
        .subscribe_to_iot_core_connection_status(
            SubscribeToIoTCoreConnectionStatusRequest::new(),
            move |e: IoTCoreConnectionStatusEvent| {
                tx.send(e.status().as_str().to_owned()).unwrap();
            },
        )
        .unwrap();
    assert_eq!(expect_within(&rx, WAIT, "current status"), "CONNECTED");
    emu.set_cloud_connected(false);
    assert_eq!(expect_within(&rx, WAIT, "disconnected"), "DISCONNECTED");
    emu.set_cloud_connected(true);
    assert_eq!(expect_within(&rx, WAIT, "connected"), "CONNECTED");
}

#[test]
fn client_devices_metrics_tokens_and_scripts() {
    let emu = Emulator::builder()
        .socket_path(unique_socket_path("areas-misc"))
        .recipe_str(MAIN, RecipeFormat::Yaml)
        .permissive_component("aws.greengrass.StreamManager", "sm-token")
        .start()
        .unwrap();
    let client = emu.connect().unwrap();
    let valid = call(
        &client,
        "VerifyClientDeviceIdentity",
        json!({"credential": {"clientDeviceCertificate": "PEM"}}),
    )
    .unwrap();
    assert_eq!(valid["isValidClientDevice"], true);
    let token = call(
        &client,
        "GetClientDeviceAuthToken",
        json!({"credential": {"mqttCredential": {"clientId": "dev1"}}}),
    )
    .unwrap();
    let token = token["clientDeviceAuthToken"].as_str().unwrap().to_owned();
    let ok = call(&client, "AuthorizeClientDeviceAction", json!({"clientDeviceAuthToken": token, "operation": "mqtt:publish", "resource": "mqtt:topic:a"})).unwrap();
    assert_eq!(ok["isAuthorized"], true);
    emu.set_client_device_answers(
        ggipc::emulator::ClientDeviceAnswers::default().authorized(false),
    );
    let no = call(&client, "AuthorizeClientDeviceAction", json!({"clientDeviceAuthToken": token, "operation": "mqtt:publish", "resource": "mqtt:topic:a"})).unwrap();
    assert_eq!(no["isAuthorized"], false);
    // Metrics: com.example.Main is not an aws. component.
    let e = service_error(call(
        &client,
        "PutComponentMetric",
        json!({"metrics": [{"name": "m", "unit": "COUNT", "value": 1.0}]}),
    ));
    assert!(matches!(e, IpcError::Unauthorized(_)), "{e:?}");
    let sm = emu.connect_as("aws.greengrass.StreamManager").unwrap();
    call(
        &sm,
        "PutComponentMetric",
        json!({"metrics": [{"name": "m", "unit": "COUNT", "value": 1.0}]}),
    )
    .unwrap();
    assert_eq!(emu.metrics().len(), 1);
    // Tokens: StreamManager only; valid = a component's SVCUID.
    let v = call(
        &sm,
        "ValidateAuthorizationToken",
        json!({"token": emu.auth_token()}),
    )
    .unwrap();
    assert_eq!(v["isValid"], true);
    let e = service_error(call(
        &sm,
        "ValidateAuthorizationToken",
        json!({"token": "nope"}),
    ));
    assert!(matches!(e, IpcError::InvalidToken(_)), "{e:?}");
    let e = service_error(call(
        &client,
        "ValidateAuthorizationToken",
        json!({"token": "x"}),
    ));
    assert!(matches!(e, IpcError::Unauthorized(_)), "{e:?}");
    // A script overrides the emulator's own semantics, and can be removed.
    emu.set_reply("ListComponents", |_| Reply::Response {
        model_type: "aws.greengrass#ListComponentsResponse".into(),
        body: json!({"components": []}),
    });
    assert_eq!(
        call(&client, "ListComponents", json!({})).unwrap(),
        json!({"components": []})
    );
    emu.clear_reply("ListComponents");
    assert_eq!(
        call(&client, "ListComponents", json!({})).unwrap()["components"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn local_wildcard_filters_match_like_the_nucleus_subscription_trie() {
    use ggipc::model::{PublishMessage, SubscribeToTopicRequest, SubscriptionResponseMessage};
    let emu = Emulator::builder()
        .socket_path(unique_socket_path("areas-filters"))
        .start()
        .unwrap();
    let me = emu.component_name().to_owned();
    let client = emu.connect().unwrap();
    let _multi = client
        .subscribe_to_topic(
            SubscribeToTopicRequest::new("a/#"),
            |_e: SubscriptionResponseMessage| {},
        )
        .unwrap();
    let _mid = client
        .subscribe_to_topic(
            SubscribeToTopicRequest::new("m/#/c"),
            |_e: SubscriptionResponseMessage| {},
        )
        .unwrap();
    wait_until(WAIT, "two subscriptions", || emu.subscription_count() == 2);
    let msg = PublishMessage::json(json!(1));
    // SubscriptionTrie.get: a final '#' needs at least one more level; 'a/#' misses 'a'.
    assert_eq!(emu.publish("other", "a", &msg), 0, "'a/#' vs 'a'");
    assert_eq!(emu.publish("other", "a/b/c", &msg), 1, "'a/#' vs 'a/b/c'");
    // A '#' that is not the last level stands for exactly one level...
    assert_eq!(
        emu.publish("other", "m/x/y/c", &msg),
        0,
        "'m/#/c' vs 'm/x/y/c'"
    );
    // ...and does not make the filter a wildcard for the receive-mode default
    // (SubscriptionTrie.isWildcard), so the subscriber gets its own messages.
    assert_eq!(emu.publish(&me, "m/x/c", &msg), 1, "own message on 'm/#/c'");
    // A real wildcard filter defaults to RECEIVE_MESSAGES_FROM_OTHERS.
    assert_eq!(emu.publish(&me, "a/b", &msg), 0, "own message on 'a/#'");
}

#[test]
fn metric_validation_comes_before_the_per_metric_policy_check() {
    // ComponentMetricIPCEventStreamAgent: the "aws." prefix check, then per metric
    // validation followed by its policy check.
    let emu = Emulator::builder()
        .socket_path(unique_socket_path("areas-metric-order"))
        .component("aws.example.Metrics", "metrics-token")
        .component("com.example.Plain", "plain-token")
        .start()
        .unwrap();
    let aws = emu.connect_as("aws.example.Metrics").unwrap();
    let bad = json!({"metrics": [{"name": "m", "unit": "COUNT", "value": -1.0}]});
    let e = service_error(call(&aws, "PutComponentMetric", bad.clone()));
    assert!(matches!(e, IpcError::InvalidArguments(_)), "{e:?}");
    let good = json!({"metrics": [{"name": "m", "unit": "COUNT", "value": 1.0}]});
    let e = service_error(call(&aws, "PutComponentMetric", good));
    assert!(matches!(e, IpcError::Unauthorized(_)), "{e:?}");
    let plain = emu.connect_as("com.example.Plain").unwrap();
    let e = service_error(call(&plain, "PutComponentMetric", bad));
    assert!(matches!(e, IpcError::Unauthorized(_)), "{e:?}");
}
