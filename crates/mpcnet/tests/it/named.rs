//! Named parties end to end: identities from `mpcnet id`, a session that lists them, real MPyC
//! over it with the seats in the list's order whatever the join order, a holder of the invite
//! outside the list refused in one line while the session goes on, and malformed lists.

use std::path::Path;

use mpcnet_proto::{PublicKey, Seat};
use serde_json::Value;

use crate::support::*;

#[test]
fn a_named_session_runs_in_list_order_and_refuses_an_invite_holder_it_does_not_list() {
    let root = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&root.path().join("server"), "127.0.0.1:0");
    let invite = create_named_session(&server, root.path(), &example("secret_mean.py"), &[]);
    let carol = succeed(mpcnet(
        &root.path().join("carol"),
        &["join", &invite, "--name", "carol"],
    ));
    assert_eq!(
        carol.trim(),
        "2",
        "carol joins first and takes her listed seat"
    );

    let dave = root.path().join("dave");
    let dave_line = identity_line(&dave, "dave");
    let refused = mpcnet(&dave, &["join", &invite, "--name", "dave"]);
    let dave_did = dave_line.split_whitespace().next().expect("did:key");
    assert_fails(
        &refused,
        1,
        &format!("this session is for named parties and your key {dave_did} is not one of them"),
    );
    assert_eq!(stderr(&refused).lines().count(), 1, "{}", stderr(&refused));

    let status = status_json(&root.path().join("alice"), &invite);
    let taken: Vec<(Value, Value)> = status["seats"]
        .as_array()
        .expect("seats")
        .iter()
        .map(|seat| (seat["name"].clone(), seat["taken"].clone()))
        .collect();
    assert_eq!(
        taken,
        [("alice", true), ("bob", false), ("carol", true)].map(|(n, t)| (n.into(), t.into()))
    );
    let shown = succeed(mpcnet(&root.path().join("bob"), &["status", &invite]));
    assert!(
        shown.contains("seats    named: only these keys may join"),
        "{shown}"
    );
    assert!(
        shown
            .lines()
            .any(|l| l.contains(" bob ") && l.contains("waiting")),
        "{shown}"
    );

    let commands = PARTIES
        .iter()
        .map(|name| run_command(root.path(), &invite, name, &[]))
        .collect();
    let finished = run_all(commands, RUN_LIMIT);
    assert_all_answer(&finished, "RESULT sum=60 mean=20 parties=3");
    for (seat, party) in finished.iter().enumerate() {
        let said = format!("you are party {seat} of 3");
        assert!(party.stderr.contains(&said), "{said}:\n{}", party.stderr);
    }
    let refused_again = mpcnet(&dave, &["join", &invite]);
    assert_fails(&refused_again, 1, "is not one of them");
}

#[test]
fn mpcnet_id_prints_one_line_to_list_and_its_qr_code() {
    let root = tempfile::tempdir().expect("tempdir");
    let home = root.path().join("bob");
    let shown = mpcnet(&home, &["id", "--name", "bob"]);
    let line = succeed(mpcnet(&home, &["id", "--name", "bob"]));
    assert_eq!(stdout(&shown), line, "the same identity every time");
    assert_eq!(line.lines().count(), 1, "{line}");
    assert!(line.starts_with("did:key:z6Mk"), "{line}");

    let json: Value =
        serde_json::from_str(&succeed(mpcnet(&home, &["id", "--name", "bob", "--json"])))
            .expect("id --json");
    assert_eq!(json["line"].as_str(), Some(line.trim()));
    let fingerprint = json["fingerprint"].as_str().expect("fingerprint");
    assert!(
        line.contains(&format!("bob  # fingerprint {fingerprint}")),
        "{line}"
    );
    let seat: Seat = line
        .trim()
        .parse()
        .expect("the line is a seat a creator can list");
    let key: PublicKey = json["public_key"]
        .as_str()
        .expect("key")
        .parse()
        .expect("hex key");
    assert_eq!(seat.key, key, "the did:key names this identity's key");
    assert_eq!(seat.name.as_ref().map(|n| n.as_str()), Some("bob"));

    let qr_rows = stderr(&shown)
        .lines()
        .filter(|row| row.chars().filter(|c| matches!(c, '█' | '▀' | '▄')).count() > 20)
        .count();
    assert!(qr_rows > 20, "no QR code on stderr: {}", stderr(&shown));
}

/// `mpcnet create` in alice's home under `root` with the parties file `text`.
fn create_with_parties_file(root: &Path, text: &str) -> std::process::Output {
    let file = root.join("parties.txt");
    std::fs::write(&file, text).expect("parties file");
    let program = root.join("p.py");
    std::fs::write(&program, "print('p')\n").expect("program");
    mpcnet(
        &root.join("alice"),
        &[
            "create",
            "--server",
            "https://127.0.0.1:1",
            "--program",
            program.to_str().expect("utf-8"),
            "--parties-file",
            file.to_str().expect("utf-8"),
        ],
    )
}

#[test]
fn a_malformed_parties_file_exits_2_with_one_line() {
    let root = tempfile::tempdir().expect("tempdir");
    let bob = identity_line(&root.path().join("bob"), "bob");
    let alice = identity_line(&root.path().join("alice"), "alice");
    let bob_did = bob.split_whitespace().next().expect("did").to_owned();
    let cases = [
        (
            format!("# ok\n{bob}\nnot-a-key carol\n"),
            "line 3: \"not-a-key\" is not a did:key".to_owned(),
        ),
        (
            format!("{bob}\n\nabcd-efgh-ijkl\n"),
            "line 3: \"abcd-efgh-ijkl\" is a key fingerprint".into(),
        ),
        (
            format!("{bob_did} bad\u{7}name\n"),
            "line 1: a party's name contains a control character".into(),
        ),
        (
            format!("{bob}\n{bob_did} again\n"),
            format!("{bob_did} is listed twice"),
        ),
        (
            format!("{bob}\n{alice}\n"),
            "is listed after other parties: list it first, or leave it out".into(),
        ),
        (
            format!("{alice}\n# nobody else\n"),
            "no party is listed besides you".into(),
        ),
        (
            "# a file of comments lists no one\n\n".to_owned(),
            "no party is listed besides you".into(),
        ),
    ];
    for (text, expected) in cases {
        let output = create_with_parties_file(root.path(), &text);
        assert_fails(&output, 2, &expected);
        assert_eq!(
            stderr(&output).lines().count(),
            1,
            "{text:?}: {}",
            stderr(&output)
        );
    }
}
