//! Fuzzes the parsers of what a peer's agent sends on a link (`mpcnet-agent`'s `wire`): any
//! bytes are either refused with an error or parse into a value that encodes back to exactly
//! those bytes; nothing panics. `wire.rs` depends on `std` only and is included as it is, so
//! this target does not build iroh with the sanitizer.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../crates/mpcnet-agent/src/wire.rs"]
#[allow(dead_code)]
mod wire;

use wire::{ControlMessage, FinishedMessage, StreamAnswer, StreamKind, StreamOpening};

fuzz_target!(|data: &[u8]| {
    if let Ok(opening) = StreamOpening::parse(data) {
        assert_eq!(opening.to_bytes(), data);
    }
    if let Ok(answer) = StreamAnswer::parse(data) {
        assert_eq!(answer.to_bytes(), data);
    }
    if let Ok(message) = ControlMessage::parse(data) {
        assert_eq!(message.to_bytes(), data);
    }
    if let Ok(message) = FinishedMessage::parse(data) {
        assert_eq!(message.to_bytes(), data);
    }
    if let Some(&first) = data.first() {
        if let Ok(kind) = StreamKind::from_byte(first) {
            assert_eq!(kind as u8, first);
        }
    }
    // An opening read from the start of a longer stream: the first bytes decide alone.
    if data.len() >= StreamOpening::LEN {
        let opening = StreamOpening::parse(&data[..StreamOpening::LEN]);
        let flag_ok = data[StreamOpening::LEN - 1] <= 1;
        assert_eq!(opening.is_ok(), data[0] == StreamKind::Mpyc as u8 && flag_ok);
    }
});
