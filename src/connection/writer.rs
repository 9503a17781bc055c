//! The write path: whole frames, with a deadline. The [`Writer`] is owned by one thread
//! at a time, the one holding the write role of the connection's outbox (see
//! [`super::outbox`]).

use std::io::{self, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use bytes::BytesMut;

use crate::codec::Limits;
use crate::error::{CloseReason, Error, TimeoutKind};
use crate::rpc::RpcMessage;

/// The writing half of the socket and the stream-id counter. Whoever holds it allocates
/// ids and writes the frames carrying them, in the same order, so ids reach the wire
/// strictly increasing.
pub(crate) struct Writer {
    socket: UnixStream,
    buf: BytesMut,
    limits: Limits,
    timeout: WriteTimeout,
    /// The id the next new stream gets.
    pub(crate) next_stream_id: i32,
    /// Set once a write failed part-way: the byte stream can no longer be trusted.
    pub(crate) broken: bool,
    /// How many `write` calls put bytes on the wire (for the tests).
    #[cfg(test)]
    pub(crate) writes: usize,
}

impl Writer {
    pub(crate) fn new(socket: UnixStream, limits: Limits) -> Self {
        Writer {
            socket,
            buf: BytesMut::with_capacity(4096),
            limits,
            timeout: WriteTimeout::default(),
            next_stream_id: 1,
            broken: false,
            #[cfg(test)]
            writes: 0,
        }
    }

    /// Empties the write buffer.
    pub(crate) fn clear(&mut self) {
        self.buf.clear();
    }

    /// Encodes `message` after what the write buffer holds (nothing is sent yet). On an
    /// error the buffer is as it was.
    pub(crate) fn append(&mut self, message: &RpcMessage) -> Result<(), Error> {
        let len = self.buf.len();
        message.encode(&self.limits, &mut self.buf).map_err(|e| {
            self.buf.truncate(len);
            Error::from(e)
        })
    }

    /// Writes the whole buffer before `deadline`. A failure after part of it went out
    /// leaves the writer broken and the caller must close the connection; a timeout
    /// before any byte went out does not (`broken` stays false).
    pub(crate) fn flush(&mut self, deadline: Instant) -> Result<(), WriteError> {
        let mut written = 0;
        while written < self.buf.len() {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                self.broken = written > 0;
                return Err(WriteError::Timeout);
            }
            let armed = self.timeout.arm(&self.socket, remaining);
            armed.map_err(|e| self.fail(e))?;
            match self.socket.write(&self.buf[written..]) {
                Ok(0) => return Err(self.fail(io::ErrorKind::WriteZero.into())),
                Ok(n) => {
                    written += n;
                    #[cfg(test)]
                    {
                        self.writes += 1;
                    }
                }
                // (Guard → `false` not killed: no test can interrupt a write with a signal.)
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(self.fail(e)),
            }
        }
        Ok(())
    }

    /// The socket failed: the byte stream can no longer be trusted.
    fn fail(&mut self, e: io::Error) -> WriteError {
        self.broken = true;
        WriteError::Io(e)
    }

    /// Encodes and writes one message (the control frames of `Connection::send_control`:
    /// TERMINATE, PING_RESPONSE, PROTOCOL_ERROR).
    pub(crate) fn send(
        &mut self,
        message: &RpcMessage,
        deadline: Instant,
    ) -> Result<(), WriteError> {
        self.clear();
        self.append(message).map_err(WriteError::Encode)?;
        self.flush(deadline)
    }
}

/// How far a socket's write timeout may lag behind the time left before it is set again.
/// Keeps `setsockopt` off the hot path; a blocked write overshoots its deadline by at most
/// this much.
const TIMEOUT_SLACK: Duration = Duration::from_millis(50);

/// A socket's write timeout as this side last set it, so that a write with about as much
/// time left as the last one does not set it again (one `setsockopt` saved per write).
/// Shared by the client's writer and the emulator's (`emulator/conn/outbound.rs`).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct WriteTimeout(Option<Duration>);

