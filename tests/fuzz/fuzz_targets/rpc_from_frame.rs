//! Decodes arbitrary bytes as one frame (CRCs resealed so that the RPC layer is reached)
//! and lifts it into an RPC message.
#![no_main]

use ggipc::codec::{self, FrameDecoder, Limits};
use ggipc::rpc::{error_payload_text, RpcMessage};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut bytes = data.to_vec();
    if bytes.len() >= 16 {
        // Make the lengths describe this buffer most of the time, then fix the CRCs.
        if bytes[0] & 1 == 0 {
            let total = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
            bytes[..4].copy_from_slice(&total.to_be_bytes());
        }
        codec::reseal(&mut bytes);
    }
    let mut decoder = FrameDecoder::new(Limits::with_max_frame_size(64 * 1024));
    decoder.extend(&bytes);
    while let Ok(Some(frame)) = decoder.next_message() {
        if let Ok(m) = RpcMessage::from_frame(frame) {
            let _ = m.to_frame().to_bytes(&Limits::default());
            let _ = error_payload_text(&m.payload);
        }
    }
});
