//! Client device auth: VerifyClientDeviceIdentity, GetClientDeviceAuthToken,
//! AuthorizeClientDeviceAction and SubscribeToCertificateUpdates, with answers the test
//! sets through [`ClientDeviceAnswers`].
//!
//! # Rules
//!
//! Not yet read against its source (the client device auth component,
//! aws-greengrass/aws-greengrass-client-device-auth, is a separate repository): the
//! emulator answers what the test configured, checks the caller's
//! `aws.greengrass.clientdevices.Auth` policies and rejects requests missing their
//! required members with InvalidArgumentsError. Certificates, sessions and the
//! component's device-group policies are not modelled.

use serde_json::json;

use crate::emulator::common::errors::invalid_arguments;
use crate::emulator::common::errors::modeled_error;
use crate::emulator::conn::StreamRef;
use crate::emulator::registry::{Stream, Streaming, Unary};
use crate::emulator::state::CallContext;
use crate::model::{
    AuthorizeClientDeviceAction, AuthorizeClientDeviceActionRequest,
    AuthorizeClientDeviceActionResponse, CertificateUpdateEvent, ClientDeviceCredential,
    CredentialDocument, GetClientDeviceAuthToken, GetClientDeviceAuthTokenRequest,
    GetClientDeviceAuthTokenResponse, IpcError, Shape, SubscribeToCertificateUpdates,
    SubscribeToCertificateUpdatesRequest, SubscribeToCertificateUpdatesResponse,
    VerifyClientDeviceIdentity, VerifyClientDeviceIdentityRequest,
    VerifyClientDeviceIdentityResponse,
};

const TOKEN_PREFIX: &str = "ggipc-emulator-cda-";

fn star(ctx: &CallContext<'_>, op: &str) -> Result<(), crate::model::IpcError> {
    ctx.state.authorize(ctx, op, &["*".to_owned()])
}

impl Unary for VerifyClientDeviceIdentity {
    fn serve(
        ctx: &CallContext<'_>,
        r: VerifyClientDeviceIdentityRequest,
    ) -> Result<VerifyClientDeviceIdentityResponse, IpcError> {
        star(ctx, "VerifyClientDeviceIdentity")?;
        #[allow(unreachable_patterns)]
        let pem = match &r.credential {
            ClientDeviceCredential::ClientDeviceCertificate(pem) => pem.clone(),
            _ => String::new(),
        };
        if pem.trim().is_empty() {
            return Err(invalid_arguments("clientDeviceCertificate is required"));
        }
        let valid = ctx.state.client_devices.lock().valid_device;
        Ok(VerifyClientDeviceIdentityResponse::new(valid))
    }
}

impl Unary for GetClientDeviceAuthToken {
    fn serve(
        ctx: &CallContext<'_>,
        r: GetClientDeviceAuthTokenRequest,
    ) -> Result<GetClientDeviceAuthTokenResponse, IpcError> {
        star(ctx, "GetClientDeviceAuthToken")?;
        #[allow(unreachable_patterns)]
        let client_id = match &r.credential {
            CredentialDocument::MqttCredential(c) => c.client_id.clone().unwrap_or_default(),
            _ => String::new(),
        };
        if client_id.is_empty() {
            return Err(invalid_arguments("mqttCredential.clientId is required"));
        }
        if !ctx.state.client_devices.lock().issue_tokens {
            return Err(modeled_error(
                "InvalidCredentialError",
                "the client device credential is not valid",
            ));
        }
        Ok(GetClientDeviceAuthTokenResponse::new(format!(
            "{TOKEN_PREFIX}{client_id}"
        )))
    }
}

impl Unary for AuthorizeClientDeviceAction {
    fn serve(
        ctx: &CallContext<'_>,
        r: AuthorizeClientDeviceActionRequest,
    ) -> Result<AuthorizeClientDeviceActionResponse, IpcError> {
        star(ctx, "AuthorizeClientDeviceAction")?;
        if r.operation.is_empty() || r.resource.is_empty() {
            return Err(invalid_arguments("operation and resource are required"));
        }
        if !r.client_device_auth_token.starts_with(TOKEN_PREFIX) {
            return Err(modeled_error(
                "InvalidClientDeviceAuthTokenError",
                "the client device auth token is not valid",
            ));
        }
        let authorized = ctx.state.client_devices.lock().authorized;
        Ok(AuthorizeClientDeviceActionResponse::new(authorized))
    }
}

impl Streaming for SubscribeToCertificateUpdates {
    fn serve(
        ctx: &CallContext<'_>,
        r: SubscribeToCertificateUpdatesRequest,
    ) -> Result<Stream<SubscribeToCertificateUpdatesResponse>, IpcError> {
        star(ctx, "SubscribeToCertificateUpdates")?;
        if r.certificate_options.certificate_type.as_str() != "SERVER" {
            return Err(invalid_arguments("certificateType must be SERVER"));
        }
        let answers = ctx.state.client_devices.lock().clone();
        Ok(Stream::new(
            SubscribeToCertificateUpdatesResponse::default(),
            |_stream: StreamRef| Box::new(|| {}),
        )
        .with_initial(move || {
            let event = json!({"certificateUpdate": {
                "certificate": answers.certificate,
                "privateKey": answers.private_key,
                "caCertificates": [answers.certificate],
            }});
            vec![(
                CertificateUpdateEvent::MODEL_TYPE,
                event.to_string().into_bytes().into(),
            )]
        }))
    }
}
