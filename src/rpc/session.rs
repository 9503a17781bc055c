//! The per-stream protocol state of one connection. Pure: no I/O, no locks, no threads.
//!
//! [`Session`] knows which streams are open and what each is waiting for. The I/O thread
//! feeds it every stream message ([`Session::receive`]) and performs the [`Action`] it
//! returns; when the connection ends, [`Session::close`] says what becomes of every
//! stream ([`Ending`]). The caller waiting for a reply (`C`) and the subscription's event
//! queue (`Q`) are opaque handles here, so every routing rule is tested on messages
//! alone (see the tests at the end). The rules:
//!
//! 1. **The first reply is final.** The first message on a stream goes to the caller
//!    that opened it, whatever its type and flags (nucleus lite answers a call without
//!    TERMINATE); for a request/response call the stream is then forgotten.
//! 2. **Nothing precedes the response.** On a subscription the first message is the
//!    response even when it looks like an event (the caller rejects a wrong model type);
//!    later messages are events for the queue. The queue holds them until the caller has
//!    accepted the response (see `Client::subscribe`), so a failed subscribe never runs
//!    its handler whatever the order of the frames.
//! 3. **TERMINATE ends a stream**: a bare TERMINATE is a quiet close, one with a model
//!    type is a last event, then the close. The client never answers it.
//! 4. **APPLICATION_ERROR** on an open subscription: with TERMINATE it ends the stream
//!    with that error; without, the stream stays open and the handler decides.
//! 5. **Unknown streams**: a message on an id the client never opened (above the
//!    highest id opened, or negative) is a protocol error that closes the connection; a
//!    late message on a stream that was opened and is closed now (timed out, ended by
//!    either side) is discarded.
//! 6. **Closing the connection** hands every caller still waiting back (it fails with
//!    the close reason) and, for every open subscription, chooses: *interrupt* it when
//!    the client reconnects and the user did not close, else *finish* it (with the close
//!    as its error unless the user closed).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::{MessageType, ProtocolError, RpcMessage};

/// What a new stream is opened for.
#[derive(Debug)]
pub(crate) enum Opened<C, Q> {
    /// A request/response call; `C` receives the reply.
    Call(C),
    /// A subscription: `C` receives the initial response, `Q` every later message.
    Subscription(C, Q),
}

#[derive(Debug)]
enum Stream<C, Q> {
    /// A request/response call waiting for its reply.
    Call(C),
    /// A subscription waiting for its initial response.
    Subscribing(C, Q),
    /// A subscription past its initial response.
    Open(Q),
}

/// What to do with one received stream message.
#[derive(Debug)]
pub(crate) enum Action<C, Q> {
    /// Hand the first reply to the caller waiting for it (it decides: response or error).
    Reply(C, RpcMessage),
    /// Queue an event for the subscription's handler.
    Event(Q, RpcMessage),
    /// An APPLICATION_ERROR without TERMINATE on an open subscription: the handler's error
    /// callback decides whether to close.
    Error(Q, RpcMessage),
    /// The server ended the subscription: `last_event` (a TERMINATE with a model type) is
    /// delivered, then `error` (an APPLICATION_ERROR with TERMINATE) if any, then the close.
    End {
        /// The queue of the subscription that ends.
        queue: Q,
        /// An event carried by the TERMINATE message itself.
        last_event: Option<RpcMessage>,
        /// The error the server ended the stream with.
        error: Option<RpcMessage>,
    },
    /// A late message on a stream that is closed now: dropped.
    Discard,
}

/// What becomes of one stream when the connection ends.
#[derive(Debug)]
pub(crate) enum Ending<C, Q> {
    /// A caller still waiting for its first reply: it learns that the connection closed.
    Caller(C),
    /// An open subscription to resume on a new connection: tell its handler.
    Interrupt(Q),
    /// An open subscription that ends; `with_error` unless the user closed the client.
    Finish {
        /// The subscription's queue.
        queue: Q,
        /// Whether the close is reported to the handler as an error.
        with_error: bool,
    },
}

/// A stream whose caller gave up before its first reply (its deadline passed).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Unanswered {
    /// A request/response call: nothing more to do.
    Call,
    /// A subscription: the server may consider it open, so the client ends it.
    Subscription,
}