impl WriteTimeout {
    /// Sets `socket`'s write timeout to `remaining` (non-zero) unless the one set is
    /// within [`TIMEOUT_SLACK`] above it and not under half of it.
    // The second clause only saves `setsockopt` calls: a timeout armed shorter than the
    // time left makes the write wake and re-arm, with the same outcome for the caller. The
    // test below pins when it sets, through the socket's timeout.
    pub(crate) fn arm(&mut self, socket: &UnixStream, remaining: Duration) -> io::Result<()> {
        let stale = match self.0 {
            None => true,
            Some(t) => t > remaining + TIMEOUT_SLACK || t < remaining / 2,
        };
        if stale {
            // A zero duration is rejected by the OS; callers pass a non-zero `remaining`.
            socket.set_write_timeout(Some(remaining))?;
            self.0 = Some(remaining);
        }
        Ok(())
    }
}

/// A failed write.
#[derive(Debug)]
pub(crate) enum WriteError {
    /// The frame could not be encoded; nothing was written.
    Encode(Error),
    /// The deadline passed (`Writer::broken` says whether part of the frame went out).
    Timeout,
    /// The socket failed.
    Io(io::Error),
}

impl WriteError {
    /// Why the connection closes when this failure left the writer broken (the one
    /// mapping from write failures to close reasons).
    pub(crate) fn close_reason(&self) -> CloseReason {
        match self {
            WriteError::Io(e) => CloseReason::from_io(e),
            // Encoding writes nothing, so it never breaks the writer; a timeout does.
            WriteError::Timeout | WriteError::Encode(_) => CloseReason::WriteTimeout,
        }
    }

    /// The error of every caller whose frame was in a failed group write; `closed` is the
    /// connection's close reason (a socket error always broke the writer and closed it).
    pub(crate) fn group_error(&self, closed: &CloseReason) -> Error {
        match self {
            WriteError::Timeout => Error::Timeout(TimeoutKind::Write),
            WriteError::Encode(e) => e.clone(),
            WriteError::Io(_) => Error::Closed(closed.clone()),
        }
    }

    /// The caller's error; `closed` is the connection's close reason, if it is closed.
    pub(crate) fn into_error(self, closed: Option<CloseReason>) -> Error {
        match self {
            WriteError::Encode(e) => e,
            WriteError::Timeout => Error::Timeout(TimeoutKind::Write),
            WriteError::Io(e) => match closed {
                Some(reason) => Error::Closed(reason),
                None => Error::from(e),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_timeout_is_set_again_only_when_the_time_left_moved_away_from_it() {
        let (a, _b) = UnixStream::pair().unwrap();
        let mut timeout = WriteTimeout::default();
        // Whether `arm(remaining)` set the socket's timeout: a marker set behind its back
        // is still there when it did not.
        let ms = Duration::from_millis;
        let sets = |timeout: &mut WriteTimeout, remaining: Duration| {
            let marker = Duration::from_secs(77);
            a.set_write_timeout(Some(marker)).unwrap();
            timeout.arm(&a, remaining).unwrap();
            // (The kernel keeps a timeout in clock ticks: it reads back rounded up.)
            let now = a.write_timeout().unwrap().unwrap();
            let set = now != marker;
            assert!(
                !set || now.abs_diff(remaining) < ms(20),
                "{now:?} for {remaining:?}"
            );
            set
        };
        assert!(sets(&mut timeout, ms(5_000)), "the first arm sets");
        // As much time left, or a little less (within the slack): not set again.
        assert!(!sets(&mut timeout, ms(5_000)));
        assert!(!sets(&mut timeout, ms(4_990)));
        assert!(!sets(&mut timeout, ms(5_000) - TIMEOUT_SLACK));
        // Less time left than the one set, beyond the slack: set.
        assert!(sets(&mut timeout, ms(1_000)));
        // More time left, up to twice the one set: not set (a blocked write wakes early
        // and arms again); beyond that, set.
        assert!(!sets(&mut timeout, ms(1_500)));
        assert!(!sets(&mut timeout, ms(2_000)));
        assert!(sets(&mut timeout, ms(2_001)));
    }
}
