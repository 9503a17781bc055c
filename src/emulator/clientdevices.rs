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

use super::registry::{Stream, Streaming, Unary};
use super::server::StreamRef;
use super::{invalid_arguments, modeled_error, CallContext};
use crate::model::{
    AuthorizeClientDeviceAction, AuthorizeClientDeviceActionRequest,
    AuthorizeClientDeviceActionResponse, CertificateUpdateEvent, ClientDeviceCredential,
    CredentialDocument, GetClientDeviceAuthToken, GetClientDeviceAuthTokenRequest,
    GetClientDeviceAuthTokenResponse, IpcError, Shape, SubscribeToCertificateUpdates,
    SubscribeToCertificateUpdatesRequest, SubscribeToCertificateUpdatesResponse,
    VerifyClientDeviceIdentity, VerifyClientDeviceIdentityRequest,
    VerifyClientDeviceIdentityResponse,
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
