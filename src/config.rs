//! Client configuration: the builder and its defaults.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::codec::{Limits, DEFAULT_MAX_FRAME_SIZE};
use crate::error::{Error, Result};

/// Environment variable holding the nucleus socket path.
pub const SOCKET_PATH_ENV: &str = "AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT";
/// Environment variable holding the component's IPC auth token.
pub const AUTH_TOKEN_ENV: &str = "SVCUID";

/// Default deadline of the CONNECT handshake (writing CONNECT, waiting for CONNECT_ACK).
pub(crate) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default deadline of a call (write plus response).
pub(crate) const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Default number of threads running subscription handlers.
pub(crate) const DEFAULT_HANDLER_THREADS: usize = 2;
/// Default number of events one subscription may have queued before new ones are dropped.
pub(crate) const DEFAULT_EVENT_QUEUE_CAPACITY: usize = 1024;
/// Default payload bytes one subscription may have queued before new events are dropped.
pub(crate) const DEFAULT_EVENT_QUEUE_BYTES: usize = 4 * 1024 * 1024;
/// Default time `close()`/Drop wait for the I/O and handler threads to finish.
pub(crate) const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a blocking call watches for its reply before it sleeps, by default: see
/// [`ClientBuilder::reply_spin`].
pub const DEFAULT_REPLY_SPIN: Duration = Duration::from_micros(30);
/// The longest [`ClientBuilder::reply_spin`] accepted.
pub const MAX_REPLY_SPIN: Duration = Duration::from_millis(1);

/// A user-supplied source of the auth token, asked at every (re)connect.
pub(crate) type TokenSource = Arc<dyn Fn() -> Option<String> + Send + Sync>;

/// When and how often to reconnect after the connection is lost. See
/// [`ClientBuilder::reconnect`].
///
/// The delay before attempt *n* (from 0) is `min(max_delay, initial_delay × 2ⁿ)`, jittered
/// uniformly down to half of it so that many clients of one restarted nucleus do not
/// reconnect in lockstep. Defaults: 100 ms initial, 30 s maximum, unlimited attempts.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use ggipc::ReconnectPolicy;
/// # let emulator = ggipc::emulator::Emulator::start()?;
///
/// let policy = ReconnectPolicy::new()
///     .initial_delay(Duration::from_millis(50))
///     .max_delay(Duration::from_secs(5))
///     .max_attempts(20);
/// let client = emulator.client_builder().reconnect(policy).connect()?;
/// assert!(client.is_connected());
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub struct ReconnectPolicy {
    initial_delay: Duration,
    max_delay: Duration,
    max_attempts: Option<u32>,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        ReconnectPolicy {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(30),
            max_attempts: None,
        }
    }
}

impl ReconnectPolicy {
    /// The defaults: 100 ms initial delay, 30 s maximum, unlimited attempts.
    pub fn new() -> Self {
        Self::default()
    }

    /// Delay before the first attempt (at least 1 ms).
    pub fn initial_delay(mut self, delay: Duration) -> Self {
        self.initial_delay = delay.max(Duration::from_millis(1));
        self
    }

    /// Longest delay between two attempts.
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// Gives up after `attempts` failed attempts in a row: pending and later calls then
    /// fail with [`Error::Closed`] and every subscription is closed.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = Some(attempts);
        self
    }

    /// Never gives up (the default).
    pub fn unlimited(mut self) -> Self {
        self.max_attempts = None;
        self
    }

    /// The jitter-free delay before attempt `attempt` (from 0).
    pub(crate) fn base_delay(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX);
        self.initial_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay.max(self.initial_delay))
    }

    pub(crate) fn attempts(&self) -> Option<u32> {
        self.max_attempts
    }
}

/// Everything a [`Client`](crate::Client) is configured with. Built by [`ClientBuilder`].
#[derive(Clone)]
pub(crate) struct Config {
    pub socket_path: PathBuf,
    pub auth_token: String,
    /// Whether `auth_token` came from `$SVCUID` (then it is read again on reconnect).
    pub token_from_env: bool,
    pub token_source: Option<TokenSource>,
    pub reconnect: Option<ReconnectPolicy>,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub limits: Limits,
    pub handler_threads: usize,
    pub event_queue_capacity: usize,
    pub event_queue_bytes: usize,
    pub shutdown_timeout: Duration,
    pub reply_spin: Duration,
}

