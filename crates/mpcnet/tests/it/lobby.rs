//! The coordination plane through the binary: parties in separate homes create, join, seal and
//! agree; the server keeps lobbies across restarts; tampering with its database is caught by
//! every party; bad input exits with code 2 and one clear line.

use std::time::Duration;

use mpcnet_proto::VerifyError;
use mpcnet_proto::identity::SigningPurpose;
use serde_json::Value;

use crate::support::*;

#[test]
fn three_parties_create_join_seal_and_see_the_same_manifest() {
    let root = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&root.path().join("server"), "127.0.0.1:0");
    let invite = three_party_session(&server, root.path());

    let before = status_json(&root.path().join("bob"), &invite);
    assert_eq!(before["state"], "full");
    assert!(before["session_fingerprint"].is_null());

    let fourth = mpcnet(
        &root.path().join("dave"),
        &["join", &invite, "--name", "dave"],
    );
    assert_fails(&fourth, 1, "the lobby is full");

    let sealed = status_json(&root.path().join("alice"), &invite);
    assert_eq!(sealed["sealed_now"], true);
    let mut fingerprints = Vec::new();
    for (index, party) in ["alice", "bob", "carol"].iter().enumerate() {
        let home = root.path().join(party);
        let status = status_json(&home, &invite);
        assert_eq!(status["state"], "sealed", "{party}");
        assert_eq!(status["you"], index, "{party}");
        assert_eq!(status["name"], "salary survey");
        assert_eq!(status["args"], serde_json::json!(["--rounds", "3"]));
        let names: Vec<&str> = status["parties"]
            .as_array()
            .expect("parties")
            .iter()
            .map(|p| p["name"].as_str().expect("name"))
            .collect();
        assert_eq!(names, ["alice", "bob", "carol"]);
        let id: Value =
            serde_json::from_str(&succeed(mpcnet(&home, &["id", "--json"]))).expect("id JSON");
        assert_eq!(
            status["parties"][index]["key"], id["public_key"],
            "{party}'s key is in the manifest"
        );
        let program = std::fs::read_to_string(status["program"]["path"].as_str().expect("path"))
            .expect("program copy");
        assert_eq!(program, "print('mean')\n");
        fingerprints.push(
            status["session_fingerprint"]
                .as_str()
                .expect("fingerprint")
                .to_owned(),
        );
    }
    assert!(
        fingerprints.windows(2).all(|pair| pair[0] == pair[1]),
        "{fingerprints:?}"
    );
}

#[test]
fn a_restarted_server_keeps_its_lobbies_and_certificate() {
    let root = tempfile::tempdir().expect("tempdir");
    let data = root.path().join("server");
    let first = Server::start(&data, "127.0.0.1:0");
    let invite = three_party_session(&first, root.path());
    let (port, address) = (first.port(), first.address.clone());
    drop(first);

    let second = Server::start(&data, &format!("127.0.0.1:{port}"));
    assert_eq!(
        second.address, address,
        "same certificate pin after a restart"
    );
    let status = status_json(&root.path().join("alice"), &invite);
    assert_eq!(status["state"], "sealed");
    assert_eq!(status["parties"].as_array().expect("parties").len(), 3);
}

/// Rewrites the base64url JSON payload inside a signed value stored as JSON text.
pub(crate) fn edit_payload(
    stored: &str,
    field: Option<&str>,
    edit: impl FnOnce(&mut Value),
) -> String {
    let mut outer: Value = serde_json::from_str(stored).expect("stored JSON");
    let envelope = match field {
        Some(name) => &mut outer[name],
        None => &mut outer,
    };
    let encoded = envelope["payload"].as_str().expect("payload").to_owned();
    let bytes = data_encoding::BASE64URL_NOPAD
        .decode(encoded.as_bytes())
        .expect("base64url");
    let mut payload: Value = serde_json::from_slice(&bytes).expect("payload JSON");
    edit(&mut payload);
    envelope["payload"] = data_encoding::BASE64URL_NOPAD
        .encode(&serde_json::to_vec(&payload).expect("json"))
        .into();
    outer.to_string()
}

