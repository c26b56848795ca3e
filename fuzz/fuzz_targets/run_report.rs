//! Fuzzes `PUT /v1/lobbies/{id}/runs` as the server takes it, and the session page built from
//! it: the body parses as a `Signed<RunReport>`, goes through `check_statement` against a
//! genuine sealed lobby, and an accepted report feeds `SessionView::new`. Nothing panics; a
//! report accepted is signed by the member it names, within bounds, with printable text, and
//! the view holds only real pairs of parties.
#![no_main]

mod support;

use libfuzzer_sys::fuzz_target;
use mpcnet_proto::api::SessionView;
use mpcnet_proto::label::is_unsafe_to_show;
use mpcnet_proto::run_report::{LinkPath, LinkStatus, MAX_REASON_CHARS, RunState};
use mpcnet_proto::{PartyStatement, RunReport};
use support::StatementSource;

fuzz_target!(|data: &[u8]| {
    let genuine = support::genuine();
    let bob = &genuine.joiners[0];
    let lobby = genuine.sealed.verified();
    let genuine_report = RunReport {
        lobby_id: lobby.offer.lobby_id,
        party: bob.public(),
        at_unix_ms: 1_700_000_000_000,
        state: RunState::Failed {
            reason: "party 2 (carol) went silent".into(),
        },
        links: vec![
            LinkStatus {
                peer: 0,
                path: LinkPath::Direct,
                rtt_ms: Some(0.4),
                unreachable_s: None,
            },
            LinkStatus {
                peer: 2,
                path: LinkPath::Relayed,
                rtt_ms: None,
                unreachable_s: Some(14),
            },
        ],
    }
    .sign(bob);
    let Some((signed, source)) = support::hostile_statement(data, &genuine_report) else {
        return;
    };
    let Ok(report) = lobby.check_statement(&signed) else {
        return;
    };
    assert_eq!(
        report.lobby_id, lobby.offer.lobby_id,
        "a report for another lobby"
    );
    assert!(lobby.party(&report.party).is_some(), "a stranger's report");
    assert!(report.check().is_ok());
    if let RunState::Failed { reason } = &report.state {
        assert!(
            reason.chars().count() <= MAX_REASON_CHARS,
            "reason too long"
        );
        assert!(
            !reason.chars().any(is_unsafe_to_show),
            "a reason that rewrites a terminal"
        );
    }
    match source {
        StatementSource::SignedByMember => assert_eq!(report.party, bob.public()),
        StatementSource::Outside => assert_eq!(signed.payload(), genuine_report.payload()),
    }
    let _ = report.supersedes(&genuine_report.decode_unverified().expect("genuine"));

    let view = SessionView::new(lobby, std::slice::from_ref(&report), 0);
    assert_eq!(view.parties.len(), lobby.parties.len());
    let parties = u16::try_from(lobby.parties.len()).expect("few parties");
    for pair in view.links.windows(2) {
        assert!(pair[0].parties < pair[1].parties, "links unsorted or twice");
    }
    for link in &view.links {
        let [low, high] = link.parties;
        assert!(
            low < high && high < parties,
            "a link to no party: {:?}",
            link.parties
        );
    }
    serde_json::to_vec(&view).expect("the view serializes for the page");
});
