//! Streams arbitrary bytes through the frame decoder in input-chosen chunks, as the
//! client's I/O thread does, and decodes every whole-buffer prefix too.
#![no_main]

use ggipc::codec::{FrameDecoder, Limits, Message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::with_max_frame_size(64 * 1024);
    // First byte picks the chunk size, the rest is the stream.
    let Some((&chunk, stream)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let mut decoder = FrameDecoder::new(limits);
    for piece in stream.chunks(chunk) {
        decoder.extend(piece);
        loop {
            match decoder.next_message() {
                Ok(Some(m)) => {
                    // Whatever decodes re-encodes and decodes to the same message.
                    let bytes = m.to_bytes(&Limits::default()).expect("re-encode");
                    assert_eq!(Message::decode(&bytes, &Limits::default()).unwrap(), m);
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
        assert!(decoder.buffered() <= 64 * 1024 + chunk);
    }
    let _ = decoder.finish();
    let _ = Message::decode(stream, &limits);
});