/// What is tampered with, how (an edit of the server's database), and the check every party
/// must name.
type TamperCase = (&'static str, fn(&rusqlite::Connection), VerifyError);

#[test]
fn tampering_with_the_server_database_makes_every_party_refuse() {
    // What is tampered with, how, and the check every party must name.
    let cases: &[TamperCase] = &[
        (
            "the sealed manifest",
            |db| {
                let manifest: String = db
                    .query_row("SELECT manifest FROM lobbies", [], |row| row.get(0))
                    .expect("manifest");
                let edited = edit_payload(&manifest, None, |payload| {
                    payload["parties"]
                        .as_array_mut()
                        .expect("parties")
                        .swap(1, 2)
                });
                db.execute("UPDATE lobbies SET manifest = ?1", [edited])
                    .expect("update");
            },
            VerifyError::BadSignature(SigningPurpose::Manifest),
        ),
        (
            "a party's key",
            |db| {
                let record: String = db
                    .query_row("SELECT record FROM joins WHERE seat = 1", [], |row| {
                        row.get(0)
                    })
                    .expect("record");
                let edited = edit_payload(&record, Some("record"), |payload| {
                    payload["party"] =
                        "2e6fcce36701dc791488e0d0b1745cc1e33a4c1c9fcc41c63bd343dbbe0970e6".into();
                });
                db.execute("UPDATE joins SET record = ?1 WHERE seat = 1", [edited])
                    .expect("update");
            },
            VerifyError::BadSignature(SigningPurpose::JoinProof),
        ),
        (
            "the order of the parties",
            |db| {
                db.execute_batch(
                "UPDATE joins SET seat = 99 WHERE seat = 1; UPDATE joins SET seat = 1 WHERE seat = 2; UPDATE joins SET seat = 2 WHERE seat = 99;",
            )
            .expect("update");
            },
            VerifyError::ManifestJoinsDiffer,
        ),
        (
            "the public program arguments",
            |db| {
                let offer: String = db
                    .query_row("SELECT offer FROM lobbies", [], |row| row.get(0))
                    .expect("offer");
                let edited = edit_payload(&offer, None, |payload| {
                    payload["args"] = serde_json::json!(["--rounds", "1000"])
                });
                db.execute("UPDATE lobbies SET offer = ?1", [edited])
                    .expect("update");
            },
            VerifyError::BadSignature(SigningPurpose::Offer),
        ),
    ];
    assert_every_party_refuses(cases, three_party_session);
    // A named session's seat list and seat order.
    let named: &[TamperCase] = &[
        (
            "the order of the named seats",
            |db| {
                let seats = |payload: &mut Value| {
                    payload["seats"].as_array_mut().expect("seats").swap(1, 2)
                };
                edit_offer(db, seats)
            },
            VerifyError::BadSignature(SigningPurpose::Offer),
        ),
        (
            "a named seat's key",
            |db| {
                edit_offer(db, |payload| {
                    payload["seats"][1]["key"] =
                        "2e6fcce36701dc791488e0d0b1745cc1e33a4c1c9fcc41c63bd343dbbe0970e6".into();
                })
            },
            VerifyError::BadSignature(SigningPurpose::Offer),
        ),
        (
            "the seat list removed (an open session)",
            |db| {
                edit_offer(db, |payload| {
                    payload.as_object_mut().expect("offer").remove("seats");
                })
            },
            VerifyError::BadSignature(SigningPurpose::Offer),
        ),
        (
            "the joins moved out of the seats' order",
            |db| {
                db.execute_batch(
                "UPDATE joins SET seat = 99 WHERE seat = 1; UPDATE joins SET seat = 1 WHERE seat = 2; UPDATE joins SET seat = 2 WHERE seat = 99;",
            )
            .expect("update");
            },
            VerifyError::SeatsOutOfOrder,
        ),
    ];
    assert_every_party_refuses(named, named_three_party_session);
}

/// Rewrites the stored offer's payload with `edit`.
fn edit_offer(db: &rusqlite::Connection, edit: impl FnOnce(&mut Value)) {
    let offer: String = db
        .query_row("SELECT offer FROM lobbies", [], |row| row.get(0))
        .expect("offer");
    let edited = edit_payload(&offer, None, edit);
    db.execute("UPDATE lobbies SET offer = ?1", [edited])
        .expect("update");
}

/// For each case: a session of three made by `session`, sealed, then tampered with in the
/// server's database; every party's `status` must fail naming the check.
fn assert_every_party_refuses(
    cases: &[TamperCase],
    session: fn(&Server, &std::path::Path) -> String,
) {
    for (what, tamper, caught_by) in cases {
        let root = tempfile::tempdir().expect("tempdir");
        let server = Server::start(&root.path().join("server"), "127.0.0.1:0");
        let invite = session(&server, root.path());
        assert_eq!(
            status_json(&root.path().join("alice"), &invite)["state"],
            "sealed"
        );
        tamper(&server.database());
        for party in ["alice", "bob", "carol"] {
            let output = mpcnet(&root.path().join(party), &["status", &invite]);
            assert!(
                !output.status.success(),
                "{party} accepted tampering with {what}"
            );
            assert_fails(&output, 1, &format!("VERIFICATION FAILED: {caught_by}."));
        }
    }
}

#[test]
fn a_program_swapped_on_the_server_is_refused_and_changes_no_verified_copy() {
    let root = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&root.path().join("server"), "127.0.0.1:0");
    let invite = three_party_session(&server, root.path());
    let before = status_json(&root.path().join("alice"), &invite);
    server
        .database()
        .execute(
            "UPDATE lobbies SET program = CAST('import os; os.system(\"evil\")' AS BLOB)",
            [],
        )
        .expect("update");
    // The parties run the copy they verified, which is still the creator's program.
    for party in ["alice", "bob", "carol"] {
        let status = status_json(&root.path().join(party), &invite);
        let path = status["program"]["path"].as_str().expect("path");
        let program = std::fs::read_to_string(path).expect("verified copy");
        assert_eq!(program, "print('mean')\n", "{party}");
    }
    assert_eq!(
        before["program"],
        status_json(&root.path().join("alice"), &invite)["program"]
    );
    // Whoever fetches it now refuses it.
    let output = mpcnet(&root.path().join("dave"), &["status", &invite]);
    assert_fails(&output, 1, "VERIFICATION FAILED: the program");
}

