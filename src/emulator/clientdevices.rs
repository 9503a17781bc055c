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

use serde_json::{json, Value};

use super::server::{Outcome, StreamRef};
use super::{invalid_arguments, json_response, modeled_error, parse_request, CallContext};
use crate::model::{
    AuthorizeClientDeviceActionRequest, AuthorizeClientDeviceActionResponse,
    CertificateUpdateEvent, ClientDeviceCredential, CredentialDocument,
    GetClientDeviceAuthTokenRequest, GetClientDeviceAuthTokenResponse, Shape,
    SubscribeToCertificateUpdatesRequest, SubscribeToCertificateUpdatesResponse,
    VerifyClientDeviceIdentityRequest, VerifyClientDeviceIdentityResponse,
};

/// What the client device auth operations answer (defaults: every device with a
/// non-empty certificate is valid, every client id gets a token, every action of a token
/// the emulator issued is authorized, and a placeholder certificate is streamed).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ClientDeviceAnswers {
    /// Answer of VerifyClientDeviceIdentity for a non-empty certificate.
    pub valid_device: bool,
    /// Whether GetClientDeviceAuthToken issues tokens (else `InvalidCredentialError`).
    pub issue_tokens: bool,
    /// Answer of AuthorizeClientDeviceAction for a token the emulator issued.
    pub authorized: bool,
    /// The certificate (PEM) sent first on SubscribeToCertificateUpdates.
    pub certificate: String,
    /// The private key (PEM) sent with it.
    pub private_key: String,
}

impl Default for ClientDeviceAnswers {
    fn default() -> Self {
        ClientDeviceAnswers {
            valid_device: true,
            issue_tokens: true,
            authorized: true,
            certificate: "-----BEGIN CERTIFICATE-----\nZW11bGF0b3I=\n-----END CERTIFICATE-----\n"
                .into(),
            private_key: "-----BEGIN PRIVATE KEY-----\nZW11bGF0b3I=\n-----END PRIVATE KEY-----\n"
                .into(),
        }
    }
}

impl ClientDeviceAnswers {
    /// Sets [`ClientDeviceAnswers::valid_device`].
    #[must_use]
    pub fn valid_device(mut self, valid: bool) -> Self {
        self.valid_device = valid;
        self
    }

    /// Sets [`ClientDeviceAnswers::issue_tokens`].
    #[must_use]
    pub fn issue_tokens(mut self, issue: bool) -> Self {
        self.issue_tokens = issue;
        self
    }

    /// Sets [`ClientDeviceAnswers::authorized`].
    #[must_use]
    pub fn authorized(mut self, authorized: bool) -> Self {
        self.authorized = authorized;
        self
    }
}

const TOKEN_PREFIX: &str = "ggipc-emulator-cda-";

fn star(ctx: &CallContext<'_>, op: &str) -> Result<(), crate::model::IpcError> {
    ctx.state.authorize(ctx, op, &["*".to_owned()])
}

pub(crate) fn verify_client_device_identity(ctx: &CallContext<'_>, request: Value) -> Outcome {
    let r: VerifyClientDeviceIdentityRequest =
        match parse_request(request, "VerifyClientDeviceIdentityRequest") {
            Ok(r) => r,
            Err(e) => return Outcome::Error(e),
        };
    if let Err(e) = star(ctx, "VerifyClientDeviceIdentity") {
        return Outcome::Error(e);
    }
    #[allow(unreachable_patterns)]
    let pem = match &r.credential {
        ClientDeviceCredential::ClientDeviceCertificate(pem) => pem.clone(),
        _ => String::new(),
    };
    if pem.trim().is_empty() {
        return Outcome::Error(invalid_arguments("clientDeviceCertificate is required"));
    }
    let valid = ctx.state.client_devices.lock().valid_device;
    json_response(
        VerifyClientDeviceIdentityResponse::MODEL_TYPE,
        &json!({"isValidClientDevice": valid}),
    )
}

pub(crate) fn get_client_device_auth_token(ctx: &CallContext<'_>, request: Value) -> Outcome {
    let r: GetClientDeviceAuthTokenRequest =
        match parse_request(request, "GetClientDeviceAuthTokenRequest") {
            Ok(r) => r,
            Err(e) => return Outcome::Error(e),
        };
    if let Err(e) = star(ctx, "GetClientDeviceAuthToken") {
        return Outcome::Error(e);
    }
    #[allow(unreachable_patterns)]
    let client_id = match &r.credential {
        CredentialDocument::MqttCredential(c) => c.client_id.clone().unwrap_or_default(),
        _ => String::new(),
    };
    if client_id.is_empty() {
        return Outcome::Error(invalid_arguments("mqttCredential.clientId is required"));
    }
    if !ctx.state.client_devices.lock().issue_tokens {
        return Outcome::Error(modeled_error(
            "InvalidCredentialError",
            "the client device credential is not valid",
        ));
    }
    json_response(
        GetClientDeviceAuthTokenResponse::MODEL_TYPE,
        &json!({"clientDeviceAuthToken": format!("{TOKEN_PREFIX}{client_id}")}),
    )
}

pub(crate) fn authorize_client_device_action(ctx: &CallContext<'_>, request: Value) -> Outcome {
    let r: AuthorizeClientDeviceActionRequest =
        match parse_request(request, "AuthorizeClientDeviceActionRequest") {
            Ok(r) => r,
            Err(e) => return Outcome::Error(e),
        };
    if let Err(e) = star(ctx, "AuthorizeClientDeviceAction") {
        return Outcome::Error(e);
    }
    if r.operation.is_empty() || r.resource.is_empty() {
        return Outcome::Error(invalid_arguments("operation and resource are required"));
    }
    if !r.client_device_auth_token.starts_with(TOKEN_PREFIX) {
        return Outcome::Error(modeled_error(
            "InvalidClientDeviceAuthTokenError",
            "the client device auth token is not valid",
        ));
    }
    let authorized = ctx.state.client_devices.lock().authorized;
    json_response(
        AuthorizeClientDeviceActionResponse::MODEL_TYPE,
        &json!({"isAuthorized": authorized}),
    )
}

pub(crate) fn subscribe_to_certificate_updates(ctx: &CallContext<'_>, request: Value) -> Outcome {
    let r: SubscribeToCertificateUpdatesRequest =
        match parse_request(request, "SubscribeToCertificateUpdatesRequest") {
            Ok(r) => r,
            Err(e) => return Outcome::Error(e),
        };
    if let Err(e) = star(ctx, "SubscribeToCertificateUpdates") {
        return Outcome::Error(e);
    }
    if r.certificate_options.certificate_type.as_str() != "SERVER" {
        return Outcome::Error(invalid_arguments("certificateType must be SERVER"));
    }
    let answers = ctx.state.client_devices.lock().clone();
    Outcome::subscribe(
        &SubscribeToCertificateUpdatesResponse::default(),
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
    })
}
