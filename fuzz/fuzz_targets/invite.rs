//! Fuzzes the invite and server-address parsers: any text either parses into a value that
//! prints back to an equal value, or is refused with an error; it never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mpcnet_proto::{Invite, ServerAddress};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(invite) = text.parse::<Invite>() {
        let again: Invite = invite.to_string().parse().expect("a printed invite parses");
        assert_eq!(again, invite);
    }
    if let Ok(address) = text.parse::<ServerAddress>() {
        let again: ServerAddress = address.to_string().parse().expect("a printed address parses");
        assert_eq!(again, address);
    }
});