#[test]
fn malformed_invites_exit_2_with_one_clear_line() {
    let root = tempfile::tempdir().expect("tempdir");
    let home = root.path().join("party");
    let good = "https://127.0.0.1:7000/s/pqefabn2dg7nnlx5b5f26yfvpi#mpcnet1.Cxpgj341UBAwcgfQpv6bkkh_MHdmHuA23KjNtiwSk58M5VH_fyjlLvHDapeKLkDgIxYUeQjn7IlgKRSOv1oVpgGMBt4B3A5fbAMul7SFycysNNWiTehA-LDf8dMJzJdfd1qoIz8";
    let cases: &[(&str, &str)] = &[
        ("garbage", "not an mpcnet invite"),
        ("https://example.org/", "not an mpcnet invite"),
        (&good[..good.len() - 10], "truncated"),
        (&good.replace("Cxpg", "Cxpq"), "damaged"),
        (&good.replace("pqefabn2", "aaaaaaaa"), "pieced together"),
        (&good.replace("mpcnet1.", "mpcnet7."), "newer version"),
        ("/nonexistent/invite.txt", "not an mpcnet invite"),
    ];
    for (invite, expected) in cases {
        for command in ["join", "status"] {
            let output = mpcnet(&home, &[command, invite]);
            assert_fails(&output, 2, expected);
            let message = stderr(&output);
            assert_eq!(message.lines().count(), 1, "one line: {message}");
            assert!(message.starts_with("mpcnet: error:"), "{message}");
        }
    }
    assert_fails(&mpcnet(&home, &["join"]), 2, "MPCNET_INVITE");
}

#[test]
fn invites_are_read_from_a_file_stdin_or_the_environment() {
    let root = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&root.path().join("server"), "127.0.0.1:0");
    let invite = succeed(create_lobby(&server.address, root.path(), "4"));
    let invite = invite.trim();
    let file = root.path().join("invite.txt");
    std::fs::write(&file, format!("{invite}\n")).expect("invite file");

    let from_file = mpcnet(
        &root.path().join("bob"),
        &["join", file.to_str().expect("utf-8"), "--name", "bob"],
    );
    assert_eq!(succeed(from_file).trim(), "1");
    let from_stdin = mpcnet_with(
        &root.path().join("carol"),
        &["join", "-", "--name", "carol"],
        &[],
        Some(invite),
    );
    assert_eq!(succeed(from_stdin).trim(), "2");
    let from_env = mpcnet_with(
        &root.path().join("dan"),
        &["join", "--name", "dan"],
        &[("MPCNET_INVITE", invite)],
        None,
    );
    assert_eq!(succeed(from_env).trim(), "3");
}

#[test]
fn a_wrong_certificate_pin_is_refused_before_anything_is_sent() {
    let root = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&root.path().join("server"), "127.0.0.1:0");
    let (origin, _) = server.address.split_once('#').expect("pinned");
    let wrong = format!("{origin}#sha256=jAbeAdwOX2wDLpe0hcnMrDTVok3oQPiw3_HTCcyXX3c");
    let output = create_lobby(&wrong, root.path(), "2");
    assert_fails(&output, 1, "does not match the pin");
}

