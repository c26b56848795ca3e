//! Fuzzes the parsers of what a peer's agent sends on a link (`mpcnet-agent`'s `wire`): any
//! bytes are either refused with an error or parse into a value that encodes back to exactly
//! those bytes; nothing panics. `wire.rs` depends on `std` only and is included as it is, so
//! this target does not build iroh with the sanitizer.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../crates/mpcnet-agent/src/wire.rs"]
#[allow(dead_code)]
mod wire;

use wire::{FinishedMessage, MpycHeader, StreamKind};

fuzz_target!(|data: &[u8]| {
    if let Ok(header) = MpycHeader::parse(data) {
        assert_eq!(header.to_bytes(), data);
        assert_eq!(header.mpyc_bytes(), data[1..]);
    }
    if let Ok(message) = FinishedMessage::parse(data) {
        assert_eq!(message.to_bytes(), data);
    }
    if let Some(&first) = data.first() {
        if let Ok(kind) = StreamKind::from_byte(first) {
            assert_eq!(kind as u8, first);
        }
    }
    // A header read from the start of a longer stream: the first bytes decide alone.
    if data.len() >= MpycHeader::LEN {
        let header = MpycHeader::parse(&data[..MpycHeader::LEN]);
        assert_eq!(header.is_ok(), data[0] == StreamKind::Mpyc as u8);
    }
});
