//! Golden JSON: every structure/union/error shape must decode the official Python SDK's
//! serialization (tests/data/golden, made by tests/tools/golden/gen_golden.py) and re-encode it
//! to the same JSON value.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ggipc::model::*;
use serde_json::Value;

type Checker = fn(&str, usize, &Value) -> Result<(), String>;

/// Decodes a sample into `T`, re-encodes it and compares with the original.
fn check<T: Shape>(shape: &str, index: usize, sample: &Value) -> Result<(), String> {
    let typed: T = serde_json::from_value(sample.clone())
        .map_err(|e| format!("{shape} sample #{index}: decode failed: {e}\n{sample:#}"))?;
    let text = serde_json::to_string(&typed)
        .map_err(|e| format!("{shape} sample #{index}: encode failed: {e}"))?;
    let back: Value = serde_json::from_str(&text)
        .map_err(|e| format!("{shape} sample #{index}: re-parse failed: {e}"))?;
    if &back != sample {
        return Err(format!(
            "{shape} sample #{index}: re-encoded JSON differs from the official SDK's\n official: {sample}\n ours:     {back}"
        ));
    }
    Ok(())
}

macro_rules! dispatch {
    ($($name:ident,)+) => {
        /// Model shape name (`MQTTMessage`, the golden file's and the model's name, which
        /// the Rust name may spell differently: `MqttMessage`) -> (model type, checker).
        fn dispatch() -> BTreeMap<&'static str, (&'static str, Checker)> {
            let mut map: BTreeMap<&'static str, (&'static str, Checker)> = BTreeMap::new();
            $( {
                let model_type = <$name as Shape>::MODEL_TYPE;
                let model_name = model_type.strip_prefix("aws.greengrass#").expect("aws.greengrass# model type");
                map.insert(model_name, (model_type, check::<$name> as Checker));
            } )+
            map
        }
    };
}

dispatch! {
AuthorizeClientDeviceActionRequest,
AuthorizeClientDeviceActionResponse,
BinaryMessage,
CancelLocalDeploymentRequest,
CancelLocalDeploymentResponse,
CertificateOptions,
CertificateUpdate,
CertificateUpdateEvent,
ClientDeviceCredential,
ComponentDetails,
ComponentNotFoundError,
ComponentUpdatePolicyEvents,
ConfigurationUpdateEvent,
ConfigurationUpdateEvents,
ConfigurationValidityReport,
ConflictError,
ConnectionStatusEvent,
CreateDebugPasswordRequest,
CreateDebugPasswordResponse,
CreateLocalDeploymentRequest,
CreateLocalDeploymentResponse,
CredentialDocument,
DeferComponentUpdateRequest,
DeferComponentUpdateResponse,
DeleteThingShadowRequest,
DeleteThingShadowResponse,
DeploymentStatusDetails,
FailedUpdateConditionCheckError,
GetClientDeviceAuthTokenRequest,
GetClientDeviceAuthTokenResponse,
GetComponentDetailsRequest,
GetComponentDetailsResponse,
GetConfigurationRequest,
GetConfigurationResponse,
GetLocalDeploymentStatusRequest,
GetLocalDeploymentStatusResponse,
GetSecretValueRequest,
GetSecretValueResponse,
GetThingShadowRequest,
GetThingShadowResponse,
InvalidArgumentsError,
InvalidArtifactsDirectoryPathError,
InvalidClientDeviceAuthTokenError,
InvalidCredentialError,
InvalidRecipeDirectoryPathError,
InvalidTokenError,
IoTCoreConnectionStatusEvent,
IoTCoreMessage,
JsonMessage,
ListComponentsRequest,
ListComponentsResponse,
ListLocalDeploymentsRequest,
ListLocalDeploymentsResponse,
ListNamedShadowsForThingRequest,
ListNamedShadowsForThingResponse,
LocalDeployment,
MessageContext,
Metric,
MqttCredential,
MqttMessage,
PauseComponentRequest,
PauseComponentResponse,
PostComponentUpdateEvent,
PreComponentUpdateEvent,
PublishMessage,
PublishToIoTCoreRequest,
PublishToIoTCoreResponse,
PublishToTopicRequest,
PublishToTopicResponse,
PutComponentMetricRequest,
PutComponentMetricResponse,
ResourceNotFoundError,
RestartComponentRequest,
RestartComponentResponse,
ResumeComponentRequest,
ResumeComponentResponse,
RunWithInfo,
SecretValue,
SendConfigurationValidityReportRequest,
SendConfigurationValidityReportResponse,
ServiceError,
StopComponentRequest,
StopComponentResponse,
SubscribeToCertificateUpdatesRequest,
SubscribeToCertificateUpdatesResponse,
SubscribeToComponentUpdatesRequest,
SubscribeToComponentUpdatesResponse,
SubscribeToConfigurationUpdateRequest,
SubscribeToConfigurationUpdateResponse,
SubscribeToIoTCoreConnectionStatusRequest,
SubscribeToIoTCoreConnectionStatusResponse,
SubscribeToIoTCoreRequest,
SubscribeToIoTCoreResponse,
SubscribeToTopicRequest,
SubscribeToTopicResponse,
SubscribeToValidateConfigurationUpdatesRequest,
SubscribeToValidateConfigurationUpdatesResponse,
SubscriptionResponseMessage,
SystemResourceLimits,
UnauthorizedError,
UpdateConfigurationRequest,
UpdateConfigurationResponse,
UpdateStateRequest,
UpdateStateResponse,
UpdateThingShadowRequest,
UpdateThingShadowResponse,
UserProperty,
ValidateAuthorizationTokenRequest,
ValidateAuthorizationTokenResponse,
ValidateConfigurationUpdateEvent,
ValidateConfigurationUpdateEvents,
VerifyClientDeviceIdentityRequest,
VerifyClientDeviceIdentityResponse,}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden")
}

