//! Fuzzes `PUT /v1/lobbies/{id}/endpoints` as the server takes it, and what every agent reads
//! back: the body parses as a `Signed<EndpointAnnouncement>` and goes through `check_statement`
//! against a genuine sealed lobby. Nothing panics; an announcement accepted is signed by the
//! member it names, for this lobby, within bounds, and from outside it is the genuine one.
#![no_main]

mod support;

use libfuzzer_sys::fuzz_target;
use mpcnet_proto::announcement::MAX_ADDRESSES;
use mpcnet_proto::{EndpointAnnouncement, PartyStatement};
use support::StatementSource;

fuzz_target!(|data: &[u8]| {
    let genuine = support::genuine();
    let bob = &genuine.joiners[0];
    let lobby = genuine.sealed.verified();
    let lobby_id = lobby.offer.lobby_id;
    let addrs = vec![
        "192.0.2.7:4000".parse().expect("addr"),
        "[2001:db8::7]:4000".parse().expect("addr"),
    ];
    let genuine_announcement = EndpointAnnouncement::sign(lobby_id, bob, 1, addrs);
    let Some((signed, source)) = support::hostile_statement(data, &genuine_announcement) else {
        return;
    };
    let Ok(announcement) = lobby.check_statement(&signed) else {
        assert!(lobby.members_statements(&[signed]).is_empty());
        return;
    };
    assert_eq!(
        announcement.lobby_id, lobby_id,
        "an announcement for another lobby"
    );
    assert!(
        lobby.party(&announcement.party).is_some(),
        "a stranger's announcement"
    );
    assert!(
        announcement.addrs.len() <= MAX_ADDRESSES,
        "too many addresses"
    );
    assert!(announcement.check().is_ok());
    match source {
        StatementSource::SignedByMember => assert_eq!(announcement.party, bob.public()),
        StatementSource::Outside => assert_eq!(signed.payload(), genuine_announcement.payload()),
    }
    assert_eq!(
        lobby.members_statements(std::slice::from_ref(&signed)),
        vec![announcement.clone()]
    );
    let _ = announcement.supersedes(&genuine_announcement.decode_unverified().expect("genuine"));
});
