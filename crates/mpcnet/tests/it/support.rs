//! What the integration tests share: a real `mpcnet serve` process, and `mpcnet` run as a party
//! in its own home.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

pub const MPCNET: &str = env!("CARGO_BIN_EXE_mpcnet");

/// A running `mpcnet serve`, killed when dropped.
pub struct Server {
    child: Child,
    pub address: String,
    data: PathBuf,
}

impl Server {
    pub fn start(data: &Path, listen: &str) -> Self {
        Self::start_with(data, listen, &[])
    }

    pub fn start_with(data: &Path, listen: &str, extra: &[&str]) -> Self {
        let mut args = vec!["serve", "--listen", listen, "--metrics-listen", "off"];
        args.extend(extra);
        Self::spawn(&args, data)
    }

    /// A relay (`mpcnet relay`) for the sessions of `lobby` (its `--server` value).
    pub fn start_relay(data: &Path, lobby: &str) -> Self {
        Self::spawn(
            &["relay", "--listen", "127.0.0.1:0", "--lobby", lobby],
            data,
        )
    }

    /// Starts `mpcnet ARGS --data DATA` and reads the address it prints first.
    fn spawn(args: &[&str], data: &Path) -> Self {
        let mut child = Command::new(MPCNET)
            .args(args)
            .arg("--data")
            .arg(data)
            .env("MPCNET_HOME", data.join("home"))
            .stdout(Stdio::piped())
            .stderr(server_log(data))
            .spawn()
            .expect("mpcnet starts");
        let stdout = child.stdout.take().expect("stdout");
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = sender.send(line);
        });
        let address = receiver
            .recv_timeout(Duration::from_secs(30))
            .expect("it prints its address within 30 s")
            .trim()
            .to_owned();
        assert!(
            address.starts_with("https://127.0.0.1:"),
            "first line: {address:?}"
        );
        Self {
            child,
            address,
            data: data.into(),
        }
    }

    pub fn port(&self) -> u16 {
        let authority = self
            .address
            .trim_start_matches("https://")
            .split('#')
            .next()
            .expect("authority");
        authority
            .rsplit(':')
            .next()
            .expect("port")
            .parse()
            .expect("numeric port")
    }

    pub fn database(&self) -> rusqlite::Connection {
        let connection =
            rusqlite::Connection::open(self.data.join("lobbies.sqlite3")).expect("database");
        connection
            .busy_timeout(Duration::from_secs(5))
            .expect("busy timeout");
        connection
    }
}

