//! Program bundles end to end: a folder (program, its own module, a data file) run by three
//! parties with real MPyC to its known answer, a party's private input file found where it
//! runs; `mpcnet pack` gives the bytes `create` uploads; a folder that cannot be bundled
//! exits 2 with one line; a bundle swapped on the server, or its entry point edited in the
//! server's database, is refused by every party.

use std::path::Path;

use crate::support::*;

/// The example bundle: survey.py, its module scoring.py, data/weights.csv.
fn survey() -> std::path::PathBuf {
    example("survey")
}

/// Alice creates a session of three for the example bundle; returns the invite.
fn create_survey(server: &Server, root: &Path) -> String {
    create_session_with(server, root, &survey(), &["--main", "survey.py"], &[])
}

#[test]
fn a_bundle_session_of_three_gives_its_known_answer() {
    let root = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&root.path().join("server"), "127.0.0.1:0");
    let invite = create_survey(&server, root.path());
    // Alice (party 0) answers 1, 2, 3 (the default); bob and carol, whose seats depend on
    // who joins first, answer from files of their own, named relative to where they run.
    let answers = [("bob", "5\n5\n5\n"), ("carol", "10\n20\n30\n")];
    let commands = PARTIES
        .iter()
        .map(|name| {
            let mut command = run_command(root.path(), &invite, name, &[]);
            if let Some((_, answers)) = answers.iter().find(|(party, _)| party == name) {
                let work = root.path().join(format!("{name}-work"));
                std::fs::create_dir(&work).expect("the party's folder");
                std::fs::write(work.join("answers.txt"), answers).expect("answers");
                command.current_dir(&work).args(["--", "answers.txt"]);
            }
            command
        })
        .collect();
    let finished = run_all(commands, RUN_LIMIT);
    // Weights 1, 2, 4: (1 + 5 + 10) + 2 * (2 + 5 + 20) + 4 * (3 + 5 + 30).
    assert_all_answer(&finished, "RESULT weighted_total=222 questions=3 parties=3");
    for name in PARTIES {
        let status = status_json(&root.path().join(name), &invite);
        let program = &status["program"];
        assert_eq!(program["main"], "survey.py", "{name}");
        assert_eq!(program["file_name"], "survey", "{name}");
        let dir = Path::new(program["bundle_dir"].as_str().expect("bundle dir"));
        assert_eq!(
            Path::new(program["path"].as_str().expect("path")),
            dir.join("survey.py")
        );
        for file in ["survey.py", "scoring.py", "data/weights.csv"] {
            assert_eq!(
                std::fs::read(dir.join(file)).expect("unpacked"),
                std::fs::read(survey().join(file)).expect("example"),
                "{name}: {file}"
            );
        }
        assert!(
            !dir.join("__pycache__").exists(),
            "{name}: byte code written"
        );
    }
}

/// `mpcnet pack` writes the same bytes for a copy of the folder made in another order with
/// other modes, and a session created from the packed file is the folder's session.
#[test]
fn a_packed_bundle_is_the_folders_bundle() {
    let root = tempfile::tempdir().expect("tempdir");
    let copy = root.path().join("copy/survey");
    std::fs::create_dir_all(copy.join("data")).expect("copy");
    for file in ["data/weights.csv", "scoring.py", "survey.py"] {
        std::fs::copy(survey().join(file), copy.join(file)).expect("copy");
    }
    std::fs::write(copy.join(".notes"), "left out").expect("hidden");
    let packed = |dir: &Path, out: &Path| {
        let line = succeed(mpcnet(
            &root.path().join("home"),
            &[
                "pack",
                dir.to_str().expect("utf-8"),
                "--out",
                out.to_str().expect("utf-8"),
            ],
        ));
        let sha = line
            .trim()
            .rsplit_once("sha256 ")
            .expect("sha256")
            .1
            .to_owned();
        (sha, std::fs::read(out).expect("bundle"))
    };
    let (sha, bytes) = packed(&survey(), &root.path().join("survey.tar"));
    let (copy_sha, copy_bytes) = packed(&copy, &root.path().join("b.tar"));
    assert_eq!((&sha, &bytes), (&copy_sha, &copy_bytes));

    let server = Server::start(&root.path().join("server"), "127.0.0.1:0");
    let tar = root.path().join("survey.tar");
    let invite = create_session_with(&server, root.path(), &tar, &["--main", "survey.py"], &[]);
    let status = status_json(&root.path().join("bob"), &invite);
    assert_eq!(status["program"]["sha256"], sha.as_str());
    assert_eq!(status["program"]["main"], "survey.py");
    assert_eq!(status["program"]["file_name"], "survey");
    // A party may check its own copy of the folder instead of fetching the bundle.
    let copy = copy.to_str().expect("utf-8");
    let checked = succeed(mpcnet(
        &root.path().join("carol"),
        &["status", &invite, "--program", copy, "--json"],
    ));
    assert!(checked.contains("\"main\": \"survey.py\""), "{checked}");
    std::fs::write(Path::new(copy).join("data/weights.csv"), "q1,100\n").expect("edit");
    let output = mpcnet(
        &root.path().join("carol"),
        &["status", &invite, "--program", copy],
    );
    assert_fails(&output, 1, "does not match the SHA-256 the creator signed");
}

