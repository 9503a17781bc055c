//! Client device auth's store: the answers the emulator gives (set by the test).

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