/// The server's log (stderr), kept in its data folder, which is made if needed.
fn server_log(data: &Path) -> std::fs::File {
    std::fs::create_dir_all(data).expect("server data folder");
    std::fs::File::create(data.join("server.log")).expect("server log")
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `mpcnet ARGS` as the party whose home is `home`.
pub fn mpcnet(home: &Path, args: &[&str]) -> Output {
    mpcnet_with(home, args, &[], None)
}

pub fn mpcnet_with(
    home: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: Option<&str>,
) -> Output {
    let mut command = Command::new(MPCNET);
    command
        .args(args)
        .env("MPCNET_HOME", home)
        .env_remove("MPCNET_INVITE")
        .envs(env.iter().copied())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("mpcnet runs");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    }
    child.wait_with_output().expect("mpcnet finishes")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn succeed(output: Output) -> String {
    assert!(output.status.success(), "failed: {}", stderr(&output));
    stdout(&output)
}

/// Alice (home `root/alice`) creates a lobby of `parties` on `server`, with a one-line program.
pub fn create_lobby(server: &str, root: &Path, parties: &str) -> Output {
    let program = root.join("p.py");
    std::fs::write(&program, "print('p')\n").expect("program");
    let program = program.to_str().expect("utf-8");
    mpcnet(
        &root.join("alice"),
        &[
            "create",
            "--server",
            server,
            "--parties",
            parties,
            "--program",
            program,
        ],
    )
}

/// Asserts that `output` failed with `code` and said `expected` on stderr.
pub fn assert_fails(output: &Output, code: i32, expected: &str) {
    let message = stderr(output);
    assert_eq!(output.status.code(), Some(code), "{message}");
    assert!(
        message.contains(expected),
        "expected {expected:?} in: {message}"
    );
}

/// Alice (home `root/alice`) creates a session of three named "salary survey" for `program`,
/// with `public_args`; returns the invite (the one line `create` prints).
pub fn create_session(
    server: &Server,
    root: &Path,
    program: &Path,
    public_args: &[&str],
) -> String {
    create_session_with(server, root, program, &[], public_args)
}

/// [`create_session`] with `extra` flags for `create`.
pub fn create_session_with(
    server: &Server,
    root: &Path,
    program: &Path,
    extra: &[&str],
    public_args: &[&str],
) -> String {
    let program = program.to_str().expect("utf-8");
    let mut args = vec![
        "create",
        "--server",
        &server.address,
        "--parties",
        "3",
        "--program",
        program,
    ];
    args.extend(extra);
    args.extend(["--party-name", "alice", "--name", "salary survey", "--"]);
    args.extend(public_args);
    let created = succeed(mpcnet(&root.join("alice"), &args));
    assert_eq!(
        created.lines().count(),
        1,
        "create prints the invite alone: {created}"
    );
    created.trim().to_owned()
}

/// A session of three in three homes under `root`: alice creates it, bob and carol join.
pub fn three_party_session(server: &Server, root: &Path) -> String {
    let program = root.join("mean.py");
    std::fs::write(&program, "print('mean')\n").expect("program");
    let invite = create_session(server, root, &program, &["--rounds", "3"]);
    for (index, name) in ["bob", "carol"].iter().enumerate() {
        let joined = succeed(mpcnet(&root.join(name), &["join", &invite, "--name", name]));
        assert_eq!(joined.trim(), (index + 1).to_string());
    }
    invite
}

/// The identity line `mpcnet id` prints in `home` for `name` (created on first use).
pub fn identity_line(home: &Path, name: &str) -> String {
    let line = succeed(mpcnet(home, &["id", "--name", name]));
    assert_eq!(line.lines().count(), 1, "id prints one line: {line}");
    line.trim().to_owned()
}

/// Alice (home `root/alice`) creates a session named for bob and carol (in that order, their
/// identity lines in a parties file after alice's own) with `program` and `public_args`;
/// returns the invite. No one has joined but alice.
pub fn create_named_session(
    server: &Server,
    root: &Path,
    program: &Path,
    public_args: &[&str],
) -> String {
    let [alice, bob, carol] = PARTIES.map(|name| identity_line(&root.join(name), name));
    let file = root.join("parties.txt");
    let listed =
        format!("# alice lists herself first, then the others\n{alice}\n\n{bob}\n{carol}\n");
    std::fs::write(&file, listed).expect("parties file");
    let mut args = vec![
        "create",
        "--server",
        &server.address,
        "--program",
        program.to_str().expect("utf-8"),
        "--parties-file",
        file.to_str().expect("utf-8"),
        "--party-name",
        "alice",
        "--",
    ];
    args.extend(public_args);
    let created = succeed(mpcnet(&root.join("alice"), &args));
    assert_eq!(created.lines().count(), 1, "create prints the invite alone");
    created.trim().to_owned()
}

/// A named session of three in three homes under `root`: carol joins before bob, who still
/// takes seat 1; every party has joined, alice has not sealed yet.
pub fn named_three_party_session(server: &Server, root: &Path) -> String {
    let program = root.join("mean.py");
    std::fs::write(&program, "print('mean')\n").expect("program");
    let invite = create_named_session(server, root, &program, &["--rounds", "3"]);
    for (name, seat) in [("carol", "2"), ("bob", "1")] {
        let joined = succeed(mpcnet(&root.join(name), &["join", &invite, "--name", name]));
        assert_eq!(joined.trim(), seat, "{name} takes its listed seat");
    }
    invite
}

/// Calls `found` every `every` until it finds something, for at most `limit`; fails naming
/// `what` (and the last thing `found` was given to say) if it never does.
pub fn poll_until<T>(
    limit: Duration,
    every: Duration,
    what: &str,
    mut found: impl FnMut() -> Option<T>,
) -> T {
    let started = std::time::Instant::now();
    loop {
        if let Some(thing) = found() {
            return thing;
        }
        assert!(started.elapsed() < limit, "{what} within {limit:?}");
        std::thread::sleep(every);
    }
}

/// Polls `status --json` in `home` until the session's run there is running; returns that status.
pub fn wait_until_running(home: &Path, invite: &str) -> Value {
    let running = |status: &Value| status["run"]["state"] == "running";
    poll_until(
        Duration::from_secs(60),
        Duration::from_millis(100),
        "running",
        || Some(status_json(home, invite)).filter(running),
    )
}

pub fn status_json(home: &Path, invite: &str) -> Value {
    serde_json::from_str(&succeed(mpcnet(home, &["status", invite, "--json"])))
        .expect("status JSON")
}

/// One finished `mpcnet run` (or any child): its exit code and output.
#[derive(Debug)]
pub struct Finished {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs every command at once (stdout and stderr captured) and waits for all, killing any
/// still running after `limit`.
pub fn run_all(commands: Vec<Command>, limit: Duration) -> Vec<Finished> {
    let mut children: Vec<(Child, mpsc::Receiver<String>, mpsc::Receiver<String>)> = commands
        .into_iter()
        .map(|mut command| {
            let mut child = command
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("child starts");
            let stdout = drain(child.stdout.take().expect("stdout"));
            let stderr = drain(child.stderr.take().expect("stderr"));
            (child, stdout, stderr)
        })
        .collect();
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline
        && children
            .iter_mut()
            .any(|(child, ..)| matches!(child.try_wait(), Ok(None)))
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    children
        .into_iter()
        .map(|(mut child, stdout, stderr)| {
            let _ = child.kill();
            let status = child.wait().expect("child reaped");
            // A grandchild left behind could hold a pipe open: do not wait for it forever.
            let read = |pipe: mpsc::Receiver<String>| {
                pipe.recv_timeout(Duration::from_secs(10))
                    .unwrap_or_default()
            };
            Finished {
                code: status.code(),
                stdout: read(stdout),
                stderr: read(stderr),
            }
        })
        .collect()
}

fn drain(mut pipe: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        let _ = sender.send(text);
    });
    receiver
}

