//! The deployable component template (`examples/component-template/`): its recipe parses,
//! grants exactly what the component calls, and its manifests start the artifact the build
//! produces. The component (built by cargo as the `component_template` example) runs against
//! the emulator loaded with the template's own `recipe.yaml`, through the cargo target runner
//! when one is set (qemu-user in the cross tests).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::Duration;

use common::*;
use ggipc::emulator::{Emulator, RecipeFormat};
use ggipc::model::{
    LifecycleState, PublishMessage, SubscribeToTopicRequest, SubscriptionResponseMessage,
};
use serde_json::{json, Value};
use serde_yaml_ng::Value as Yaml;

const TEMPLATE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/component-template");
const NAME: &str = "com.example.RustComponent";
const PING: &str = "com.example.RustComponent/ping";
const PONG: &str = "com.example.RustComponent/pong";
const OBSERVER: &str = "test.Observer";

fn recipe_text() -> String {
    std::fs::read_to_string(Path::new(TEMPLATE).join("recipe.yaml")).expect("template recipe")
}

fn recipe() -> Yaml {
    serde_yaml_ng::from_str(&recipe_text()).expect("template recipe is YAML")
}

/// `target/<profile>/examples/component_template`, next to this test's `deps/` directory.
fn component_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("examples/component_template");
    assert!(path.exists(), "example not built at {}", path.display());
    path
}

/// Starts the component as the recipe's component of `emulator`.
fn start_component(emulator: &Emulator) -> Child {
    target_command(component_binary())
        .env(ggipc::SOCKET_PATH_ENV, emulator.socket_path())
        .env(
            ggipc::AUTH_TOKEN_ENV,
            emulator.token_of(NAME).expect("recipe component"),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the component")
}

fn wait_with_output(child: Child, within: Duration) -> Output {
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    expect_within(&rx, within, "component exit").expect("component output")
}

fn emulator_with(recipe: &str) -> Emulator {
    Emulator::builder()
        .recipe_str(recipe, RecipeFormat::Yaml)
        .permissive_component(OBSERVER, "observer-token")
        .start()
        .expect("the emulator accepts the template recipe")
}

#[test]
fn the_component_runs_with_its_recipe_and_answers_pings() {
    let emulator = emulator_with(&recipe_text());
    let observer = emulator.connect_as(OBSERVER).unwrap();
    let (tx, rx) = crossbeam_channel::unbounded();
    let _pongs = observer
        .subscribe_to_topic(
            SubscribeToTopicRequest::new(PONG),
            move |event: SubscriptionResponseMessage| {
                let _ = tx.send(event.json().cloned());
            },
        )
        .unwrap();

    let mut child = start_component(&emulator);
    let started = expect_within(&rx, Duration::from_secs(20), "started message");
    assert_eq!(
        started,
        Some(json!({"started": true, "greeting": "Hello from Rust"})),
        "the greeting comes from the recipe's DefaultConfiguration"
    );
    assert!(matches!(
        emulator.component_state(NAME),
        Some(LifecycleState::Running)
    ));

    for n in 1..=3 {
        wait_until(Duration::from_secs(10), "component subscribed", || {
            emulator.subscription_count() == 2
        });
        let delivered = emulator.publish(OBSERVER, PING, &PublishMessage::json(json!({"n": n})));
        assert_eq!(delivered, 1);
        let pong = expect_within(&rx, Duration::from_secs(10), "pong");
        assert_eq!(
            pong,
            Some(json!({"pong": {"n": n}, "greeting": "Hello from Rust"}))
        );
    }

    // Every call the component made was allowed, and these are all the calls it makes.
    let mut operations: Vec<(String, String)> = emulator
        .calls()
        .into_iter()
        .filter(|c| c.component == NAME)
        .map(|c| (c.operation, c.outcome))
        .collect();
    operations.sort();
    operations.dedup();
    let names: Vec<&str> = operations.iter().map(|(op, _)| op.as_str()).collect();
    assert_eq!(
        names,
        [
            "GetConfiguration",
            "PublishToTopic",
            "SubscribeToTopic",
            "UpdateState"
        ],
        "{operations:?}"
    );
    assert!(
        operations
            .iter()
            .all(|(_, outcome)| outcome.starts_with("ok")),
        "{operations:?}"
    );

    child.kill().unwrap();
    let _ = wait_with_output(child, Duration::from_secs(10));
}

/// Every (policy, operation) and (policy, resource) of the recipe's `accessControl`, as a
/// recipe without it (a policy left with no operation or resource is dropped whole).
fn recipes_each_missing_one_grant() -> Vec<(String, String)> {
    let recipe = recipe();
    let access = &recipe["ComponentConfiguration"]["DefaultConfiguration"]["accessControl"];
    let mut variants = Vec::new();
    for (service, policies) in access.as_mapping().expect("accessControl mapping") {
        for (policy, body) in policies.as_mapping().expect("policies mapping") {
            for list in ["operations", "resources"] {
                let entries = body[list].as_sequence().expect("policy list");
                for index in 0..entries.len() {
                    let mut changed = recipe.clone();
                    let policies = changed["ComponentConfiguration"]["DefaultConfiguration"]
                        ["accessControl"][service]
                        .as_mapping_mut()
                        .unwrap();
                    let body = policies.get_mut(policy).unwrap();
                    let seq = body[list].as_sequence_mut().unwrap();
                    let removed = seq.remove(index);
                    if seq.is_empty() {
                        policies.remove(policy);
                    }
                    let what = format!(
                        "{}.{}.{list}: {}",
                        service.as_str().unwrap(),
                        policy.as_str().unwrap(),
                        removed.as_str().unwrap()
                    );
                    variants.push((what, serde_yaml_ng::to_string(&changed).unwrap()));
                }
            }
        }
    }
    variants
}

#[test]
fn removing_any_grant_of_the_recipe_makes_the_component_fail_unauthorized() {
    let variants = recipes_each_missing_one_grant();
    assert!(variants.len() >= 4, "{variants:?}");
    for (removed, recipe) in variants {
        let emulator = emulator_with(&recipe);
        let child = start_component(&emulator);
        let (tx, rx) = crossbeam_channel::bounded(1);
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        // (If it keeps running, the emulator's drop ends its connection and so the process.)
        let out = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| {
                panic!("without {removed} the component still runs after 20 s: that grant is not needed")
            })
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "without {removed} the component kept running or succeeded: {stderr}"
        );
        assert!(
            stderr.contains("UnauthorizedError"),
            "without {removed}: {stderr}"
        );
        let denied: Vec<_> = emulator
            .calls()
            .into_iter()
            .filter(|c| c.component == NAME && c.outcome.contains("UnauthorizedError"))
            .collect();
        assert_eq!(denied.len(), 1, "without {removed}: {denied:?}");
    }
}

