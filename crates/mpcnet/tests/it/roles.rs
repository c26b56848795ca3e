//! Roles (asymmetric programs) end to end: a sealed-bid auction of three with real MPyC, party
//! 0 running the auctioneer and the others the bidder, each seat to its own known answer, made
//! from a folder with `--role`, from the catalog's `--example auction`, and from standalone
//! files with a role's own arguments; every party's status shows the role table; malformed
//! roles exit 2 with one line; a role edited in the server's database is refused by every party.

use std::path::Path;

use serde_json::Value;

use crate::support::*;

/// What each seat of a three-party auction prints with the bidders' default bids.
const AUCTION_ANSWERS: [&str; 3] = [
    "RESULT winner=2 bid=174",
    "RESULT won=False",
    "RESULT won=True",
];

/// Alice creates a three-party session with `extra` flags for `create`; returns the invite.
fn create_with(server: &Server, root: &Path, extra: &[&str]) -> String {
    let mut args = vec!["create", "--server", &server.address, "--parties", "3"];
    args.extend(extra);
    args.extend(["--party-name", "alice"]);
    let created = succeed(mpcnet(&root.join("alice"), &args));
    created.trim().to_owned()
}

/// The auction folder with party 0 the auctioneer and 1-2 the bidders.
fn create_auction(server: &Server, root: &Path) -> String {
    let auction = example("auction");
    let auction = auction.to_str().expect("utf-8");
    create_with(
        server,
        root,
        &[
            "--program",
            auction,
            "--role",
            "0=auctioneer.py",
            "--role",
            "1-2=bidder.py",
        ],
    )
}

/// Runs the three parties of `invite` and returns each one's seat and stdout, after checking
/// they all succeeded and each showed the role table before it agreed.
fn run_three(root: &Path, invite: &str) -> Vec<(u16, String)> {
    let commands = PARTIES
        .iter()
        .map(|name| run_command(root, invite, name, &[]))
        .collect();
    let finished = run_all(commands, RUN_LIMIT);
    PARTIES
        .iter()
        .zip(finished)
        .map(|(name, party)| {
            assert_eq!(party.code, Some(0), "{name} failed:\n{}", party.stderr);
            let summary = party
                .stderr
                .split("mpcnet: session sealed")
                .next()
                .unwrap_or_default();
            assert!(
                summary.contains("mpcnet: roles    seats run different entry points"),
                "{name} showed no role table before joining:\n{summary}"
            );
            let seat = status_json(&root.join(name), invite)["you"]
                .as_u64()
                .expect("a seat");
            (u16::try_from(seat).expect("small"), party.stdout)
        })
        .collect()
}

/// Each party printed the answer of its own seat.
fn assert_auction_answers(ran: &[(u16, String)]) {
    for (seat, stdout) in ran {
        let expected = AUCTION_ANSWERS[usize::from(*seat)];
        assert!(
            stdout.contains(expected),
            "seat {seat} printed no {expected:?}:\n{stdout}"
        );
    }
}

/// A row of a party's role table: its seats, entry point and the entry point's SHA-256.
fn role_rows(status: &Value) -> Vec<(String, String, String)> {
    let text = |value: &Value| value.as_str().expect("text").to_owned();
    status["roles"]
        .as_array()
        .expect("roles")
        .iter()
        .map(|row| {
            (
                text(&row["seats_text"]),
                text(&row["main"]),
                text(&row["sha256"]),
            )
        })
        .collect()
}

fn sha256_of_example(file: &str) -> String {
    let contents = std::fs::read(example("auction").join(file)).expect("example");
    mpcnet_proto::Sha256Digest::of(&contents).to_string()
}