fn golden_files() -> Vec<(String, Value)> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(golden_dir()).expect("tests/data/golden exists") {
        let path = entry.expect("readable dir entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("readable golden file");
        let doc: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: invalid JSON: {e}", path.display()));
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_owned();
        files.push((stem, doc));
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    files
}

#[test]
fn golden_samples_round_trip() {
    let table = dispatch();
    let mut failures = Vec::new();
    let mut samples = 0;
    let files = golden_files();
    assert!(
        files.len() >= 113,
        "expected >= 113 golden files, found {}",
        files.len()
    );
    for (stem, doc) in &files {
        let shape = doc["shape"].as_str().unwrap_or_default();
        assert_eq!(shape, stem, "golden file {stem}.json names shape {shape}");
        let Some((model_type, checker)) = table.get(shape) else {
            failures.push(format!("{shape}: no Rust type in the dispatch table"));
            continue;
        };
        assert_eq!(
            doc["modelType"].as_str(),
            Some(*model_type),
            "{shape}: MODEL_TYPE differs from the golden file"
        );
        let list = doc["samples"].as_array().expect("samples array");
        assert!(!list.is_empty(), "{shape}: no samples");
        for (index, sample) in list.iter().enumerate() {
            samples += 1;
            if let Err(e) = checker(shape, index, sample) {
                failures.push(e);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    assert!(samples >= 300, "only {samples} samples checked");
}

/// The project's copy of the service model, the generator's input.
fn repo_model() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/model/greengrass-ipc-model.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{} not readable: {e}", path.display()));
    serde_json::from_str(&text).expect("valid model JSON")
}

/// (name, operation header, request, response, event) of every operation type, from the
/// Rust `Operation`/`StreamingOperation` impls.
type OpRow = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
);

macro_rules! op_rows {
    (rr: [$($rr:ident),+ $(,)?], streaming: [$($st:ident),+ $(,)?]) => {
        fn op_rows() -> Vec<OpRow> {
            let mut rows: Vec<OpRow> = vec![
                $( (<$rr as Operation>::NAME, <$rr as Operation>::OPERATION,
                    <<$rr as Operation>::Request as Shape>::MODEL_TYPE,
                    <<$rr as Operation>::Response as Shape>::MODEL_TYPE, None), )+
            ];
            $( rows.push((<$st as Operation>::NAME, <$st as Operation>::OPERATION,
                <<$st as Operation>::Request as Shape>::MODEL_TYPE,
                <<$st as Operation>::Response as Shape>::MODEL_TYPE,
                Some(<<$st as StreamingOperation>::Event as Shape>::MODEL_TYPE))); )+
            rows
        }
    };
}

op_rows! {
    rr: [
        PublishToTopic, PublishToIoTCore, UpdateState, DeferComponentUpdate, PauseComponent,
        ResumeComponent, GetConfiguration, UpdateConfiguration, SendConfigurationValidityReport,
        GetSecretValue, GetThingShadow, UpdateThingShadow, DeleteThingShadow,
        ListNamedShadowsForThing, CreateLocalDeployment, CancelLocalDeployment,
        GetLocalDeploymentStatus, ListLocalDeployments, ListComponents, GetComponentDetails,
        RestartComponent, StopComponent, CreateDebugPassword, VerifyClientDeviceIdentity,
        GetClientDeviceAuthToken, AuthorizeClientDeviceAction, PutComponentMetric,
        ValidateAuthorizationToken,
    ],
    streaming: [
        SubscribeToTopic, SubscribeToIoTCore, SubscribeToIoTCoreConnectionStatus,
        SubscribeToComponentUpdates, SubscribeToConfigurationUpdate,
        SubscribeToValidateConfigurationUpdates, SubscribeToCertificateUpdates,
    ]
}

fn model_type_of(model: &Value, shape: &str) -> String {
    model["shapes"][shape]["modelName"]
        .as_str()
        .or_else(|| model["errors"][shape]["modelName"].as_str())
        .unwrap_or_else(|| panic!("model has no shape {shape}"))
        .to_owned()
}

#[test]
fn model_coverage_and_operation_table() {
    let model = repo_model();
    let table = dispatch();
    let golden: BTreeMap<String, Value> = golden_files().into_iter().collect();
    let ops = model["operations"].as_array().expect("operations");
    assert_eq!(ops.len(), 35, "model operations");
    assert_eq!(OPERATIONS.len(), 35, "OPERATIONS length");

    // Every structure/union shape and every error: golden file + Rust type.
    let mut wanted: Vec<String> = model["shapes"]
        .as_object()
        .expect("shapes")
        .iter()
        .filter(|(_, s)| matches!(s["kind"].as_str(), Some("structure" | "union")))
        .map(|(n, _)| n.clone())
        .collect();
    let errors: Vec<String> = model["errors"]
        .as_object()
        .expect("errors")
        .keys()
        .cloned()
        .collect();
    assert_eq!(errors.len(), 12, "model errors");
    wanted.extend(errors.iter().cloned());
    for shape in &wanted {
        assert!(golden.contains_key(shape), "no golden file for {shape}");
        let (model_type, _) = table
            .get(shape.as_str())
            .unwrap_or_else(|| panic!("no Rust type for {shape}"));
        assert_eq!(
            *model_type,
            model_type_of(&model, shape),
            "{shape} MODEL_TYPE"
        );
    }
    for error in &errors {
        assert!(
            ERROR_MODEL_TYPES.contains(&model_type_of(&model, error).as_str()),
            "{error} not in ERROR_MODEL_TYPES"
        );
    }

    // Operation types and the OPERATIONS table against the model.
    let rows: BTreeMap<&str, OpRow> = op_rows().into_iter().map(|r| (r.0, r)).collect();
    assert_eq!(rows.len(), 35, "operation unit structs");
    for (i, op) in ops.iter().enumerate() {
        let name = op["name"].as_str().expect("name");
        let streaming = op["kind"].as_str() == Some("streaming");
        let request = model_type_of(&model, op["request"].as_str().expect("request"));
        let response = model_type_of(&model, op["response"].as_str().expect("response"));
        let event = op["streamEvent"].as_str().map(|e| model_type_of(&model, e));
        for shape in [
            op["request"].as_str(),
            op["response"].as_str(),
            op["streamEvent"].as_str(),
        ]
        .into_iter()
        .flatten()
        {
            assert!(
                golden.contains_key(shape),
                "{name}: no golden file for {shape}"
            );
        }

        let row = rows
            .get(name)
            .unwrap_or_else(|| panic!("no Rust operation type {name}"));
        assert_eq!(
            row.1,
            op["operationHeader"].as_str().expect("header"),
            "{name} OPERATION"
        );
        assert_eq!(row.2, request, "{name} Request");
        assert_eq!(row.3, response, "{name} Response");
        assert_eq!(row.4.map(str::to_owned), event, "{name} Event");

        let info = &OPERATIONS[i];
        assert_eq!(info.name, name, "OPERATIONS order");
        assert_eq!(operation_info(name), Some(info));
        assert_eq!(operation_info(info.operation), Some(info));
        assert_eq!(
            info.operation,
            op["operationHeader"].as_str().expect("header")
        );
        assert_eq!(info.area, op["area"].as_str().expect("area"), "{name} area");
        assert_eq!(info.streaming, streaming, "{name} streaming");
        assert_eq!(info.request, request, "{name} request");
        assert_eq!(info.response, response, "{name} response");
        assert_eq!(info.event.map(str::to_owned), event, "{name} event");
        assert_eq!(
            info.auth_service,
            op["authorization"]["service"].as_str(),
            "{name} authorization service"
        );
        let model_errors: Vec<String> = op["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .map(|e| model_type_of(&model, e.as_str().expect("error name")))
            .collect();
        assert_eq!(
            info.errors,
            model_errors.iter().map(String::as_str).collect::<Vec<_>>(),
            "{name} errors"
        );
    }
    assert!(operation_info("NoSuchOperation").is_none());
}