/// The open streams of one connection.
#[derive(Debug)]
pub(crate) struct Session<C, Q> {
    streams: HashMap<i32, Stream<C, Q>, BuildHasherDefault<StreamIdHasher>>,
    /// The highest stream id ever opened: a message on a higher id is a protocol error.
    highest: i32,
}

impl<C, Q> Default for Session<C, Q> {
    fn default() -> Self {
        Session {
            streams: HashMap::default(),
            highest: 0,
        }
    }
}

/// The hash of the session's keys: stream ids that this client allocated itself, in
/// order (a peer only looks ids up), so a multiplication by an odd constant spreads them
/// well, at a fraction of the cost of the default keyed hasher (which guards tables whose
/// keys a peer chooses).
#[derive(Default)]
pub(crate) struct StreamIdHasher(u64);

/// 2^64 divided by the golden ratio, rounded to odd (Knuth's multiplicative hashing).
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

impl Hasher for StreamIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(byte)).wrapping_mul(GOLDEN);
        }
    }

    fn write_i32(&mut self, id: i32) {
        self.0 = (self.0 ^ u64::from(id as u32)).wrapping_mul(GOLDEN);
    }
}

impl<C, Q: Clone> Session<C, Q> {
    /// Records stream `id` (≥ 1, increasing) as opened for `opened`.
    pub(crate) fn open(&mut self, id: i32, opened: Opened<C, Q>) {
        let stream = match opened {
            Opened::Call(caller) => Stream::Call(caller),
            Opened::Subscription(caller, queue) => Stream::Subscribing(caller, queue),
        };
        self.streams.insert(id, stream);
        self.highest = self.highest.max(id);
    }

    /// Forgets stream `id` whose first message never reached the wire.
    pub(crate) fn forget(&mut self, id: i32) {
        self.streams.remove(&id);
    }

    /// Takes back stream `id`, whose first message did not reach the wire, with what it
    /// was opened for (to open it again under another id). `None` when it is not waiting
    /// for its first reply.
    pub(crate) fn withdraw(&mut self, id: i32) -> Option<Opened<C, Q>> {
        match self.streams.remove(&id)? {
            Stream::Call(caller) => Some(Opened::Call(caller)),
            Stream::Subscribing(caller, queue) => Some(Opened::Subscription(caller, queue)),
            open @ Stream::Open(_) => {
                self.streams.insert(id, open);
                None
            }
        }
    }

    /// The caller of stream `id` gave up waiting for its first reply: forgets the stream
    /// if that reply has not come. `None` when it has (the caller should take it).
    pub(crate) fn give_up(&mut self, id: i32) -> Option<Unanswered> {
        match self.streams.get(&id)? {
            Stream::Call(_) => {
                self.streams.remove(&id);
                Some(Unanswered::Call)
            }
            Stream::Subscribing(..) => {
                self.streams.remove(&id);
                Some(Unanswered::Subscription)
            }
            Stream::Open(_) => None,
        }
    }

    /// The client ends stream `id`. Returns whether it was open, i.e. whether the server
    /// still expects a TERMINATE from the client.
    pub(crate) fn end(&mut self, id: i32) -> bool {
        self.streams.remove(&id).is_some()
    }

    /// How many streams are open.
    pub(crate) fn len(&self) -> usize {
        self.streams.len()
    }