#[test]
fn an_auction_of_roles_gives_each_seat_its_own_answer() {
    let root = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&root.path().join("server"), "127.0.0.1:0");
    let invite = create_auction(&server, root.path());
    // Before it runs anything, every party sees what every seat runs (its SHA-256 inside the
    // verified bundle).
    let expected = vec![
        (
            "0".into(),
            "auctioneer.py".into(),
            sha256_of_example("auctioneer.py"),
        ),
        (
            "1-2".into(),
            "bidder.py".into(),
            sha256_of_example("bidder.py"),
        ),
    ];
    for name in ["bob", "carol"] {
        assert_eq!(
            role_rows(&status_json(&root.path().join(name), &invite)),
            expected
        );
        let shown = succeed(mpcnet(&root.path().join(name), &["status", &invite]));
        let bidders = &expected[1].2;
        assert!(
            shown.lines().any(|line| line.contains("seats 1-2")
                && line.contains("bidder.py")
                && line.contains(bidders.as_str())),
            "{shown}"
        );
    }
    let ran = run_three(root.path(), &invite);
    assert_auction_answers(&ran);
}

#[test]
fn the_catalogs_auction_runs_the_auctioneer_at_seat_0_and_bidders_elsewhere() {
    let root = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&root.path().join("server"), "127.0.0.1:0");
    let invite = create_with(&server, root.path(), &["--example", "auction"]);
    let status = status_json(&root.path().join("bob"), &invite);
    assert_eq!(status["program"]["file_name"], "auction");
    assert_eq!(status["program"]["main"], "bidder.py");
    // The seats in no role run the bundle's entry point: the default row says so.
    assert_eq!(
        role_rows(&status),
        vec![
            (
                "0".into(),
                "auctioneer.py".into(),
                sha256_of_example("auctioneer.py")
            ),
            (
                "1-2".into(),
                "bidder.py".into(),
                sha256_of_example("bidder.py")
            ),
        ]
    );
    assert_eq!(status["roles"][1]["default"], true);
    let ran = run_three(root.path(), &invite);
    assert_auction_answers(&ran);
}

/// Standalone files, one per role, are packed into one bundle; the clients' role has public
/// arguments of its own, the coordinator the session's.
#[test]
fn standalone_role_files_run_with_their_roles_own_arguments() {
    let root = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&root.path().join("server"), "127.0.0.1:0");
    let files = root.path().join("files");
    std::fs::create_dir(&files).expect("folder");
    let coordinator = "from mpyc.runtime import mpc\n\
        secint = mpc.SecInt(16)\n\
        async def main():\n    await mpc.start()\n\
        \x20   xs = mpc.input(secint(None), senders=[1, 2])\n\
        \x20   total = await mpc.output(mpc.sum(xs))\n\
        \x20   await mpc.shutdown()\n\
        \x20   print(f'RESULT coordinator total={total}')\n\
        mpc.run(main())\n";
    let client = coordinator
        .replace("import mpc\n", "import mpc\nimport sys\n")
        .replace("secint(None)", "secint(int(sys.argv[1]) + mpc.pid)")
        .replace("RESULT coordinator", "RESULT client");
    std::fs::write(files.join("coordinator.py"), coordinator).expect("coordinator");
    std::fs::write(files.join("client.py"), client).expect("client");
    let path = |name: &str| files.join(name).to_str().expect("utf-8").to_owned();
    let (coordinator, client) = (
        format!("0={}", path("coordinator.py")),
        format!("1,2={}", path("client.py")),
    );
    let invite = create_with(
        &server,
        root.path(),
        &[
            "--role",
            &coordinator,
            "--role",
            &client,
            "--role-arg",
            "1-2=7",
        ],
    );
    let status = status_json(&root.path().join("bob"), &invite);
    assert_eq!(status["program"]["file_name"], "coordinator");
    assert_eq!(status["roles"][1]["args"], serde_json::json!(["7"]));
    let ran = run_three(root.path(), &invite);
    // (7 + 1) + (7 + 2).
    for (seat, stdout) in ran {
        let expected = match seat {
            0 => "RESULT coordinator total=17",
            _ => "RESULT client total=17",
        };
        assert!(stdout.contains(expected), "seat {seat}: {stdout}");
    }
}

