//! Fuzzes the parsers of the texts a creator lists parties with: a `did:key` and a parties
//! file (`mpcnet create --parties-file`, the web page's list). Any text either parses into
//! seats that print back to lines parsing to the same seats, or is refused with an error; a
//! `did:key` that parses is the one its key prints (one spelling per key); nothing panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mpcnet_proto::PublicKey;
use mpcnet_proto::seats;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(key) = PublicKey::from_did_key(text) {
        assert_eq!(key.did_key(), text, "a did:key with two spellings");
    }
    if let Ok(listed) = seats::parse_list(text) {
        let printed: Vec<String> = listed.iter().map(ToString::to_string).collect();
        let again = seats::parse_list(&printed.join("\n")).expect("printed seats parse");
        assert_eq!(again, listed, "printed seats read back otherwise");
    }
});