#[test]
fn a_folder_that_cannot_be_bundled_exits_2_with_one_clear_line() {
    let root = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&root.path().join("server"), "127.0.0.1:0");
    let escaping = root.path().join("escaping");
    std::fs::create_dir(&escaping).expect("folder");
    std::fs::write(escaping.join("main.py"), "print(1)\n").expect("main");
    std::os::unix::fs::symlink("../../../etc/passwd", escaping.join("data.csv")).expect("link");
    let two_mains = root.path().join("two");
    std::fs::create_dir(&two_mains).expect("folder");
    for file in ["a.py", "b.py"] {
        std::fs::write(two_mains.join(file), "print(1)\n").expect("program");
    }
    let cases: &[(&Path, &[&str], &str)] = &[
        (&escaping, &[], "data.csv is a symbolic link"),
        (
            &two_mains,
            &[],
            "name the program's entry point with --main",
        ),
        (&two_mains, &["--main", "c.py"], "the bundle has no c.py"),
        (&two_mains, &["--main", "../a.py"], "cannot be in a bundle"),
    ];
    succeed(mpcnet(&root.path().join("alice"), &["id"]));
    for (dir, extra, expected) in cases {
        let mut args = vec![
            "create",
            "--server",
            &server.address,
            "--parties",
            "3",
            "--program",
            dir.to_str().expect("utf-8"),
        ];
        args.extend(*extra);
        let output = mpcnet(&root.path().join("alice"), &args);
        assert_fails(&output, 2, expected);
        let message = stderr(&output);
        assert_eq!(message.lines().count(), 1, "one line: {message}");
        assert!(message.starts_with("mpcnet: error:"), "{message}");
    }
    let output = mpcnet(
        &root.path().join("alice"),
        &["pack", escaping.to_str().expect("utf-8")],
    );
    assert_fails(&output, 2, "data.csv is a symbolic link");
    assert!(!root.path().join("escaping.tar").exists());
}

/// The creator's bundle is replaced on the server by another valid bundle: every party, the
/// creator included, refuses it and unpacks nothing.
#[test]
fn a_bundle_swapped_on_the_server_is_refused_by_every_party() {
    let root = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&root.path().join("server"), "127.0.0.1:0");
    let invite = create_survey(&server, root.path());
    let evil = root.path().join("evil");
    std::fs::create_dir(&evil).expect("folder");
    std::fs::write(evil.join("survey.py"), "import os; os.system('evil')\n").expect("evil");
    let evil_tar = root.path().join("evil.tar");
    succeed(mpcnet(
        &root.path().join("mallory"),
        &[
            "pack",
            evil.to_str().expect("utf-8"),
            "--out",
            evil_tar.to_str().expect("utf-8"),
        ],
    ));
    let evil_bytes = std::fs::read(&evil_tar).expect("evil bundle");
    server
        .database()
        .execute("UPDATE lobbies SET program = ?1", [evil_bytes])
        .expect("update");
    for party in PARTIES {
        let home = root.path().join(party);
        let output = mpcnet(&home, &["status", &invite]);
        assert_fails(&output, 1, "VERIFICATION FAILED: the program");
        let sessions = home.join("sessions");
        let unpacked = std::fs::read_dir(&sessions)
            .into_iter()
            .flatten()
            .flatten()
            .any(|session| session.path().join("bundle").exists());
        assert!(!unpacked, "{party} unpacked a bundle it refused");
    }
}

/// The entry point, edited in the offer the server stores (to another file of the bundle):
/// the creator's signature no longer holds, and every party refuses the session.
#[test]
fn an_entry_point_edited_in_the_servers_database_is_refused_by_every_party() {
    let root = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&root.path().join("server"), "127.0.0.1:0");
    let invite = create_survey(&server, root.path());
    let db = server.database();
    let offer: String = db
        .query_row("SELECT offer FROM lobbies", [], |row| row.get(0))
        .expect("offer");
    let edited = crate::lobby::edit_payload(&offer, None, |payload| {
        payload["program"]["main"] = "scoring.py".into();
    });
    db.execute("UPDATE lobbies SET offer = ?1", [edited])
        .expect("update");
    for party in PARTIES {
        let output = mpcnet(&root.path().join(party), &["status", &invite]);
        assert_fails(&output, 1, "VERIFICATION FAILED: bad Offer signature");
    }
}
