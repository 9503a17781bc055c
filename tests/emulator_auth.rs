//! Authorization as spec §5 describes it: a table of cases against the pure decision
//! function, each naming the rule it checks, then end-to-end checks through a real client.

mod common;

use ggipc::emulator::{authorize, Emulator, Policies, RecipeFormat};
use ggipc::model::{
    IpcError, PublishToTopicRequest, SubscribeToTopicRequest, SubscriptionResponseMessage,
};
use serde_json::{json, Value};

struct Case {
    rule: &'static str,
    caller: &'static str,
    access: Value,
    operation: &'static str,
    resources: &'static [&'static str],
    allowed: bool,
}

fn policy(service: &str, ops: &[&str], resources: &[&str]) -> Value {
    json!({ service: { "p1": { "operations": ops, "resources": resources } } })
}

const PUBSUB: &str = "aws.greengrass.ipc.pubsub";
const MQTT: &str = "aws.greengrass.ipc.mqttproxy";
const PUB: &str = "aws.greengrass#PublishToTopic";
const SUB: &str = "aws.greengrass#SubscribeToTopic";

fn case(
    rule: &'static str,
    access: Value,
    operation: &'static str,
    resources: &'static [&'static str],
    allowed: bool,
) -> Case {
    Case {
        rule,
        caller: "com.example.Caller",
        access,
        operation,
        resources,
        allowed,
    }
}