/// `mpcnet ARGS` as the party whose home is `home`, not yet started.
pub fn mpcnet_command(home: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(MPCNET);
    command
        .args(args)
        .env("MPCNET_HOME", home)
        .env_remove("MPCNET_INVITE");
    command
}

/// Where the example programs are.
pub fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name)
}

/// The names of the three parties; alice creates.
pub const PARTIES: [&str; 3] = ["alice", "bob", "carol"];
/// The most any one run of three parties may take.
pub const RUN_LIMIT: Duration = Duration::from_secs(120);

/// `mpcnet run` for party `name` on loopback, with `extra` flags.
pub fn run_command(root: &Path, invite: &str, name: &str, extra: &[&str]) -> std::process::Command {
    let mut args = vec![
        "run",
        invite,
        "--yes",
        "--name",
        name,
        "--bind",
        "127.0.0.1:0",
    ];
    if !extra.contains(&"--timeout") {
        args.extend(["--timeout", "60s"]);
    }
    args.extend(extra);
    mpcnet_command(&root.join(name), &args)
}

/// Asserts every party exited 0 and printed `expected` in its program output. When one did
/// not, the message shows every party's exit code and the ends of its output (a failure's
/// cause is there, often in another party's view, and CI shows a report's ends only).
pub fn assert_all_answer(finished: &[Finished], expected: &str) {
    let parties = || PARTIES.iter().zip(finished);
    if parties().any(|(_, party)| party.code != Some(0)) {
        let views: Vec<String> = parties()
            .map(|(name, party)| {
                format!(
                    "--- {name} exited {:?}:\n{}\n{}",
                    party.code,
                    last_lines(&party.stdout, 5),
                    last_lines(&party.stderr, 25)
                )
            })
            .collect();
        panic!("not every party exited 0:\n{}", views.join("\n"));
    }
    for (name, party) in parties() {
        assert!(
            party.stdout.contains(expected),
            "{name} printed no {expected:?}:\n{}",
            party.stdout
        );
    }
}

/// Asserts `party` failed (exit 1) saying `expected`.
pub fn assert_fails_with(party: &Finished, expected: &str) {
    assert_eq!(party.code, Some(1), "{}", party.stderr);
    assert!(
        party.stderr.contains(expected),
        "expected {expected:?} in:\n{}",
        party.stderr
    );
}

/// The last `count` lines of `text`, after a line saying how many came before.
fn last_lines(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let skipped = lines.len().saturating_sub(count);
    let shown = lines[skipped..].join("\n");
    if skipped == 0 {
        shown
    } else {
        format!("[{skipped} lines before]\n{shown}")
    }
}

/// The party ("party 1 (bob)") a failure report blames: the one that failed, as it told
/// itself, or the one another party says it stopped its run because of.
pub fn blamed_party(report: &str) -> Option<&str> {
    if let Some((_, rest)) = report.split_once("stopped its run because of ") {
        return rest.split(';').next();
    }
    let (before, _) = report.split_once(" failed (")?;
    before.rfind("party ").map(|start| &before[start..])
}

/// An MPyC program whose party 1 exits with code 3 right after connecting; the others would
/// sum one input each.
pub const FAILS_AT_PARTY_ONE: &str = "from mpyc.runtime import mpc\n\n\nasync def main():\n    await mpc.start()\n    if mpc.pid == 1:\n        raise SystemExit(3)\n    total = await mpc.output(mpc.sum(mpc.input(mpc.SecInt(16)(1))))\n    await mpc.shutdown()\n    print('RESULT', total)\n\n\nmpc.run(main())\n";