/// Builds a [`Client`](crate::Client): where to connect, with which token, and the limits.
///
/// Values not set explicitly come from the Greengrass environment variables
/// ([`SOCKET_PATH_ENV`], [`AUTH_TOKEN_ENV`]) at [`connect`](ClientBuilder::connect) time.
/// The token never appears in `Debug` output or logs.
///
/// ```no_run
/// # fn main() -> Result<(), ggipc::Error> {
/// use std::time::Duration;
/// let _client = ggipc::Client::builder()
///     .request_timeout(Duration::from_secs(3))
///     .handler_threads(4)
///     .connect()?;
/// # Ok(()) }
/// ```
///
/// Every setting explicit, against the in-process emulator (what a test does;
/// [`Emulator::client_builder`](crate::emulator::Emulator::client_builder) is a shortcut
/// for the first two lines):
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use ggipc::{Client, ReconnectPolicy};
///
/// let emulator = ggipc::emulator::Emulator::start()?;
/// let client = Client::builder()
///     .socket_path(emulator.socket_path())
///     .auth_token(emulator.auth_token())
///     .connect_timeout(Duration::from_secs(2))
///     .request_timeout(Duration::from_secs(3))
///     .handler_threads(1)
///     .event_queue(256, 1 << 20)
///     .shutdown_timeout(Duration::from_millis(500))
///     .reconnect(ReconnectPolicy::new().max_attempts(5))
///     .connect()?;
/// assert!(client.is_connected());
///
/// // A bad setting is refused before connecting:
/// let refused = Client::builder().socket_path(emulator.socket_path()).auth_token("t").handler_threads(0).connect();
/// assert!(matches!(refused, Err(ggipc::Error::InvalidArgument(_))));
/// # Ok(()) }
/// ```
#[derive(Clone)]
#[must_use]
pub struct ClientBuilder {
    socket_path: Option<PathBuf>,
    auth_token: Option<String>,
    connect_timeout: Duration,
    request_timeout: Duration,
    max_frame_size: u32,
    handler_threads: usize,
    event_queue_capacity: usize,
    event_queue_bytes: usize,
    shutdown_timeout: Duration,
    reconnect: Option<ReconnectPolicy>,
    token_source: Option<TokenSource>,
    reply_spin: Duration,
}

impl Config {
    /// The token for a reconnect: the token source's, else `$SVCUID` when the first
    /// token came from there, else the first token.
    pub(crate) fn current_token(&self) -> String {
        ask_source(self.token_source.as_ref())
            .or_else(|| self.token_from_env.then(env_token).flatten())
            .unwrap_or_else(|| self.auth_token.clone())
    }
}

/// The token `source` gives, if any and not empty. A panic in the source is caught and
/// logged (it runs on the reconnect thread, which must go on): it counts as no token.
fn ask_source(source: Option<&TokenSource>) -> Option<String> {
    let source = source?;
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| source())) {
        Ok(token) => token.filter(|t| !t.is_empty()),
        Err(_) => {
            log::error!("the auth token source panicked; using the previous token");
            None
        }
    }
}

/// `$SVCUID`, if set and not empty.
fn env_token() -> Option<String> {
    std::env::var(AUTH_TOKEN_ENV).ok().filter(|t| !t.is_empty())
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("socket_path", &self.socket_path)
            .field(
                "auth_token",
                &self.auth_token.as_ref().map(|_| "<redacted>"),
            )
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("max_frame_size", &self.max_frame_size)
            .field("handler_threads", &self.handler_threads)
            .field("event_queue_capacity", &self.event_queue_capacity)
            .field("event_queue_bytes", &self.event_queue_bytes)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("reconnect", &self.reconnect)
            .field("reply_spin", &self.reply_spin)
            .field(
                "auth_token_source",
                &self.token_source.as_ref().map(|_| "<fn>"),
            )
            .finish()
    }
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            socket_path: None,
            auth_token: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            handler_threads: DEFAULT_HANDLER_THREADS,
            event_queue_capacity: DEFAULT_EVENT_QUEUE_CAPACITY,
            event_queue_bytes: DEFAULT_EVENT_QUEUE_BYTES,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            reconnect: None,
            token_source: None,
            reply_spin: DEFAULT_REPLY_SPIN,
        }
    }
}