fn cases() -> Vec<Case> {
    let pubsub_any = policy(PUBSUB, &["*"], &["*"]);
    vec![
        // Operations.
        case(
            "an exact operation name grants it",
            policy(PUBSUB, &[PUB], &["t"]),
            "PublishToTopic",
            &["t"],
            true,
        ),
        case(
            "an operation not listed is denied",
            policy(PUBSUB, &[PUB], &["t"]),
            "SubscribeToTopic",
            &["t"],
            false,
        ),
        case(
            "'*' grants every operation of the service",
            policy(PUBSUB, &["*"], &["t"]),
            "SubscribeToTopic",
            &["t"],
            true,
        ),
        case(
            "a policy of another service grants nothing",
            policy(MQTT, &["*"], &["*"]),
            "PublishToTopic",
            &["t"],
            false,
        ),
        case(
            "no accessControl at all denies",
            Value::Null,
            "PublishToTopic",
            &["t"],
            false,
        ),
        case(
            "an unknown service identifier is ignored",
            policy("aws.greengrass.ipc.nope", &["*"], &["*"]),
            "PublishToTopic",
            &["t"],
            false,
        ),
        // Standard resources.
        case(
            "a literal resource matches itself",
            policy(PUBSUB, &[PUB], &["a/b"]),
            "PublishToTopic",
            &["a/b"],
            true,
        ),
        case(
            "a literal resource matches nothing else",
            policy(PUBSUB, &[PUB], &["a/b"]),
            "PublishToTopic",
            &["a/c"],
            false,
        ),
        case(
            "'*' alone matches any topic",
            pubsub_any.clone(),
            "PublishToTopic",
            &["x/y/z"],
            true,
        ),
        case(
            "an empty request resource is denied even under '*'",
            pubsub_any.clone(),
            "PublishToTopic",
            &[""],
            false,
        ),
        case(
            "an empty resource is denied for mqttproxy '#' too",
            policy(MQTT, &["*"], &["#"]),
            "SubscribeToIoTCore",
            &[""],
            false,
        ),
        case(
            "a trailing '*' spans levels",
            policy(PUBSUB, &[PUB], &["a/*"]),
            "PublishToTopic",
            &["a/b/c"],
            true,
        ),
        case(
            "a '*' inside a level matches a run",
            policy(PUBSUB, &[PUB], &["a/*/c"]),
            "PublishToTopic",
            &["a/xyz/c"],
            true,
        ),
        case(
            "several '*' match independently",
            policy(PUBSUB, &[PUB], &["*/mid/*"]),
            "PublishToTopic",
            &["a/mid/b"],
            true,
        ),
        case(
            "a prefix glob does not match other prefixes",
            policy(PUBSUB, &[PUB], &["a/*"]),
            "PublishToTopic",
            &["b/a"],
            false,
        ),
        case(
            "topics are not paths: 'a/../b' is not 'b/…'",
            policy(PUBSUB, &[PUB], &["b/*"]),
            "PublishToTopic",
            &["a/../b"],
            false,
        ),
        case(
            "'a/../b' is literally covered by 'a/*'",
            policy(PUBSUB, &[PUB], &["a/*"]),
            "PublishToTopic",
            &["a/../b"],
            true,
        ),
        case(
            "a literal policy does not match a request with an embedded '*'",
            policy(PUBSUB, &[SUB], &["a/b"]),
            "SubscribeToTopic",
            &["a/*"],
            false,
        ),
        case(
            "a request '*' is only matched by a glob",
            policy(PUBSUB, &[SUB], &["a/*"]),
            "SubscribeToTopic",
            &["a/*"],
            true,
        ),
        case(
            "the empty topic is not covered by a literal",
            policy(PUBSUB, &[PUB], &["a"]),
            "PublishToTopic",
            &[""],
            false,
        ),
        case(
            "matching is case-sensitive",
            policy(PUBSUB, &[PUB], &["Topic"]),
            "PublishToTopic",
            &["topic"],
            false,
        ),
        case(
            "a Cyrillic look-alike is a different topic",
            policy(PUBSUB, &[PUB], &["sensor/temp"]),
            "PublishToTopic",
            &["sensоr/temp"],
            false,
        ),
        case(
            "a full-width slash is not a level separator",
            policy(PUBSUB, &[PUB], &["a/*"]),
            "PublishToTopic",
            &["a／b"],
            false,
        ),
        case(
            "a trailing space is significant",
            policy(PUBSUB, &[PUB], &["a"]),
            "PublishToTopic",
            &["a "],
            false,
        ),
        // Local pub/sub: + and # are literal.
        case(
            "local '#' policy grants the literal filter '#'-topic",
            policy(PUBSUB, &[SUB], &["a/#"]),
            "SubscribeToTopic",
            &["a/#"],
            true,
        ),
        case(
            "local '#' policy is not a wildcard",
            policy(PUBSUB, &[SUB], &["a/#"]),
            "SubscribeToTopic",
            &["a/b"],
            false,
        ),
        case(
            "local '+' policy is not a wildcard",
            policy(PUBSUB, &[SUB], &["a/+"]),
            "SubscribeToTopic",
            &["a/b"],
            false,
        ),
        case(
            "local '+' policy grants the literal filter 'a/+'",
            policy(PUBSUB, &[SUB], &["a/+"]),
            "SubscribeToTopic",
            &["a/+"],
            true,
        ),
        case(
            "a local '*' policy covers a '#' filter",
            policy(PUBSUB, &[SUB], &["a/*"]),
            "SubscribeToTopic",
            &["a/#"],
            true,
        ),
        case(
            "subscribing to '#' needs a policy covering the string '#'",
            policy(PUBSUB, &[SUB], &["a/*"]),
            "SubscribeToTopic",
            &["#"],
            false,
        ),
        // MQTT proxy: + and # are wildcards in policies.
        case(
            "mqtt '#' matches the parent level",
            policy(MQTT, &["*"], &["a/#"]),
            "PublishToIoTCore",
            &["a"],
            true,
        ),
        case(
            "mqtt '#' matches deeper levels",
            policy(MQTT, &["*"], &["a/#"]),
            "PublishToIoTCore",
            &["a/b/c"],
            true,
        ),
        case(
            "mqtt '#' covers the filter 'a/#'",
            policy(MQTT, &["*"], &["a/#"]),
            "SubscribeToIoTCore",
            &["a/#"],
            true,
        ),
        case(
            "mqtt '#' does not match a sibling prefix",
            policy(MQTT, &["*"], &["a/#"]),
            "PublishToIoTCore",
            &["ab"],
            false,
        ),
        case(
            "mqtt '+' matches exactly one level",
            policy(MQTT, &["*"], &["a/+/c"]),
            "PublishToIoTCore",
            &["a/b/c"],
            true,
        ),
        case(
            "mqtt '+' does not match two levels",
            policy(MQTT, &["*"], &["a/+/c"]),
            "PublishToIoTCore",
            &["a/b/x/c"],
            false,
        ),
        case(
            "mqtt misplaced '+' is literal",
            policy(MQTT, &["*"], &["a+/b"]),
            "PublishToIoTCore",
            &["ax/b"],
            false,
        ),
        case(
            "mqtt misplaced '#' is literal",
            policy(MQTT, &["*"], &["a/b#"]),
            "PublishToIoTCore",
            &["a/b#"],
            true,
        ),
        case(
            "mqtt '*' still globs",
            policy(MQTT, &["*"], &["dt/*"]),
            "PublishToIoTCore",
            &["dt/x/y"],
            true,
        ),
        case(
            "mqtt '/#' covers only topics starting with '/'",
            policy(MQTT, &["*"], &["/#"]),
            "PublishToIoTCore",
            &["a/b"],
            false,
        ),
        case(
            "mqtt '/#' covers '/a'",
            policy(MQTT, &["*"], &["/#"]),
            "PublishToIoTCore",
            &["/a"],
            true,
        ),
        // Escapes.
        case(
            "'${*}' is a literal star, not a glob",
            policy(PUBSUB, &[PUB], &["a/${*}"]),
            "PublishToTopic",
            &["a/b"],
            false,
        ),
        case(
            "'${*}' matches a literal star",
            policy(PUBSUB, &[SUB], &["a/${*}"]),
            "SubscribeToTopic",
            &["a/*"],
            true,
        ),
        case(
            "'${?}' matches a literal question mark",
            policy(PUBSUB, &[PUB], &["what${?}"]),
            "PublishToTopic",
            &["what?"],
            true,
        ),
        case(
            "'${$}' matches a literal dollar",
            policy(PUBSUB, &[PUB], &["${$}{x}"]),
            "PublishToTopic",
            &["${x}"],
            true,
        ),
        case(
            "a plain '$' needs no escape",
            policy(PUBSUB, &[PUB], &["$aws/things/t/shadow/*"]),
            "PublishToTopic",
            &["$aws/things/t/shadow/update"],
            true,
        ),
        case(
            "an invalid resource ('?') is dropped, the rest stays",
            policy(PUBSUB, &[PUB], &["a?", "b"]),
            "PublishToTopic",
            &["b"],
            true,
        ),
        case(
            "a dropped '?' resource matches nothing",
            policy(PUBSUB, &[PUB], &["a?"]),
            "PublishToTopic",
            &["a?"],
            false,
        ),
        case(
            "an unknown '${…}' escape is dropped",
            policy(PUBSUB, &[PUB], &["${iot:thingName}/x"]),
            "PublishToTopic",
            &["${iot:thingName}/x"],
            false,
        ),
        case(
            "an unterminated '${*' escape is dropped",
            policy(PUBSUB, &[PUB], &["a/${*"]),
            "PublishToTopic",
            &["a/*"],
            false,
        ),
        case(
            "an unterminated '${*' does not spoil the other resources",
            policy(PUBSUB, &[PUB], &["a/${*", "b"]),
            "PublishToTopic",
            &["b"],
            true,
        ),
        // Operations lists.
        case(
            "operation names are case-sensitive",
            policy(PUBSUB, &["aws.greengrass#publishToTopic"], &["*"]),
            "PublishToTopic",
            &["t"],
            false,
        ),
        case(
            "an unknown operation does not void the policy's other operations",
            policy(PUBSUB, &[PUB, "aws.greengrass#Bogus"], &["t"]),
            "PublishToTopic",
            &["t"],
            true,
        ),
        case(
            "an operation of another service is not granted by this one",
            policy(PUBSUB, &[PUB, "aws.greengrass#PublishToIoTCore"], &["*"]),
            "PublishToIoTCore",
            &["t"],
            false,
        ),
        // Never checked.
        case(
            "UpdateState is never checked",
            Value::Null,
            "UpdateState",
            &[],
            true,
        ),
        case(
            "GetConfiguration is never checked",
            Value::Null,
            "GetConfiguration",
            &[],
            true,
        ),
        case(
            "SubscribeToIoTCoreConnectionStatus is never checked",
            Value::Null,
            "SubscribeToIoTCoreConnectionStatus",
            &[],
            true,
        ),
        case(
            "DeferComponentUpdate is never checked",
            Value::Null,
            "DeferComponentUpdate",
            &[],
            true,
        ),
        // Other services' resources.
        case(
            "lifecycle is by target component name",
            policy(
                "aws.greengrass.ipc.lifecycle",
                &["aws.greengrass#PauseComponent"],
                &["com.example.Other"],
            ),
            "PauseComponent",
            &["com.example.Other"],
            true,
        ),
        case(
            "lifecycle does not grant other targets",
            policy(
                "aws.greengrass.ipc.lifecycle",
                &["aws.greengrass#PauseComponent"],
                &["com.example.Other"],
            ),
            "PauseComponent",
            &["com.example.Third"],
            false,
        ),
        case(
            "secrets are by ARN",
            policy(
                "aws.greengrass.SecretManager",
                &["aws.greengrass#GetSecretValue"],
                &["arn:aws:secretsmanager:*:*:secret:db-*"],
            ),
            "GetSecretValue",
            &["arn:aws:secretsmanager:us-east-1:1:secret:db-AbC123"],
            true,
        ),
        case(
            "a named shadow needs the named resource",
            policy(
                "aws.greengrass.ShadowManager",
                &["*"],
                &["$aws/things/t/shadow"],
            ),
            "GetThingShadow",
            &["$aws/things/t/shadow/name/n"],
            false,
        ),
        case(
            "client device auth needs the literal '*' resource",
            policy("aws.greengrass.clientdevices.Auth", &["*"], &["x"]),
            "VerifyClientDeviceIdentity",
            &["*"],
            false,
        ),
        case(
            "client device auth with '*' resource",
            policy("aws.greengrass.clientdevices.Auth", &["*"], &["*"]),
            "VerifyClientDeviceIdentity",
            &["*"],
            true,
        ),
        case(
            "CancelLocalDeployment is never granted to a component",
            policy("aws.greengrass.Cli", &["*"], &["*"]),
            "CancelLocalDeployment",
            &["*"],
            false,
        ),
        case(
            "Cli policy grants ListComponents",
            policy(
                "aws.greengrass.Cli",
                &["aws.greengrass#ListComponents"],
                &["*"],
            ),
            "ListComponents",
            &["*"],
            true,
        ),
        // Hard-coded callers.
        Case {
            rule: "ValidateAuthorizationToken is for StreamManager only",
            caller: "com.example.Caller",
            access: policy(PUBSUB, &["*"], &["*"]),
            operation: "ValidateAuthorizationToken",
            resources: &[],
            allowed: false,
        },
        Case {
            rule: "StreamManager may validate tokens",
            caller: "aws.greengrass.StreamManager",
            access: Value::Null,
            operation: "ValidateAuthorizationToken",
            resources: &[],
            allowed: true,
        },
        Case {
            rule: "PutComponentMetric needs an 'aws.' caller even with a policy",
            caller: "com.example.Caller",
            access: policy("aws.greengrass.ipc.componentmetric", &["*"], &["*"]),
            operation: "PutComponentMetric",
            resources: &["m"],
            allowed: false,
        },
        Case {
            rule: "an 'aws.' caller still needs a metric policy",
            caller: "aws.example.Metrics",
            access: Value::Null,
            operation: "PutComponentMetric",
            resources: &["m"],
            allowed: false,
        },
        Case {
            rule: "an 'aws.' caller with a policy may put metrics",
            caller: "aws.example.Metrics",
            access: policy("aws.greengrass.ipc.componentmetric", &["*"], &["m*"]),
            operation: "PutComponentMetric",
            resources: &["m1", "m2"],
            allowed: true,
        },
        Case {
            rule: "every metric name is checked",
            caller: "aws.example.Metrics",
            access: policy("aws.greengrass.ipc.componentmetric", &["*"], &["m*"]),
            operation: "PutComponentMetric",
            resources: &["m1", "x"],
            allowed: false,
        },
        Case {
            rule: "StreamManager skips per-metric checks",
            caller: "aws.greengrass.StreamManager",
            access: Value::Null,
            operation: "PutComponentMetric",
            resources: &["x"],
            allowed: true,
        },
        Case {
            rule: "the Cli component bypasses Cli checks",
            caller: "aws.greengrass.Cli",
            access: Value::Null,
            operation: "CreateLocalDeployment",
            resources: &["*"],
            allowed: true,
        },
        Case {
            rule: "greengrass-cli# identities bypass Cli checks",
            caller: "greengrass-cli#user",
            access: Value::Null,
            operation: "CancelLocalDeployment",
            resources: &["*"],
            allowed: true,
        },
        Case {
            rule: "ShadowManager bypasses shadow checks",
            caller: "aws.greengrass.ShadowManager",
            access: Value::Null,
            operation: "UpdateThingShadow",
            resources: &["$aws/things/t/shadow"],
            allowed: true,
        },
        Case {
            rule: "the ShadowManager bypass is not a pub/sub bypass",
            caller: "aws.greengrass.ShadowManager",
            access: Value::Null,
            operation: "PublishToTopic",
            resources: &["$aws/things/t/shadow/update"],
            allowed: false,
        },
        Case {
            rule: "a look-alike of the Cli name gets no bypass",
            caller: "aws.greengrass.CIi",
            access: Value::Null,
            operation: "ListComponents",
            resources: &["*"],
            allowed: false,
        },
    ]
}

