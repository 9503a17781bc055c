//! Local deployments and components (the Greengrass CLI operations): CreateLocalDeployment,
//! CancelLocalDeployment, GetLocalDeploymentStatus, ListLocalDeployments, ListComponents,
//! GetComponentDetails, RestartComponent, StopComponent and CreateDebugPassword.
//!
//! # Rules (`nucleus` flavour, the Greengrass CLI component)
//!
//! From aws-greengrass/aws-greengrass-cli at 670ced8; `CA` is
//! `server/src/main/java/com/aws/greengrass/cli/CLIEventStreamAgent.java`. `IAE` =
//! InvalidArgumentsError. Tests: `tests/emulator_fidelity.rs` (`cli_*`).
//!
//! | Rule | Source |
//! |---|---|
//! | The request is validated before authorization. | `CA:227-232,572-577,666-671` |
//! | GetComponentDetails/RestartComponent/StopComponent with an empty `componentName` → IAE `Component name cannot be empty`; an unknown component → `ResourceNotFoundError` `Component with name <n> not found in Greengrass`. | `CA:236-241,369-372,847-851` |
//! | CancelLocalDeployment/GetLocalDeploymentStatus with a `deploymentId` that is not a UUID → IAE `Invalid deploymentId format received. DeploymentId is a UUID`. | `CA:638-644,728-734` |
//! | GetLocalDeploymentStatus of an unknown deployment → `ResourceNotFoundError` `Cannot find deployment`, resource type `LocalDeployment`. | `CA:674-679` |
//! | CancelLocalDeployment of an unknown deployment → `ResourceNotFoundError` `Cannot find the deployment id provided <id>`; of a finished one → a response with `Cancellation request is not processed because deployment is already finished`; else `Cancel request submitted. Deployment ID: <id>`. | `CA:583-598,617` |
//! | The CLI itself and `aws.greengrass.cli.client.*` callers pass authorization. | `CA:260-277` |
//!
//! `lite` flavour: RestartComponent of an unknown component → `ResourceNotFoundError`
//! `Component not found.` (`modules/ggipcd/src/services/cli/restart_component.c:78-82`,
//! aws-greengrass-lite tag v2.6.0).
//!
//! Deliberate differences: deployments are simulated (no artifacts, recipes or
//! dependencies); restart/stop change the recorded state and run nothing.

use serde_json::{json, Value};

use super::deployment::{self, SimulatedDeployment};
use super::server::Outcome;
use super::{
    invalid_arguments, json_response, modeled_error, parse_request, random_token,
    resource_not_found, CallContext, LifecycleRequest,
};
use crate::model::{
    CancelLocalDeploymentRequest, CancelLocalDeploymentResponse, ComponentDetails,
    CreateDebugPasswordResponse, CreateLocalDeploymentRequest, CreateLocalDeploymentResponse,
    GetComponentDetailsRequest, GetComponentDetailsResponse, GetLocalDeploymentStatusRequest,
    GetLocalDeploymentStatusResponse, LifecycleState, ListComponentsResponse,
    ListLocalDeploymentsResponse, RestartComponentResponse, Shape, StopComponentResponse,
};

fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit()))
}