impl ClientBuilder {
    /// A builder with every default; see the setters for each.
    pub fn new() -> Self {
        Self::default()
    }

    /// The nucleus socket. Default: `$AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT`.
    /// A relative path is resolved against the current directory (the nucleus uses one
    /// when the absolute path is too long for a Unix socket).
    pub fn socket_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.socket_path = Some(path.into());
        self
    }

    /// The IPC auth token. Default: `$SVCUID`.
    pub fn auth_token(mut self, token: impl Into<String>) -> Self {
        self.auth_token = Some(token.into());
        self
    }

    /// Deadline of connecting: opening the socket (which waits only when the server has
    /// stopped accepting and its listen backlog is full; that ends in
    /// [`TimeoutKind::Connect`](crate::TimeoutKind::Connect)), writing CONNECT and waiting
    /// for CONNECT_ACK ([`TimeoutKind::Handshake`](crate::TimeoutKind::Handshake)).
    /// Default 5 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Default deadline of each call, covering the write and the response. Default 10 s.
    /// Override per call with [`CallOptions`](crate::CallOptions).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Largest frame sent or accepted, in bytes. Default 16 MiB. A request whose frame
    /// is larger fails with [`Error::RequestTooLarge`] before anything is sent. For
    /// nucleus lite, which closes the connection on larger frames, use
    /// [`nucleus_lite`](Self::nucleus_lite). It also bounds the
    /// largest single event a subscription can receive: such an event is always
    /// deliverable to an empty event queue, whatever [`event_queue`](Self::event_queue)'s
    /// byte cap (which may be smaller).
    pub fn max_frame_size(mut self, bytes: u32) -> Self {
        self.max_frame_size = bytes;
        self
    }

    /// Tells the client the server is nucleus lite (aws-greengrass-lite): sets
    /// [`max_frame_size`](Self::max_frame_size) to the 10,012 bytes lite accepts (its
    /// 10,000-byte IPC buffer after the 12-byte prelude), so that a larger request fails
    /// with [`Error::RequestTooLarge`] before anything is sent instead of making lite
    /// close the connection.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use ggipc::emulator::{Emulator, Flavor};
    /// use ggipc::model::PublishToTopicRequest;
    /// let emulator = Emulator::builder().flavor(Flavor::Lite).start()?;
    /// let client = emulator.client_builder().nucleus_lite().connect()?;
    /// let big = PublishToTopicRequest::binary("t", vec![b'x'; 12_000]);
    /// let error = client.publish_to_topic(big).unwrap_err();
    /// assert!(matches!(error, ggipc::Error::RequestTooLarge { max: 10_012, .. }), "{error}");
    /// // Nothing was sent: the connection is fine.
    /// client.publish_to_topic(PublishToTopicRequest::binary("t", b"small".to_vec()))?;
    /// # Ok(()) }
    /// ```
    pub fn nucleus_lite(self) -> Self {
        self.max_frame_size(crate::error::NUCLEUS_LITE_MAX_FRAME)
    }

    /// Threads running subscription handlers. Default 2. Events of one subscription run
    /// in order on one thread at a time; a handler that blocks occupies one thread.
    pub fn handler_threads(mut self, threads: usize) -> Self {
        self.handler_threads = threads;
        self
    }

    /// Per-subscription queue bound: events and payload bytes waiting for the handler.
    /// Defaults 1024 events and 4 MiB. Beyond either, new events are dropped, counted,
    /// logged at warn and reported to the handler's
    /// [`on_events_dropped`](crate::StreamHandler::on_events_dropped).
    ///
    /// How the two limits relate: the byte cap bounds what waits *behind* an event, never
    /// one event. An event enters an empty queue whatever its size (the frame limit,
    /// [`max_frame_size`](Self::max_frame_size), already bounds it), and is dropped only
    /// when events are already queued and it would take their bytes past `max_bytes`. So
    /// the payload bytes queued per subscription are at most
    /// `max(max_bytes, max_frame_size)`, and an event larger than `max_bytes` is delivered
    /// when it finds the queue empty (an idle handler) rather than never.
    pub fn event_queue(mut self, max_events: usize, max_bytes: usize) -> Self {
        self.event_queue_capacity = max_events;
        self.event_queue_bytes = max_bytes;
        self
    }

    /// How long `close()`/Drop wait for the background threads. Default 1 s; a handler
    /// still blocked after that is left to finish on its own (and logged).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// How long a blocking call (every typed method, [`Client::call`](crate::Client::call))
    /// watches for its reply before its thread sleeps. Default 30 µs
    /// ([`DEFAULT_REPLY_SPIN`]); at most 1 ms ([`MAX_REPLY_SPIN`]); zero sleeps at once.
    ///
    /// A reply that comes within the spin is taken without a wake-up: the thread stays
    /// on its CPU, yielding it to any other thread that is ready to run, and checks for
    /// its reply between yields. A wake-up is what a fast round trip mostly waits for:
    /// on a multi-core machine the reply wakes the client's I/O thread, which wakes the
    /// caller, each on a CPU that may have gone idle. `BENCHMARKS.md` measures what the
    /// spin gains and costs.
    ///
    /// The spin adapts, per thread, so that a slow server costs little: after a spin that
    /// ended without the reply, that thread's next calls sleep at once, for 1, 3, 7, …,
    /// up to 63 calls as the misses repeat, and a spin that gets its reply resets that.
    /// When the process may run on one CPU only (`Cpus_allowed_list` in
    /// `/proc/self/status`: `taskset`, cpusets), calls always sleep at once: the threads
    /// that would answer need that CPU. Calls started with
    /// [`Client::start`](crate::Client::start) do not spin: they are waited on later.
    ///
    /// The handler threads do the same when they run out of events: each watches for the
    /// next one for as long before it sleeps (events often come in a stream), with the
    /// same per-thread back-off, so a subscription that gets an event now and then costs
    /// one spin in 64.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// # let emulator = ggipc::emulator::Emulator::start()?;
    /// // A device where CPU time matters more than a call's latency:
    /// let client = ggipc::Client::builder()
    ///     .socket_path(emulator.socket_path())
    ///     .auth_token(emulator.auth_token())
    ///     .reply_spin(Duration::ZERO)
    ///     .connect()?;
    /// client.publish_to_topic(ggipc::model::PublishToTopicRequest::json("t", ggipc::serde_json::json!(1)))?;
    ///
    /// // More than 1 ms is refused.
    /// let refused = ggipc::Client::builder()
    ///     .socket_path(emulator.socket_path())
    ///     .auth_token(emulator.auth_token())
    ///     .reply_spin(Duration::from_millis(2))
    ///     .connect();
    /// assert!(matches!(refused, Err(ggipc::Error::InvalidArgument(_))));
    /// # Ok(()) }
    /// ```
    pub fn reply_spin(mut self, spin: Duration) -> Self {
        self.reply_spin = spin;
        self
    }

    /// Reconnects automatically after the connection is lost (opt-in; without it a lost
    /// connection stays closed, which is the default).
    ///
    /// With a policy, when the connection drops for any reason other than
    /// [`Client::close`](crate::Client::close):
    /// * the client reconnects in the background with the policy's jittered
    ///   exponential backoff, taking a fresh token (see
    ///   [`auth_token_source`](ClientBuilder::auth_token_source));
    /// * every open subscription gets
    ///   [`on_stream_interrupted`](crate::StreamHandler::on_stream_interrupted), is
    ///   re-subscribed with its original request once connected, and then gets
    ///   [`on_stream_resumed`](crate::StreamHandler::on_stream_resumed). **Events
    ///   published while disconnected are lost**; a re-subscription the server refuses
    ///   ends the subscription with that error;
    /// * calls made while disconnected fail at once with [`Error::Disconnected`], or wait
    ///   for the reconnect up to their deadline with
    ///   [`CallOptions::wait_for_reconnect`]. A call that was in flight when the
    ///   connection dropped fails with [`Error::Disconnected`] and is not retried (the
    ///   server may have acted on it);
    /// * after `max_attempts` failures in a row the client gives up: calls fail with
    ///   [`Error::Closed`] and subscriptions close.
    ///
    /// The reconnect runs on one more background thread (`ggipc-reconnect`).
    pub fn reconnect(mut self, policy: ReconnectPolicy) -> Self {
        self.reconnect = Some(policy);
        self
    }

    /// Where a reconnect takes its auth token: `source` is called at each reconnect
    /// (and at the first connect if no token was set) and its token used when it returns
    /// a non-empty one. Without it (or when it returns `None`), a token that came from
    /// `$SVCUID` is read again from there, and an explicit
    /// [`auth_token`](ClientBuilder::auth_token) is reused. The token is never logged.
    pub fn auth_token_source(
        mut self,
        source: impl Fn() -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.token_source = Some(Arc::new(source));
        self
    }

    pub(crate) fn build(self) -> Result<Config> {
        let socket_path = match self.socket_path {
            Some(p) => p,
            None => std::env::var_os(SOCKET_PATH_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .ok_or(Error::MissingEnvVar {
                    name: SOCKET_PATH_ENV,
                })?,
        };
        // At the first connect an explicit token wins over the source (at a reconnect
        // the source is asked first: `Config::current_token`).
        let explicit = self
            .auth_token
            .clone()
            .or_else(|| ask_source(self.token_source.as_ref()));
        let (auth_token, token_from_env) = match explicit {
            Some(t) => (t, false),
            None => (
                env_token().ok_or(Error::MissingEnvVar {
                    name: AUTH_TOKEN_ENV,
                })?,
                true,
            ),
        };
        if self.handler_threads == 0 {
            return Err(Error::InvalidArgument(
                "handler_threads must be at least 1".into(),
            ));
        }
        if self.max_frame_size < 1024 {
            return Err(Error::InvalidArgument(
                "max_frame_size must be at least 1024 bytes".into(),
            ));
        }
        if self.event_queue_capacity == 0 || self.event_queue_bytes == 0 {
            return Err(Error::InvalidArgument(
                "the event queue bounds must be at least 1".into(),
            ));
        }
        if self.reply_spin > MAX_REPLY_SPIN {
            return Err(Error::InvalidArgument(
                "reply_spin must be at most 1 ms".into(),
            ));
        }
        for (name, d) in [
            ("connect_timeout", self.connect_timeout),
            ("request_timeout", self.request_timeout),
        ] {
            if d.is_zero() {
                return Err(Error::InvalidArgument(format!(
                    "{name} must be greater than zero"
                )));
            }
        }
        Ok(Config {
            socket_path,
            auth_token,
            token_from_env,
            token_source: self.token_source,
            reconnect: self.reconnect,
            connect_timeout: self.connect_timeout,
            request_timeout: self.request_timeout,
            limits: Limits::with_max_frame_size(self.max_frame_size),
            handler_threads: self.handler_threads,
            event_queue_capacity: self.event_queue_capacity,
            event_queue_bytes: self.event_queue_bytes,
            shutdown_timeout: self.shutdown_timeout,
            reply_spin: self.reply_spin,
        })
    }
}

