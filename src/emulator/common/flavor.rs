//! Which nucleus the emulator behaves like.

use crate::codec::Limits;

/// Which nucleus the emulator behaves like.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Flavor {
    /// The Java Greengrass nucleus (the default).
    #[default]
    Nucleus,
    /// Greengrass nucleus lite 2.6.0: frames of at most 10,012 bytes in (10,000 after the
    /// prelude) and 10,000 out, no TERMINATE on responses, `_message`/`_errorCode` error
    /// bodies, a refused connect closes without an ack, a PING closes the connection,
    /// `receiveMode` ignored, `+`/`#` accepted in a PublishToTopic topic, a stale
    /// UpdateConfiguration timestamp answered with success (the value kept), 16-character
    /// base64 SVCUIDs, and only the operations in [`LITE_OPERATIONS`](crate::emulator::LITE_OPERATIONS).
    Lite,
}

impl Flavor {
    /// The frame limits this flavour enforces on the frames it sends.
    pub fn limits(self) -> Limits {
        match self {
            Flavor::Nucleus => Limits::default(),
            Flavor::Lite => Limits::with_max_frame_size(10_000),
        }
    }

    /// The frame limits this flavour enforces on the frames it receives. Nucleus lite reads
    /// the 12-byte prelude, then the rest of the frame into its 10,000-byte IPC buffer, so
    /// it accepts a whole frame of up to 10,012 bytes (`ipc_server.c:461-481` and
    /// `GGL_IPC_MAX_MSG_LEN` in `ipc_server.h:13-15`, aws-greengrass-lite tag v2.6.0),
    /// while its responses fit in a 10,000-byte buffer (`ipc_server.c:47`).
    pub fn inbound_limits(self) -> Limits {
        match self {
            Flavor::Nucleus => Limits::default(),
            Flavor::Lite => Limits::with_max_frame_size(10_000 + 12),
        }
    }
}