    /// Routes one APPLICATION_MESSAGE or APPLICATION_ERROR received on stream `id ≥ 1`.
    ///
    /// # Errors
    /// [`ProtocolError::UnknownStream`] for a stream the client never opened.
    pub(crate) fn receive(&mut self, message: RpcMessage) -> Result<Action<C, Q>, ProtocolError> {
        let id = message.stream_id;
        let terminate = message.is_terminate();
        let error = message.message_type == MessageType::ApplicationError;
        match self.streams.get(&id) {
            None if id > self.highest || id < 1 => {
                return Err(ProtocolError::UnknownStream { stream_id: id })
            }
            None => return Ok(Action::Discard),
            // The common case, without touching the map: an event on an open stream.
            Some(Stream::Open(queue)) if !terminate && !error => {
                return Ok(Action::Event(queue.clone(), message))
            }
            // Rule 4: an error the server did not end the stream with.
            Some(Stream::Open(queue)) if !terminate => {
                return Ok(Action::Error(queue.clone(), message))
            }
            Some(_) => {}
        }
        let Some(stream) = self.streams.remove(&id) else {
            return Ok(Action::Discard);
        };
        Ok(match stream {
            // Rule 1: the call is complete, whatever the reply's flags.
            Stream::Call(caller) => Action::Reply(caller, message),
            // Rules 1 and 2: the response. Without TERMINATE (even an error) the stream
            // stays open on the server, so it stays known until the caller ends it.
            Stream::Subscribing(caller, queue) => {
                if !terminate {
                    self.streams.insert(id, Stream::Open(queue));
                }
                Action::Reply(caller, message)
            }
            // Rule 4, with TERMINATE.
            Stream::Open(queue) if error => Action::End {
                queue,
                last_event: None,
                error: Some(message),
            },
            // Rule 3.
            Stream::Open(queue) => Action::End {
                queue,
                last_event: message.model_type.is_some().then_some(message),
                error: None,
            },
        })
    }