/// Options of one call.
///
/// Every typed method has a `_with` form that takes them (`publish_to_topic_with`,
/// `subscribe_to_topic_with`, ...), as do [`Client::call`](crate::Client::call) and
/// [`Client::subscribe`](crate::Client::subscribe). Here the emulator is told not to
/// answer, so the call ends at its own deadline:
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use ggipc::emulator::Fault;
/// use ggipc::model::{PublishToTopicRequest, SubscribeToTopicRequest, SubscriptionResponseMessage};
/// use ggipc::{CallOptions, Error, TimeoutKind};
/// # let emulator = ggipc::emulator::Emulator::start()?;
/// # let client = emulator.connect()?;
///
/// let options = CallOptions::timeout(Duration::from_millis(300));
/// let _sub = client.subscribe_to_topic_with(
///     SubscribeToTopicRequest::new("commands"),
///     |_event: SubscriptionResponseMessage| {},
///     options,
/// )?;
///
/// emulator.faults().inject_for("PublishToTopic", Fault::NoReply);
/// let request = PublishToTopicRequest::json("status", ggipc::serde_json::json!("up"));
/// let error = client.publish_to_topic_with(request, options).unwrap_err();
/// assert!(matches!(error, Error::Timeout(TimeoutKind::Response)));
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallOptions {
    /// Deadline of this call (write and response); `None` = the client's default.
    pub timeout: Option<Duration>,
    /// With reconnect enabled: when the client is disconnected, wait (up to the
    /// deadline) for the reconnect instead of failing at once with
    /// [`Error::Disconnected`]. Default `false`. Either way, a call made while a new
    /// connection re-makes the subscriptions (a short step after it is established)
    /// waits for that, so a handler told `on_stream_resumed` can call at once.
    pub wait_for_reconnect: bool,
}

