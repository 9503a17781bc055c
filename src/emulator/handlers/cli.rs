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

use serde_json::Value;

use super::deployment;
use crate::emulator::common::errors::invalid_arguments;
use crate::emulator::common::errors::modeled_error;
use crate::emulator::common::errors::resource_not_found;
use crate::emulator::common::flavor::Flavor;
use crate::emulator::common::ids::random_token;
use crate::emulator::registry::{Body, Unary};
use crate::emulator::state::CallContext;
use crate::emulator::state::LifecycleRequest;
use crate::emulator::stores::deployment::SimulatedDeployment;
use crate::model::{
    CancelLocalDeployment, CancelLocalDeploymentRequest, CancelLocalDeploymentResponse,
    ComponentDetails, CreateDebugPassword, CreateDebugPasswordRequest, CreateDebugPasswordResponse,
    CreateLocalDeployment, CreateLocalDeploymentRequest, CreateLocalDeploymentResponse,
    GetComponentDetails, GetComponentDetailsRequest, GetComponentDetailsResponse,
    GetLocalDeploymentStatus, GetLocalDeploymentStatusRequest, GetLocalDeploymentStatusResponse,
    IpcError, LifecycleState, ListComponents, ListComponentsRequest, ListComponentsResponse,
    ListLocalDeployments, ListLocalDeploymentsRequest, ListLocalDeploymentsResponse, Operation,
    RequestStatus, RestartComponent, RestartComponentRequest, RestartComponentResponse,
    StopComponent, StopComponentRequest, StopComponentResponse, Timestamp,
};

fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit()))
}

