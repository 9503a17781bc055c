//! Following the component's configuration as a typed value: `SubscribeToConfigurationUpdate`
//! and `GetConfiguration` composed, so that a component's settings reach it as a `T`, now
//! and after every change.

use std::marker::PhantomData;
use std::sync::Arc;

use parking_lot::Mutex;
use serde::de::DeserializeOwned;

use crate::error::Result;
use crate::model::{
    ConfigurationUpdateEvents, GetConfigurationRequest, SubscribeToConfigurationUpdateRequest,
};
use crate::subscription::{HandlerReturn, StreamHandler, Subscription};
use crate::Client;

/// What one delivery needs: the reading client, the request, the user's handler.
struct Follow<T, F> {
    client: Client,
    request: GetConfigurationRequest,
    handler: F,
    value: PhantomData<fn() -> T>,
}

impl<T, F, R> Follow<T, F>
where
    T: DeserializeOwned,
    F: FnMut(T) -> R,
    R: HandlerReturn,
{
    /// Reads the value now and hands it to the handler. Reading and handing over happen
    /// under one lock (the caller's), so the value handed over last is the one read last.
    fn deliver(&mut self) -> Result<()> {
        let value = self
            .client
            .get_configuration(self.request.clone())?
            .value_as::<T>()?;
        (self.handler)(value).report();
        Ok(())
    }
}

/// The update subscription's handler: every event, and every resumption after a
/// reconnect (changes made while the connection was down sent no event), is a new read.
struct OnUpdate<T, F>(Arc<Mutex<Follow<T, F>>>);

impl<T, F, R> StreamHandler<ConfigurationUpdateEvents> for OnUpdate<T, F>
where
    T: DeserializeOwned + 'static,
    F: FnMut(T) -> R + Send + 'static,
    R: HandlerReturn,
{
    fn on_stream_event(&mut self, _: ConfigurationUpdateEvents) {
        self.0.lock().deliver().report();
    }

    fn on_stream_resumed(&mut self) {
        log::info!("configuration follower resumed: reading the value again");
        self.0.lock().deliver().report();
    }
}

impl Client {
    /// Calls `handler` with the component's configuration at `key_path` read as a `T`:
    /// once before returning, then again after every change under `key_path`, until the
    /// returned [`Subscription`] is dropped or closed.
    ///
    /// The update subscription is made first and the value read after it, so no change is
    /// missed between the two; each delivery reads the whole value again (the update
    /// events only name what changed), so when changes come close together the handler
    /// may see the latest value more than once and not every value in between. Deliveries never overlap and the last one carries
    /// the value read last. The first runs on the calling thread; later ones on the
    /// handler pool, like any subscription's handler, so `handler` may call the client.
    /// With [`ClientBuilder::reconnect`](crate::ClientBuilder::reconnect), a resumed
    /// subscription reads the value again (a change made while the connection was down
    /// sent no event).
    /// A later value that is not a `T`, or a failed read, is reported as a handler's
    /// error is ([`HandlerReturn`]: the `log` logger, else stderr), and the subscription
    /// goes on.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// use ggipc::model::{Timestamp, UpdateConfigurationRequest};
    ///
    /// #[derive(serde::Deserialize)]
    /// struct Settings {
    ///     interval_ms: u64,
    /// }
    /// # let emulator = ggipc::emulator::Emulator::start()?;
    /// # let client = emulator.connect()?;
    /// # let value = ggipc::serde_json::json!({"settings": {"interval_ms": 500}});
    /// # client.update_configuration(UpdateConfigurationRequest::new(Timestamp::now(), value))?;
    /// let (tx, rx) = crossbeam_channel::unbounded();
    /// let _settings = client.follow_configuration(["settings"], move |settings: Settings| {
    ///     tx.send(settings.interval_ms).ok();
    /// })?;
    /// assert_eq!(rx.try_recv()?, 500); // delivered before follow_configuration returned
    ///
    /// let change = ggipc::serde_json::json!({"interval_ms": 250});
    /// let update = UpdateConfigurationRequest::new(Timestamp::now(), change).with_key_path(["settings"]);
    /// client.update_configuration(update)?;
    /// assert_eq!(rx.recv_timeout(Duration::from_secs(5))?, 250);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// Any failure of [`Client::subscribe_to_configuration_update`] or of the first
    /// [`Client::get_configuration`], and [`Error::Json`](crate::Error::Json) (naming `T`)
    /// when the value is not a `T` now; the subscription is then closed.
    pub fn follow_configuration<T, F, R>(
        &self,
        key_path: impl IntoIterator<Item = impl Into<String>>,
        handler: F,
    ) -> Result<Subscription>
    where
        T: DeserializeOwned + 'static,
        F: FnMut(T) -> R + Send + 'static,
        R: HandlerReturn,
    {
        let key_path: Vec<String> = key_path.into_iter().map(Into::into).collect();
        let follow = Arc::new(Mutex::new(Follow {
            client: self.clone(),
            request: GetConfigurationRequest::new(key_path.clone()),
            handler,
            value: PhantomData,
        }));
        let subscription = self.subscribe_to_configuration_update(
            SubscribeToConfigurationUpdateRequest::new(key_path),
            OnUpdate(Arc::clone(&follow)),
        )?;
        follow.lock().deliver()?;
        Ok(subscription)
    }
}