#[test]
fn each_manifest_runs_the_artifact_the_build_produces() {
    let recipe = recipe();
    let manifests = recipe["Manifests"].as_sequence().expect("Manifests");
    let mut architectures = Vec::new();
    for manifest in manifests {
        assert_eq!(manifest["Platform"]["os"].as_str(), Some("linux"));
        let arch = manifest["Platform"]["architecture"].as_str().unwrap();
        architectures.push(arch.to_owned());
        let artifacts = manifest["Artifacts"].as_sequence().unwrap();
        assert_eq!(artifacts.len(), 1, "{arch}");
        let uri = artifacts[0]["URI"].as_str().unwrap();
        let file = format!("rust-component-{arch}");
        assert_eq!(
            uri,
            format!("s3://BUCKET_NAME/COMPONENT_NAME/COMPONENT_VERSION/{file}"),
            "{arch}: the URI keeps GDK's placeholders and names the built file"
        );
        assert_eq!(
            artifacts[0]["Permission"]["Execute"].as_str(),
            Some("OWNER"),
            "{arch}: the binary must be executable"
        );
        assert_eq!(
            manifest["Lifecycle"]["Run"].as_str(),
            Some(format!("{{artifacts:path}}/{file}").as_str())
        );
    }
    assert_eq!(architectures, ["aarch64", "arm", "amd64"]);

    // gdk-config.json names the same component and version, with the custom build.
    let gdk: Value = serde_json::from_str(
        &std::fs::read_to_string(Path::new(TEMPLATE).join("gdk-config.json")).unwrap(),
    )
    .expect("gdk-config.json is JSON");
    let component = &gdk["component"][NAME];
    assert_eq!(
        component["version"].as_str(),
        recipe["ComponentVersion"].as_str()
    );
    assert_eq!(recipe["ComponentName"].as_str(), Some(NAME));
    assert_eq!(component["build"]["build_system"], "custom");
    assert_eq!(
        component["build"]["custom_build_command"],
        json!(["bash", "build.sh"])
    );

    // build.sh writes the artifact names the manifests run, for each architecture.
    let build = std::fs::read_to_string(Path::new(TEMPLATE).join("build.sh")).unwrap();
    assert!(build.contains(&format!("NAME={NAME}")));
    assert!(build.contains(&format!(
        "VERSION={}",
        recipe["ComponentVersion"].as_str().unwrap()
    )));
    assert!(build.contains("\"$out/rust-component-$arch\""));
    for (triple, arch) in [
        ("aarch64-*", "aarch64"),
        ("armv7-*", "arm"),
        ("x86_64-*", "amd64"),
    ] {
        assert!(
            build.contains(triple) && build.contains(&format!("arch={arch}")),
            "{arch}"
        );
    }
}