impl Unary for CreateLocalDeployment {
    fn serve(
        ctx: &CallContext<'_>,
        r: CreateLocalDeploymentRequest,
    ) -> Result<CreateLocalDeploymentResponse, IpcError> {
        ctx.state
            .authorize(ctx, "CreateLocalDeployment", &["*".to_owned()])?;
        if let Some(dir) = &r.recipe_directory_path {
            if !std::path::Path::new(dir).is_dir() {
                return Err(modeled_error(
                    "InvalidRecipeDirectoryPathError",
                    &format!("recipe directory {dir} does not exist"),
                ));
            }
        }
        if let Some(dir) = &r.artifacts_directory_path {
            if !std::path::Path::new(dir).is_dir() {
                return Err(modeled_error(
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
                return Err(invalid_arguments(&format!(
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
                        None => return Err(invalid_arguments("RESET must list JSON pointers")),
                    }
                }
            } else if reset.is_some() {
                return Err(invalid_arguments("RESET must list JSON pointers"));
            }
            match merge {
                None => {}
                Some(m @ Value::Object(_)) => d = d.merge_configuration(name.clone(), m.clone()),
                Some(_) => return Err(invalid_arguments("MERGE must be an object")),
            }
        }
        let handle = deployment::start(ctx.state, d);
        Ok(CreateLocalDeploymentResponse {
            deployment_id: Some(handle.id().to_owned()),
        })
    }
}

impl Unary for CancelLocalDeployment {
    fn serve(
        ctx: &CallContext<'_>,
        r: CancelLocalDeploymentRequest,
    ) -> Result<CancelLocalDeploymentResponse, IpcError> {
        let id = r.deployment_id.unwrap_or_default();
        if !is_uuid(&id) {
            return Err(invalid_arguments(NOT_A_UUID));
        }
        ctx.state
            .authorize(ctx, "CancelLocalDeployment", &["*".to_owned()])?;
        let message = match ctx.state.deployments.cancel(&id) {
            Some(true) => format!("Cancel request submitted. Deployment ID: {id}"),
            Some(false) => {
                "Cancellation request is not processed because deployment is already finished"
                    .to_owned()
            }
            None => {
                return Err(resource_not_found(
                    &format!("Cannot find the deployment id provided {id}"),
                    "LocalDeployment",
                    &id,
                ))
            }
        };
        Ok(CancelLocalDeploymentResponse {
            message: Some(message),
        })
    }
}

/// CLIEventStreamAgent.java:642,732.
const NOT_A_UUID: &str = "Invalid deploymentId format received. DeploymentId is a UUID";

fn component_not_found(ctx: &CallContext<'_>, name: &str) -> crate::model::IpcError {
    let text = if ctx.state.flavor == Flavor::Lite {
        "Component not found.".to_owned()
    } else {
        format!("Component with name {name} not found in Greengrass")
    };
    resource_not_found(&text, "Component", name)
}

impl Unary for GetLocalDeploymentStatus {
    fn serve(
        ctx: &CallContext<'_>,
        r: GetLocalDeploymentStatusRequest,
    ) -> Result<GetLocalDeploymentStatusResponse, IpcError> {
        if !is_uuid(&r.deployment_id) {
            return Err(invalid_arguments(NOT_A_UUID));
        }
        ctx.state.authorize(
            ctx,
            "GetLocalDeploymentStatus",
            std::slice::from_ref(&r.deployment_id),
        )?;
        match ctx.state.deployments.get(&r.deployment_id) {
            Some(deployment) => Ok(GetLocalDeploymentStatusResponse { deployment }),
            None => Err(resource_not_found(
                "Cannot find deployment",
                "LocalDeployment",
                &r.deployment_id,
            )),
        }
    }
}

impl Unary for ListLocalDeployments {
    fn parse(
        _ctx: &CallContext<'_>,
        _body: &Body<'_>,
    ) -> Result<ListLocalDeploymentsRequest, IpcError> {
        // The request has no member; its body is not read.
        Ok(ListLocalDeploymentsRequest::default())
    }

    fn serve(
        ctx: &CallContext<'_>,
        _request: ListLocalDeploymentsRequest,
    ) -> Result<ListLocalDeploymentsResponse, IpcError> {
        ctx.state
            .authorize(ctx, "ListLocalDeployments", &["*".to_owned()])?;
        Ok(ListLocalDeploymentsResponse {
            local_deployments: Some(ctx.state.deployments.list()),
        })
    }
}

fn details(name: &str, c: &crate::emulator::stores::components::Component) -> ComponentDetails {
    ComponentDetails::new(name, c.version.clone(), c.state.clone())
        .with_configuration(c.config.clone())
}

impl Unary for ListComponents {
    fn parse(_ctx: &CallContext<'_>, _body: &Body<'_>) -> Result<ListComponentsRequest, IpcError> {
        // The request has no member; its body is not read.
        Ok(ListComponentsRequest::default())
    }

    fn serve(
        ctx: &CallContext<'_>,
        _request: ListComponentsRequest,
    ) -> Result<ListComponentsResponse, IpcError> {
        ctx.state
            .authorize(ctx, "ListComponents", &["*".to_owned()])?;
        let components = ctx
            .state
            .components
            .lock()
            .iter()
            .filter(|(_, c)| !c.removed)
            .map(|(n, c)| details(n, c))
            .collect();
        Ok(ListComponentsResponse {
            components: Some(components),
        })
    }
}

impl Unary for GetComponentDetails {
    fn serve(
        ctx: &CallContext<'_>,
        r: GetComponentDetailsRequest,
    ) -> Result<GetComponentDetailsResponse, IpcError> {
        if r.component_name.is_empty() {
            return Err(invalid_arguments("Component name cannot be empty"));
        }
        ctx.state.authorize(
            ctx,
            "GetComponentDetails",
            std::slice::from_ref(&r.component_name),
        )?;
        let components = ctx.state.components.lock();
        match components.get(&r.component_name).filter(|c| !c.removed) {
            Some(c) => {
                let component_details = details(&r.component_name, c);
                drop(components);
                Ok(GetComponentDetailsResponse { component_details })
            }
            None => Err(component_not_found(ctx, &r.component_name)),
        }
    }
}

/// The `componentName` of a RestartComponent or StopComponent request, read raw as the
/// CLI does: missing, not a string or empty is `Component name cannot be empty`.
fn raw_component_name(request: &Value) -> Result<String, IpcError> {
    match request.get("componentName").and_then(Value::as_str) {
        Some(n) if !n.is_empty() => Ok(n.to_owned()),
        _ => Err(invalid_arguments("Component name cannot be empty")),
    }
}

impl Unary for RestartComponent {
    fn parse(_ctx: &CallContext<'_>, body: &Body<'_>) -> Result<RestartComponentRequest, IpcError> {
        let request = body.value();
        raw_component_name(&request).map(RestartComponentRequest::new)
    }

    fn serve(
        ctx: &CallContext<'_>,
        request: RestartComponentRequest,
    ) -> Result<RestartComponentResponse, IpcError> {
        let message = restart_or_stop(ctx, Self::NAME, request.component_name)?;
        Ok(RestartComponentResponse::new(RequestStatus::Succeeded).with_message(message))
    }
}

impl Unary for StopComponent {
    fn parse(_ctx: &CallContext<'_>, body: &Body<'_>) -> Result<StopComponentRequest, IpcError> {
        let request = body.value();
        raw_component_name(&request).map(StopComponentRequest::new)
    }

    fn serve(
        ctx: &CallContext<'_>,
        request: StopComponentRequest,
    ) -> Result<StopComponentResponse, IpcError> {
        let message = restart_or_stop(ctx, Self::NAME, request.component_name)?;
        Ok(StopComponentResponse::new(RequestStatus::Succeeded).with_message(message))
    }
}

/// Restarts or stops `name` (records the request); the response message.
fn restart_or_stop(
    ctx: &CallContext<'_>,
    operation: &str,
    name: String,
) -> Result<String, IpcError> {
    ctx.state
        .authorize(ctx, operation, std::slice::from_ref(&name))?;
    {
        let mut components = ctx.state.components.lock();
        let Some(c) = components.get_mut(&name).filter(|c| !c.removed) else {
            return Err(component_not_found(ctx, &name));
        };
        c.state = if operation == RestartComponent::NAME {
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
    Ok(format!("{operation} requested"))
}

impl Unary for CreateDebugPassword {
    fn parse(
        _ctx: &CallContext<'_>,
        _body: &Body<'_>,
    ) -> Result<CreateDebugPasswordRequest, IpcError> {
        // The request has no member; its body is not read.
        Ok(CreateDebugPasswordRequest::default())
    }

    fn serve(
        ctx: &CallContext<'_>,
        _request: CreateDebugPasswordRequest,
    ) -> Result<CreateDebugPasswordResponse, IpcError> {
        ctx.state
            .authorize(ctx, "CreateDebugPassword", &["*".to_owned()])?;
        let expiration =
            crate::emulator::common::clock::now_millis() as f64 / 1000.0 + 8.0 * 3600.0;
        Ok(CreateDebugPasswordResponse::new(
            random_token(),
            "debug",
            Timestamp::from_secs_f64(expiration),
        )
        .with_certificate_sha256_hash(
            "0000000000000000000000000000000000000000000000000000000000000000",
        )
        .with_certificate_sha1_hash("0000000000000000000000000000000000000000"))
    }
}