#[test]
fn authorization_table() {
    let cases = cases();
    assert!(cases.len() >= 40, "{} cases", cases.len());
    let mut failures = Vec::new();
    for c in &cases {
        let (policies, _) =
            Policies::parse(&c.access, "accessControl", false).expect("lenient parse");
        let resources: Vec<String> = c.resources.iter().map(|s| s.to_string()).collect();
        let got = authorize(c.caller, &policies, c.operation, &resources);
        if got.is_ok() != c.allowed {
            failures.push(format!(
                "{}: expected {}, got {got:?}",
                c.rule,
                if c.allowed { "allowed" } else { "denied" }
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing cases:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_denial_names_component_operation_resource_and_service() {
    let e = authorize(
        "com.example.A",
        &Policies::default(),
        "PublishToTopic",
        &["x/y".into()],
    )
    .unwrap_err();
    for part in [
        "com.example.A",
        "aws.greengrass#PublishToTopic",
        "x/y",
        "aws.greengrass.ipc.pubsub",
    ] {
        assert!(
            e.message.contains(part),
            "{part} missing from {:?}",
            e.message
        );
    }
}

const RECIPE: &str = r#"
ComponentName: com.example.Publisher
ComponentVersion: '1.0.0'
ComponentConfiguration:
  DefaultConfiguration:
    accessControl:
      aws.greengrass.ipc.pubsub:
        com.example.Publisher:pubsub:1:
          policyDescription: Publish to sensors only.
          operations:
            - aws.greengrass#PublishToTopic
            - aws.greengrass#SubscribeToTopic
          resources:
            - sensors/*
"#;

#[test]
fn denied_calls_get_unauthorized_error_end_to_end() {
    let emu = Emulator::builder()
        .socket_path(common::unique_socket_path("auth-e2e"))
        .recipe_str(RECIPE, RecipeFormat::Yaml)
        .start()
        .unwrap();
    let client = emu.connect().unwrap();
    client
        .publish_to_topic(PublishToTopicRequest::json("sensors/t", json!(1)))
        .unwrap();
    let err = client
        .publish_to_topic(PublishToTopicRequest::json("actuators/t", json!(1)))
        .unwrap_err();
    match err.as_service_error() {
        Some(IpcError::Unauthorized(u)) => {
            let m = u.message.as_deref().unwrap_or_default();
            assert!(
                m.contains("com.example.Publisher") && m.contains("actuators/t"),
                "{m}"
            );
        }
        other => panic!("expected UnauthorizedError, got {other:?}"),
    }
    // A filter is compared as a string: 'sensors/#' is under the glob 'sensors/*', '#' is not.
    assert!(client
        .subscribe_to_topic(
            SubscribeToTopicRequest::new("sensors/#"),
            |_e: SubscriptionResponseMessage| {}
        )
        .is_ok());
    let err = client
        .subscribe_to_topic(
            SubscribeToTopicRequest::new("#"),
            |_e: SubscriptionResponseMessage| {},
        )
        .unwrap_err();
    assert!(
        matches!(err.as_service_error(), Some(IpcError::Unauthorized(_))),
        "{err:?}"
    );
    // Publishing a wildcard topic that the policy covers: authorized, then rejected as invalid.
    let err = client
        .publish_to_topic(PublishToTopicRequest::json("sensors/#", json!(1)))
        .unwrap_err();
    assert!(
        matches!(err.as_service_error(), Some(IpcError::InvalidArguments(_))),
        "{err:?}"
    );
}

#[test]
fn a_component_without_policies_is_denied_but_unchecked_operations_work() {
    let emu = Emulator::builder()
        .socket_path(common::unique_socket_path("auth-nopol"))
        .component("com.example.Bare", "bare-token")
        .start()
        .unwrap();
    let client = emu.connect().unwrap();
    let err = client
        .publish_to_topic(PublishToTopicRequest::json("t", json!(1)))
        .unwrap_err();
    assert!(
        matches!(err.as_service_error(), Some(IpcError::Unauthorized(_))),
        "{err:?}"
    );
    client
        .update_state(ggipc::model::UpdateStateRequest::new(
            ggipc::model::ReportedLifecycleState::Running,
        ))
        .unwrap();
    assert_eq!(
        emu.component_state("com.example.Bare"),
        Some(ggipc::model::LifecycleState::Running)
    );
}

#[test]
fn malformed_recipes_name_file_path_and_problem() {
    let bad = RECIPE.replace("- aws.greengrass#SubscribeToTopic", "- 42");
    let err = Emulator::builder()
        .socket_path(common::unique_socket_path("auth-bad"))
        .recipe_str(bad, RecipeFormat::Yaml)
        .start()
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("ComponentConfiguration.DefaultConfiguration.accessControl.aws.greengrass.ipc.pubsub.com.example.Publisher:pubsub:1.operations[1]"),
        "{text}"
    );
    let bad = RECIPE.replace("- sensors/*", "- sensors/?");
    let err = Emulator::builder()
        .socket_path(common::unique_socket_path("auth-bad2"))
        .recipe_str(bad, RecipeFormat::Yaml)
        .start()
        .unwrap_err();
    assert!(err.to_string().contains("resources[0]"), "{err}");
    let dir = std::env::temp_dir().join(format!("ggipc-recipe-{}.json", std::process::id()));
    std::fs::write(&dir, "{\"ComponentName\": \"x\"}").unwrap();
    let err = Emulator::builder().recipe_file(&dir).start().unwrap_err();
    let text = err.to_string();
    let _ = std::fs::remove_file(&dir);
    assert!(
        text.contains(&dir.display().to_string()) && text.contains("ComponentVersion"),
        "{text}"
    );
}

fn publish_allowed(client: &ggipc::Client, topic: &str) -> bool {
    match client.publish_to_topic(PublishToTopicRequest::json(topic, json!(1))) {
        Ok(_) => true,
        Err(e) if matches!(e.as_service_error(), Some(IpcError::Unauthorized(_))) => false,
        Err(e) => panic!("publish to {topic}: {e:?}"),
    }
}

fn deploy(emu: &Emulator, deployment: ggipc::emulator::SimulatedDeployment) {
    let done = emu
        .simulate_deployment(deployment)
        .wait(std::time::Duration::from_secs(10))
        .expect("the deployment finishes within 10 s");
    assert_eq!(done.status, ggipc::model::DeploymentStatus::Succeeded);
}

#[test]
fn an_access_control_change_at_runtime_takes_effect_and_a_reset_restores_the_recipe() {
    let emu = Emulator::builder()
        .socket_path(common::unique_socket_path("auth-runtime"))
        .recipe_str(RECIPE, RecipeFormat::Yaml)
        .start()
        .unwrap();
    let client = emu.connect().unwrap();
    assert!(publish_allowed(&client, "sensors/t"));
    assert!(!publish_allowed(&client, "actuators/t"));
    let grant = json!({"accessControl": {"aws.greengrass.ipc.pubsub": {
        "com.example.Publisher:pubsub:2": {
            "operations": ["aws.greengrass#PublishToTopic"],
            "resources": ["actuators/*"]
        }
    }}});
    deploy(
        &emu,
        ggipc::emulator::SimulatedDeployment::new()
            .merge_configuration("com.example.Publisher", grant),
    );
    assert!(publish_allowed(&client, "actuators/t"), "the new policy");
    assert!(publish_allowed(&client, "sensors/t"), "the recipe's policy");
    deploy(
        &emu,
        ggipc::emulator::SimulatedDeployment::new()
            .reset_configuration("com.example.Publisher", "/accessControl"),
    );
    assert!(
        !publish_allowed(&client, "actuators/t"),
        "reset to the recipe"
    );
    assert!(publish_allowed(&client, "sensors/t"));
}

#[test]
fn a_permissive_component_stays_permissive_when_its_access_control_changes() {
    let emu = Emulator::builder()
        .socket_path(common::unique_socket_path("auth-permissive"))
        .permissive_component("com.example.Open", "open-token")
        .start()
        .unwrap();
    let client = emu.connect().unwrap();
    assert!(publish_allowed(&client, "anything/t"));
    let narrow = json!({"accessControl": {"aws.greengrass.ipc.pubsub": {
        "com.example.Open:pubsub:1": {
            "operations": ["aws.greengrass#PublishToTopic"],
            "resources": ["sensors/*"]
        }
    }}});
    deploy(
        &emu,
        ggipc::emulator::SimulatedDeployment::new().merge_configuration("com.example.Open", narrow),
    );
    assert!(publish_allowed(&client, "anything/t"));
    deploy(
        &emu,
        ggipc::emulator::SimulatedDeployment::new()
            .reset_configuration("com.example.Open", "/accessControl"),
    );
    assert!(publish_allowed(&client, "anything/t"));
}

#[test]
fn policies_count_and_keep_their_resources_as_written() {
    let (none, problems) = Policies::parse(&Value::Null, "accessControl", false).unwrap();
    assert!(problems.is_empty());
    assert_eq!(none.len(), 0);
    assert!(none.is_empty(), "no accessControl: no policy");
    assert!(!Policies::permissive().is_empty(), "permissive allows all");
    let access = json!({
        "aws.greengrass.ipc.pubsub": {
            "p1": {"operations": [PUB], "resources": ["a/*"]},
            "p2": {"operations": ["*"], "resources": ["b/+/c"]},
        },
        "aws.greengrass.ipc.mqttproxy": {
            "p3": {"operations": ["*"], "resources": ["x"]},
        }
    });
    let (p, problems) = Policies::parse(&access, "accessControl", false).unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(p.len(), 3);
    assert!(!p.is_empty());
    let pubsub = p.for_service("aws.greengrass.ipc.pubsub");
    let mut written: Vec<&str> = pubsub
        .iter()
        .flat_map(|pol| pol.resources.iter().map(|r| r.as_str()))
        .collect();
    written.sort_unstable();
    assert_eq!(written, ["a/*", "b/+/c"]);
    // A policy listing no operation is reported (leniently: skipped with a problem).
    let empty_ops =
        json!({"aws.greengrass.ipc.pubsub": {"p": {"operations": [], "resources": ["a"]}}});
    let (p, problems) = Policies::parse(&empty_ops, "accessControl", false).unwrap();
    assert_eq!(p.len(), 0);
    assert!(
        problems
            .iter()
            .any(|pr| pr.problem.contains("at least one operation")),
        "{problems:?}"
    );
}