pub(crate) fn create_local_deployment(ctx: &CallContext<'_>, request: Value) -> Outcome {
    let r: CreateLocalDeploymentRequest =
        match parse_request(request, "CreateLocalDeploymentRequest") {
            Ok(r) => r,
            Err(e) => return Outcome::Error(e),
        };
    if let Err(e) = ctx
        .state
        .authorize(ctx, "CreateLocalDeployment", &["*".to_owned()])
    {
        return Outcome::Error(e);
    }
    if let Some(dir) = &r.recipe_directory_path {
        if !std::path::Path::new(dir).is_dir() {
            return Outcome::Error(modeled_error(
                "InvalidRecipeDirectoryPathError",
                &format!("recipe directory {dir} does not exist"),
            ));
        }
    }
    if let Some(dir) = &r.artifacts_directory_path {
        if !std::path::Path::new(dir).is_dir() {
            return Outcome::Error(modeled_error(
                "InvalidArtifactsDirectoryPathError",
                &format!("artifacts directory {dir} does not exist"),
            ));
        }
    }
    let mut d = SimulatedDeployment::new();
    for (name, version) in r.root_component_versions_to_add.unwrap_or_default() {
        d = d.component_version(name, version);
    }
    for name in r.root_components_to_remove.unwrap_or_default() {
        d = d.remove_component(name);
    }
    for (name, update) in r.component_to_configuration.unwrap_or_default() {
        let Value::Object(update) = update else {
            return Outcome::Error(invalid_arguments(&format!(
                "componentToConfiguration.{name} must be an object with MERGE and/or RESET"
            )));
        };
        let (merge, reset) = (update.get("MERGE"), update.get("RESET"));
        if merge.is_none() && reset.is_none() {
            d = d.merge_configuration(name.clone(), Value::Object(update.clone()));
            continue;
        }
        if let Some(Value::Array(pointers)) = reset {
            for p in pointers {
                match p.as_str() {
                    Some(p) => d = d.reset_configuration(name.clone(), p),
                    None => {
                        return Outcome::Error(invalid_arguments("RESET must list JSON pointers"))
                    }
                }
            }
        } else if reset.is_some() {
            return Outcome::Error(invalid_arguments("RESET must list JSON pointers"));
        }
        match merge {
            None => {}
            Some(m @ Value::Object(_)) => d = d.merge_configuration(name.clone(), m.clone()),
            Some(_) => return Outcome::Error(invalid_arguments("MERGE must be an object")),
        }
    }
    let handle = deployment::start(ctx.state, d);
    Outcome::response(&CreateLocalDeploymentResponse {
        deployment_id: Some(handle.id().to_owned()),
    })
}

pub(crate) fn cancel_local_deployment(ctx: &CallContext<'_>, request: Value) -> Outcome {
    let r: CancelLocalDeploymentRequest =
        match parse_request(request, "CancelLocalDeploymentRequest") {
            Ok(r) => r,
            Err(e) => return Outcome::Error(e),
        };
    let id = r.deployment_id.unwrap_or_default();
    if !is_uuid(&id) {
        return Outcome::Error(invalid_arguments(NOT_A_UUID));
    }
    if let Err(e) = ctx
        .state
        .authorize(ctx, "CancelLocalDeployment", &["*".to_owned()])
    {
        return Outcome::Error(e);
    }
    let message = match ctx.state.deployments.cancel(&id) {
        Some(true) => format!("Cancel request submitted. Deployment ID: {id}"),
        Some(false) => {
            "Cancellation request is not processed because deployment is already finished"
                .to_owned()
        }
        None => {
            return Outcome::Error(resource_not_found(
                &format!("Cannot find the deployment id provided {id}"),
                "LocalDeployment",
                &id,
            ))
        }
    };
    Outcome::response(&CancelLocalDeploymentResponse {
        message: Some(message),
    })
}

/// CLIEventStreamAgent.java:642,732.
const NOT_A_UUID: &str = "Invalid deploymentId format received. DeploymentId is a UUID";

fn component_not_found(ctx: &CallContext<'_>, name: &str) -> crate::model::IpcError {
    let text = if ctx.state.flavor == super::Flavor::Lite {
        "Component not found.".to_owned()
    } else {
        format!("Component with name {name} not found in Greengrass")
    };
    resource_not_found(&text, "Component", name)
}

pub(crate) fn get_local_deployment_status(ctx: &CallContext<'_>, request: Value) -> Outcome {
    let r: GetLocalDeploymentStatusRequest =
        match parse_request(request, "GetLocalDeploymentStatusRequest") {
            Ok(r) => r,
            Err(e) => return Outcome::Error(e),
        };
    if !is_uuid(&r.deployment_id) {
        return Outcome::Error(invalid_arguments(NOT_A_UUID));
    }
    if let Err(e) = ctx.state.authorize(
        ctx,
        "GetLocalDeploymentStatus",
        std::slice::from_ref(&r.deployment_id),
    ) {
        return Outcome::Error(e);
    }
    match ctx.state.deployments.get(&r.deployment_id) {
        Some(deployment) => Outcome::response(&GetLocalDeploymentStatusResponse { deployment }),
        None => Outcome::Error(resource_not_found(
            "Cannot find deployment",
            "LocalDeployment",
            &r.deployment_id,
        )),
    }
}