#[test]
fn malformed_roles_exit_2_with_one_clear_line() {
    let root = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&root.path().join("server"), "127.0.0.1:0");
    let auction = example("auction");
    let auction = auction.to_str().expect("utf-8");
    let single = example("secret_mean.py");
    let single = single.to_str().expect("utf-8");
    let cases: &[(&[&str], &str)] = &[
        (
            &["--program", auction, "--role", "1-2"],
            "is not SEATS=VALUE",
        ),
        (
            &["--program", auction, "--role", "x=bidder.py"],
            "is not a seat list",
        ),
        (
            &["--program", auction, "--role", "2-1=bidder.py"],
            "is not a seat list",
        ),
        (
            &[
                "--program",
                auction,
                "--role",
                "0,1=bidder.py",
                "--role",
                "1=auctioneer.py",
            ],
            "seat 1 has a role already",
        ),
        (
            &[
                "--program",
                auction,
                "--role",
                "0=auctioneer.py",
                "--role",
                "1-3=bidder.py",
            ],
            "gives a role to seat 3, but the session has 3 parties",
        ),
        (
            &[
                "--program",
                auction,
                "--role",
                "0=auctioneer.py",
                "--role",
                "1-2=clerk.py",
            ],
            "the bundle has no clerk.py",
        ),
        (
            &["--program", single, "--role", "0=secret_mean.py"],
            "roles are entry points of a bundle",
        ),
        (
            &[
                "--program",
                auction,
                "--role",
                "0=auctioneer.py",
                "--role",
                "1-2=bidder.py",
                "--role-arg",
                "1=5",
            ],
            "no role has exactly the seats 1",
        ),
        (
            &["--program", auction, "--role", "0=auctioneer.py"],
            "name the program's entry point with --main",
        ),
        (
            &["--role", "0=/no/such/coordinator.py"],
            "/no/such/coordinator.py",
        ),
    ];
    succeed(mpcnet(&root.path().join("alice"), &["id"]));
    for (extra, expected) in cases {
        let mut args = vec!["create", "--server", &server.address, "--parties", "3"];
        args.extend(*extra);
        let output = mpcnet(&root.path().join("alice"), &args);
        assert_fails(&output, 2, expected);
        let message = stderr(&output);
        assert_eq!(message.lines().count(), 1, "one line: {message}");
    }
    let lobbies: i64 = server
        .database()
        .query_row("SELECT COUNT(*) FROM lobbies", [], |row| row.get(0))
        .expect("count");
    assert_eq!(lobbies, 0, "a refused create made a lobby");
}

/// A role edited in the offer the server stores (the bidders' seats given the auctioneer's
/// program): the creator's signature no longer holds, and every party refuses the session.
#[test]
fn a_role_edited_in_the_servers_database_is_refused_by_every_party() {
    let root = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&root.path().join("server"), "127.0.0.1:0");
    let invite = create_auction(&server, root.path());
    let db = server.database();
    let offer: String = db
        .query_row("SELECT offer FROM lobbies", [], |row| row.get(0))
        .expect("offer");
    let edited = crate::lobby::edit_payload(&offer, None, |payload| {
        payload["roles"][1]["main"] = "auctioneer.py".into();
    });
    db.execute("UPDATE lobbies SET offer = ?1", [edited])
        .expect("update");
    for party in PARTIES {
        let output = mpcnet(&root.path().join(party), &["status", &invite]);
        assert_fails(&output, 1, "VERIFICATION FAILED: bad Offer signature");
    }
}

/// `mpcnet demo --program auction` runs the catalog's roles: the auctioneer (alice, party 0)
/// learns the winner, one bidder learns it won and the other that it lost.
#[test]
fn the_demo_runs_the_auction_with_its_roles() {
    let root = tempfile::tempdir().expect("tempdir");
    let demo = &["demo", "--program", "auction", "--parties", "3"];
    let finished = &run_all(vec![mpcnet_command(root.path(), demo)], RUN_LIMIT)[0];
    assert_eq!(finished.code, Some(0), "{}", finished.stderr);
    let stdout = &finished.stdout;
    assert!(
        stdout.contains("alice: RESULT winner=2 bid=174"),
        "{stdout}"
    );
    for answer in &AUCTION_ANSWERS[1..] {
        assert_eq!(stdout.matches(answer).count(), 1, "{stdout}");
    }
}