impl CallOptions {
    /// Options with this call deadline.
    pub fn timeout(timeout: Duration) -> Self {
        CallOptions {
            timeout: Some(timeout),
            ..CallOptions::default()
        }
    }

    /// These options, waiting (or not) for a reconnect while disconnected; see
    /// [`CallOptions::wait_for_reconnect`](CallOptions#structfield.wait_for_reconnect).
    /// A call that waited in vain fails with [`Error::Timeout`]`(`[`Connect`](crate::TimeoutKind::Connect)`)`.
    pub fn wait_for_reconnect(mut self, wait: bool) -> Self {
        self.wait_for_reconnect = wait;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_token() {
        let b = ClientBuilder::new().auth_token("s3cr3t-token");
        assert!(!format!("{b:?}").contains("s3cr3t"));
    }

    #[test]
    fn reply_spin_is_accepted_up_to_its_maximum() {
        let builder = ClientBuilder::new().socket_path("/s").auth_token("t");
        let spin = |d| builder.clone().reply_spin(d).build().map(|c| c.reply_spin);
        assert_eq!(spin(Duration::ZERO).unwrap(), Duration::ZERO);
        assert_eq!(spin(MAX_REPLY_SPIN).unwrap(), MAX_REPLY_SPIN);
        let refused = spin(MAX_REPLY_SPIN + Duration::from_nanos(1));
        assert!(matches!(refused, Err(Error::InvalidArgument(m)) if m.contains("reply_spin")));
        assert_eq!(ClientBuilder::new().reply_spin, DEFAULT_REPLY_SPIN);
    }

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let p = ReconnectPolicy::new()
            .initial_delay(Duration::from_millis(10))
            .max_delay(Duration::from_millis(50));
        let delays: Vec<_> = (0..5).map(|n| p.base_delay(n).as_millis()).collect();
        assert_eq!(delays, [10, 20, 40, 50, 50]);
        assert_eq!(p.base_delay(u32::MAX), Duration::from_millis(50));
    }

    #[test]
    fn token_source_is_asked_first_and_never_debug_printed() {
        let b = ClientBuilder::new()
            .socket_path("x")
            .auth_token_source(|| Some("from-source-s3cr3t".into()));
        assert!(!format!("{b:?}").contains("s3cr3t"));
        let c = b.build().unwrap();
        assert_eq!(c.auth_token, "from-source-s3cr3t");
        assert_eq!(c.current_token(), "from-source-s3cr3t");
    }

    #[test]
    fn explicit_values_need_no_environment() {
        let c = ClientBuilder::new()
            .socket_path("rel/ipc.socket")
            .auth_token("t")
            .build()
            .unwrap();
        assert_eq!(c.socket_path, PathBuf::from("rel/ipc.socket"));
    }

    #[test]
    fn bad_settings_are_invalid_arguments() {
        let b = ClientBuilder::new().socket_path("x").auth_token("t");
        assert!(matches!(
            b.clone().handler_threads(0).build(),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            b.request_timeout(Duration::ZERO).build(),
            Err(Error::InvalidArgument(_))
        ));
    }
}