pub(crate) fn list_local_deployments(ctx: &CallContext<'_>) -> Outcome {
    if let Err(e) = ctx
        .state
        .authorize(ctx, "ListLocalDeployments", &["*".to_owned()])
    {
        return Outcome::Error(e);
    }
    Outcome::response(&ListLocalDeploymentsResponse {
        local_deployments: Some(ctx.state.deployments.list()),
    })
}

fn details(name: &str, c: &super::Component) -> ComponentDetails {
    ComponentDetails::new(name, c.version.clone(), c.state.clone())
        .with_configuration(c.config.clone())
}

pub(crate) fn list_components(ctx: &CallContext<'_>) -> Outcome {
    if let Err(e) = ctx
        .state
        .authorize(ctx, "ListComponents", &["*".to_owned()])
    {
        return Outcome::Error(e);
    }
    let components = ctx
        .state
        .components
        .lock()
        .iter()
        .filter(|(_, c)| !c.removed)
        .map(|(n, c)| details(n, c))
        .collect();
    Outcome::response(&ListComponentsResponse {
        components: Some(components),
    })
}

pub(crate) fn get_component_details(ctx: &CallContext<'_>, request: Value) -> Outcome {
    let r: GetComponentDetailsRequest = match parse_request(request, "GetComponentDetailsRequest") {
        Ok(r) => r,
        Err(e) => return Outcome::Error(e),
    };
    if r.component_name.is_empty() {
        return Outcome::Error(invalid_arguments("Component name cannot be empty"));
    }
    if let Err(e) = ctx.state.authorize(
        ctx,
        "GetComponentDetails",
        std::slice::from_ref(&r.component_name),
    ) {
        return Outcome::Error(e);
    }
    let components = ctx.state.components.lock();
    match components.get(&r.component_name).filter(|c| !c.removed) {
        Some(c) => {
            let component_details = details(&r.component_name, c);
            drop(components);
            Outcome::response(&GetComponentDetailsResponse { component_details })
        }
        None => Outcome::Error(component_not_found(ctx, &r.component_name)),
    }
}

pub(crate) fn restart_or_stop(ctx: &CallContext<'_>, operation: &str, request: Value) -> Outcome {
    let name = match request.get("componentName").and_then(Value::as_str) {
        Some(n) if !n.is_empty() => n.to_owned(),
        _ => return Outcome::Error(invalid_arguments("Component name cannot be empty")),
    };
    if let Err(e) = ctx
        .state
        .authorize(ctx, operation, std::slice::from_ref(&name))
    {
        return Outcome::Error(e);
    }
    {
        let mut components = ctx.state.components.lock();
        let Some(c) = components.get_mut(&name).filter(|c| !c.removed) else {
            return Outcome::Error(component_not_found(ctx, &name));
        };
        c.state = if operation == "RestartComponent" {
            LifecycleState::Running
        } else {
            LifecycleState::Finished
        };
    }
    ctx.state.lifecycle_requests.lock().push(LifecycleRequest {
        caller: ctx.component.to_owned(),
        operation: operation.to_owned(),
        component: name,
    });
    let body = json!({"message": format!("{operation} requested"), "restartStatus": "SUCCEEDED", "stopStatus": "SUCCEEDED"});
    if operation == "RestartComponent" {
        json_response(
            RestartComponentResponse::MODEL_TYPE,
            &json!({"restartStatus": "SUCCEEDED", "message": body["message"]}),
        )
    } else {
        json_response(
            StopComponentResponse::MODEL_TYPE,
            &json!({"stopStatus": "SUCCEEDED", "message": body["message"]}),
        )
    }
}

pub(crate) fn create_debug_password(ctx: &CallContext<'_>) -> Outcome {
    if let Err(e) = ctx
        .state
        .authorize(ctx, "CreateDebugPassword", &["*".to_owned()])
    {
        return Outcome::Error(e);
    }
    let expiration = super::now_millis() as f64 / 1000.0 + 8.0 * 3600.0;
    json_response(
        CreateDebugPasswordResponse::MODEL_TYPE,
        &json!({
            "username": "debug",
            "password": random_token(),
            "passwordExpiration": expiration,
            "certificateSHA256Hash": "0000000000000000000000000000000000000000000000000000000000000000",
            "certificateSHA1Hash": "0000000000000000000000000000000000000000",
        }),
    )
}