#[test]
fn the_identity_is_created_once_kept_private_and_never_printed() {
    let root = tempfile::tempdir().expect("tempdir");
    let home = root.path().join("party");
    let first = mpcnet(&home, &["id"]);
    assert!(stderr(&first).contains("created a new identity"));
    let second = mpcnet(&home, &["id"]);
    assert!(!stderr(&second).contains("created"), "{}", stderr(&second));
    assert_eq!(stdout(&first), stdout(&second));
    assert!(stdout(&first).contains("did:key:z6Mk"));

    let key_file = std::fs::read_to_string(home.join("identity.key")).expect("identity file");
    let secret = key_file.lines().nth(1).expect("secret line");
    for shown in [stdout(&first), stderr(&first)] {
        assert!(!shown.contains(secret), "the secret key is never printed");
    }
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(home.join("identity.key"))
            .expect("meta")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
}

/// The catalog lists the examples by name; an unknown name is a usage error that lists them.
#[test]
fn the_servers_examples_are_listed_and_an_unknown_one_is_refused() {
    let root = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&root.path().join("server"), "127.0.0.1:0");
    let home = root.path().join("alice");
    let output = mpcnet(
        &home,
        &[
            "create",
            "--server",
            &server.address,
            "--parties",
            "2",
            "--example",
            "no-such",
        ],
    );
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let said = stderr(&output);
    let errors: Vec<&str> = said
        .lines()
        .filter(|l| !l.contains("new identity"))
        .collect();
    assert_eq!(errors.len(), 1, "{said}");
    for name in [
        "secret-mean",
        "many-rounds",
        "bulk-transfer",
        "two-sessions",
        "ping-pong",
    ] {
        assert!(said.contains(name), "{said}");
    }
    let output = mpcnet(
        &home,
        &["create", "--server", &server.address, "--parties", "2"],
    );
    assert_eq!(
        output.status.code(),
        Some(2),
        "a program or an example is needed"
    );
}

#[test]
fn usage_errors_exit_2() {
    let root = tempfile::tempdir().expect("tempdir");
    let home = root.path().join("party");
    for args in [
        &[
            "create",
            "--server",
            "https://127.0.0.1:1",
            "--parties",
            "1",
            "--program",
            "x.py",
        ][..],
        &[
            "create",
            "--server",
            "ftp://127.0.0.1:1",
            "--parties",
            "2",
            "--program",
            "x.py",
        ][..],
        &[
            "create",
            "--server",
            "https://127.0.0.1:1",
            "--parties",
            "2",
            "--program",
            "/nonexistent.py",
        ][..],
        &["frobnicate"][..],
    ] {
        let output = mpcnet(&home, args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
    }
}

#[test]
fn create_shows_a_qr_code_of_the_invite_on_stderr() {
    let root = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&root.path().join("server"), "127.0.0.1:0");
    let output = create_lobby(&server.address, root.path(), "2");
    let shown = stderr(&output);
    assert!(output.status.success(), "{shown}");
    let qr_rows = shown
        .lines()
        .filter(|line| {
            line.chars()
                .filter(|c| matches!(c, '█' | '▀' | '▄'))
                .count()
                > 20
        })
        .count();
    assert!(qr_rows > 20, "no QR code on stderr: {shown}");
    assert!(
        !stdout(&output).contains('█'),
        "stdout holds the invite alone"
    );
}

#[test]
fn an_expired_lobby_is_gone() {
    let root = tempfile::tempdir().expect("tempdir");
    let server = Server::start_with(
        &root.path().join("server"),
        "127.0.0.1:0",
        &["--lobby-ttl", "1s"],
    );
    let invite = succeed(create_lobby(&server.address, root.path(), "2"));
    std::thread::sleep(Duration::from_millis(2100));
    let output = mpcnet(
        &root.path().join("bob"),
        &["join", invite.trim(), "--name", "bob"],
    );
    assert_fails(&output, 1, "no such lobby");
}

#[test]
fn one_address_creates_only_so_many_live_lobbies() {
    let root = tempfile::tempdir().expect("tempdir");
    let server = Server::start_with(
        &root.path().join("server"),
        "127.0.0.1:0",
        &["--max-lobbies-per-ip", "1"],
    );
    succeed(create_lobby(&server.address, root.path(), "2"));
    let again = create_lobby(&server.address, root.path(), "2");
    assert_fails(&again, 1, "as many live sessions as one address may (1)");
}

#[test]
fn shell_completions_are_printed() {
    let root = tempfile::tempdir().expect("tempdir");
    let script = succeed(mpcnet(root.path(), &["completions", "bash"]));
    for word in ["serve", "create", "join", "status", "--parties"] {
        assert!(script.contains(word), "completion lacks {word}");
    }
}