    /// The connection ended: every stream is forgotten and its [`Ending`] returned (rule
    /// 6). `resumable`: the client reconnects; `by_user`: the user closed the client.
    pub(crate) fn close(&mut self, resumable: bool, by_user: bool) -> Vec<Ending<C, Q>> {
        self.streams
            .drain()
            .map(|(_, stream)| match stream {
                Stream::Call(caller) | Stream::Subscribing(caller, _) => Ending::Caller(caller),
                Stream::Open(queue) if resumable && !by_user => Ending::Interrupt(queue),
                Stream::Open(queue) => Ending::Finish {
                    queue,
                    with_error: !by_user,
                },
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::FLAG_TERMINATE_STREAM;

    /// Callers and queues are plain labels here.
    type S = Session<&'static str, &'static str>;

    #[test]
    fn stream_ids_hash_apart_and_spread_over_the_tags() {
        use std::hash::Hash;
        let hash = |id: i32| {
            let mut hasher = StreamIdHasher::default();
            id.hash(&mut hasher);
            hasher.finish()
        };
        let hashes: std::collections::HashSet<u64> = (1..=10_000).map(hash).collect();
        assert_eq!(hashes.len(), 10_000);
        // hashbrown keeps the top 7 bits of a hash as the key's tag, the low bits as its
        // bucket: consecutive ids must differ in both.
        let tags: std::collections::HashSet<u64> = (1..=1_000).map(|id| hash(id) >> 57).collect();
        assert!(tags.len() > 100, "{} tags", tags.len());
        let buckets: std::collections::HashSet<u64> = (1..=64).map(|id| hash(id) & 63).collect();
        assert_eq!(buckets.len(), 64);
        let bytes = |b: &[u8]| {
            let mut hasher = StreamIdHasher::default();
            hasher.write(b);
            hasher.finish()
        };
        assert_ne!(bytes(&[1, 2]), bytes(&[2, 1]));
        assert_ne!(bytes(&[1]), bytes(&[1, 0]));
    }

    const RESPONSE: &str = "aws.greengrass#SubscribeToTopicResponse";
    const EVENT: &str = "aws.greengrass#SubscriptionResponseMessage";

    fn message(id: i32, model_type: Option<&'static str>) -> RpcMessage {
        RpcMessage::json(
            MessageType::ApplicationMessage,
            0,
            id,
            model_type,
            &b"{}"[..],
        )
    }

    fn terminate(mut m: RpcMessage) -> RpcMessage {
        m.flags |= FLAG_TERMINATE_STREAM;
        m
    }

    fn error(id: i32) -> RpcMessage {
        let mut m = message(id, Some("aws.greengrass#ServiceError"));
        m.message_type = MessageType::ApplicationError;
        m
    }

    /// A session with subscription 1 open (its response received) on queue "q".
    fn open_subscription() -> S {
        let mut s = S::default();
        s.open(1, Opened::Subscription("caller", "q"));
        assert!(matches!(
            s.receive(message(1, Some(RESPONSE))),
            Ok(Action::Reply("caller", _))
        ));
        s
    }

    #[test]
    fn the_first_reply_of_a_call_is_final_whatever_its_flags() {
        let mut s = S::default();
        s.open(1, Opened::Call("a"));
        s.open(2, Opened::Call("b"));
        // Without TERMINATE (nucleus lite) ...
        assert!(matches!(
            s.receive(message(1, Some("x"))),
            Ok(Action::Reply("a", _))
        ));
        // ... or with it: the call completes either way, and the stream is forgotten.
        assert!(matches!(
            s.receive(terminate(message(2, Some("x")))),
            Ok(Action::Reply("b", _))
        ));
        assert_eq!(s.len(), 0);
        // A second reply is late: discarded.
        assert!(matches!(s.receive(message(1, None)), Ok(Action::Discard)));
    }

    #[test]
    fn an_error_as_first_reply_goes_to_the_caller() {
        let mut s = S::default();
        s.open(1, Opened::Call("a"));
        assert!(matches!(s.receive(error(1)), Ok(Action::Reply("a", m))
            if m.message_type == MessageType::ApplicationError));
        s.open(2, Opened::Subscription("b", "q"));
        assert!(matches!(s.receive(error(2)), Ok(Action::Reply("b", _))));
        // Without TERMINATE the server keeps the stream: it stays known until the caller
        // ends it (then the client owes a TERMINATE).
        assert!(s.end(2));
        assert!(!s.end(2));
    }

    #[test]
    fn nothing_precedes_the_response_an_early_event_is_the_reply() {
        let mut s = S::default();
        s.open(1, Opened::Subscription("caller", "q"));
        // The first message looks like an event: it is still the response (the caller
        // rejects its model type).
        assert!(matches!(
            s.receive(message(1, Some(EVENT))),
            Ok(Action::Reply("caller", m)) if m.model_type.as_deref() == Some(EVENT)
        ));
        // Later messages, even a "response", are events for the queue (which holds them
        // until the caller accepts the subscription, or drops them when it does not).
        assert!(matches!(
            s.receive(message(1, Some(RESPONSE))),
            Ok(Action::Event("q", _))
        ));
        assert!(matches!(
            s.receive(message(1, Some(EVENT))),
            Ok(Action::Event("q", _))
        ));
    }

    #[test]
    fn a_response_with_terminate_ends_the_subscription_at_once() {
        let mut s = S::default();
        s.open(1, Opened::Subscription("caller", "q"));
        assert!(matches!(
            s.receive(terminate(message(1, Some(RESPONSE)))),
            Ok(Action::Reply("caller", m)) if m.is_terminate()
        ));
        assert_eq!(s.len(), 0);
        assert!(matches!(
            s.receive(message(1, Some(EVENT))),
            Ok(Action::Discard)
        ));
        assert!(!s.end(1), "no TERMINATE owed to a stream the server ended");
    }

    #[test]
    fn events_flow_until_a_bare_terminate_ends_the_stream_quietly() {
        let mut s = open_subscription();
        for _ in 0..3 {
            assert!(matches!(
                s.receive(message(1, Some(EVENT))),
                Ok(Action::Event("q", _))
            ));
        }
        assert!(matches!(
            s.receive(terminate(message(1, None))),
            Ok(Action::End {
                queue: "q",
                last_event: None,
                error: None
            })
        ));
        assert_eq!(s.len(), 0);
        // Late messages on the closed stream are discarded, not errors.
        assert!(matches!(
            s.receive(message(1, Some(EVENT))),
            Ok(Action::Discard)
        ));
    }

    #[test]
    fn a_terminate_with_a_model_type_is_a_last_event() {
        let mut s = open_subscription();
        assert!(matches!(
            s.receive(terminate(message(1, Some(EVENT)))),
            Ok(Action::End {
                queue: "q",
                last_event: Some(_),
                error: None
            })
        ));
    }

    #[test]
    fn an_application_error_without_terminate_leaves_the_subscription_open() {
        let mut s = open_subscription();
        assert!(matches!(s.receive(error(1)), Ok(Action::Error("q", _))));
        assert_eq!(s.len(), 1);
        assert!(matches!(
            s.receive(message(1, Some(EVENT))),
            Ok(Action::Event("q", _))
        ));
    }

    #[test]
    fn an_application_error_with_terminate_ends_the_subscription_with_it() {
        let mut s = open_subscription();
        assert!(matches!(
            s.receive(terminate(error(1))),
            Ok(Action::End {
                queue: "q",
                last_event: None,
                error: Some(_)
            })
        ));
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn a_stream_never_opened_is_a_protocol_error_and_a_closed_one_is_discarded() {
        let mut s = S::default();
        assert_eq!(
            s.receive(message(1, None)).err(),
            Some(ProtocolError::UnknownStream { stream_id: 1 })
        );
        s.open(1, Opened::Call("a"));
        s.open(2, Opened::Call("b"));
        assert_eq!(
            s.receive(message(3, None)).err(),
            Some(ProtocolError::UnknownStream { stream_id: 3 })
        );
        assert_eq!(
            s.receive(message(-4, None)).err(),
            Some(ProtocolError::UnknownStream { stream_id: -4 })
        );
        // Stream 1 times out: its late reply is discarded, stream 2 is unaffected.
        assert_eq!(s.give_up(1), Some(Unanswered::Call));
        assert!(matches!(s.receive(message(1, None)), Ok(Action::Discard)));
        assert!(matches!(
            s.receive(message(2, None)),
            Ok(Action::Reply("b", _))
        ));
    }

    #[test]
    fn giving_up_on_an_unanswered_subscription_asks_for_its_end() {
        let mut s = S::default();
        s.open(1, Opened::Subscription("caller", "q"));
        assert_eq!(s.give_up(1), Some(Unanswered::Subscription));
        assert_eq!(s.give_up(1), None);
        // Answered just before the deadline: the caller takes the reply instead.
        let mut s = open_subscription();
        assert_eq!(s.give_up(1), None);
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn a_stream_whose_request_was_never_written_is_forgotten() {
        let mut s = S::default();
        s.open(1, Opened::Call("a"));
        s.forget(1);
        assert_eq!(s.len(), 0);
        assert!(matches!(s.receive(message(1, None)), Ok(Action::Discard)));
    }

    #[test]
    fn a_stream_withdrawn_before_its_request_went_out_comes_back_as_opened() {
        let mut s = S::default();
        s.open(1, Opened::Call("a"));
        s.open(2, Opened::Subscription("b", "q"));
        assert!(matches!(
            s.withdraw(2),
            Some(Opened::Subscription("b", "q"))
        ));
        assert!(matches!(s.withdraw(1), Some(Opened::Call("a"))));
        assert_eq!(s.len(), 0);
        assert!(s.withdraw(1).is_none());
        // Reopened under the same id, it routes as before.
        s.open(1, Opened::Call("c"));
        assert!(matches!(
            s.receive(message(1, None)),
            Ok(Action::Reply("c", _))
        ));
        // A subscription past its response is not waiting: it stays.
        let mut s = open_subscription();
        assert!(s.withdraw(1).is_none());
        assert_eq!(s.len(), 1);
    }

    fn endings(resumable: bool, by_user: bool) -> Vec<String> {
        let mut s = open_subscription();
        s.open(2, Opened::Call("call"));
        s.open(3, Opened::Subscription("subscriber", "q3"));
        let mut out: Vec<String> = s
            .close(resumable, by_user)
            .into_iter()
            .map(|e| match e {
                Ending::Caller(c) => format!("caller {c}"),
                Ending::Interrupt(q) => format!("interrupt {q}"),
                Ending::Finish { queue, with_error } => format!("finish {queue} {with_error}"),
            })
            .collect();
        out.sort();
        assert_eq!(s.len(), 0);
        out
    }

    #[test]
    fn closing_hands_back_waiting_callers_and_finishes_or_interrupts_subscriptions() {
        // A lost connection without reconnect: subscriptions end with the error.
        assert_eq!(
            endings(false, false),
            ["caller call", "caller subscriber", "finish q true"]
        );
        // Closed by the user: they end quietly, reconnect or not.
        assert_eq!(
            endings(false, true),
            ["caller call", "caller subscriber", "finish q false"]
        );
        assert_eq!(
            endings(true, true),
            ["caller call", "caller subscriber", "finish q false"]
        );
        // Lost with reconnect: interrupted, to be resumed.
        assert_eq!(
            endings(true, false),
            ["caller call", "caller subscriber", "interrupt q"]
        );
    }
}
