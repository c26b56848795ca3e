//! Identity proofs against a real OpenID provider (panva/node-oidc-provider, `tests/oidc/`) on
//! loopback over HTTPS: three parties prove `*@uni.example` accounts by the device flow or the
//! loopback redirect with PKCE (the test acting as each user over HTTP), every party verifies
//! every other's proof and the MPC runs; a party without a proof, with another email, or with another party's token is refused
//! a seat, and one with a forged signature is seated by the server but refused by every party.
//! Without node and npm the tests say so and pass, unless `MPCNET_REQUIRE_OIDC=1` (set by CI).

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use mpcnet_client::LobbyClient;
use mpcnet_proto::identity_proof::proof_nonce;
use mpcnet_proto::{Identity, IdentityProof, Invite, Label, SignedJoin};

use crate::support::*;

const CLIENT_ID: &str = "mpcnet-test";
const PROVIDER_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oidc");

/// The test OpenID provider, killed when dropped.
pub struct Provider {
    child: Child,
    pub issuer: String,
    /// Its certificate: the CA mpcnet and the test's user agent trust for it.
    ca: PathBuf,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn has(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

impl Provider {
    /// Starts the provider under a certificate made in `dir`, or `None` (saying why) without node.
    pub fn start(dir: &Path) -> Option<Self> {
        if !has("node") || !has("npm") {
            assert!(
                std::env::var("MPCNET_REQUIRE_OIDC").as_deref() != Ok("1"),
                "MPCNET_REQUIRE_OIDC=1 but node or npm is missing (apt-get install nodejs npm)"
            );
            eprintln!("skipped: node and npm are needed for the test OpenID provider");
            return None;
        }
        install_provider();
        let certified =
            rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).expect("certificate");
        let (ca, key) = (dir.join("oidc-ca.pem"), dir.join("oidc-key.pem"));
        std::fs::write(&ca, certified.cert.pem()).expect("write certificate");
        std::fs::write(&key, certified.signing_key.serialize_pem()).expect("write key");
        let mut child = Command::new("node")
            .arg(Path::new(PROVIDER_DIR).join("provider.mjs"))
            .args([&ca, &key])
            .arg(CLIENT_ID)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.join("oidc-provider.log")).expect("log"))
            .spawn()
            .expect("node starts");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut issuer = String::new();
        stdout
            .read_line(&mut issuer)
            .expect("the provider prints its issuer");
        // oidc-provider writes notices to stdout: keep reading, or its next write kills it.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        let issuer = issuer.trim().to_owned();
        assert!(
            issuer.starts_with("https://127.0.0.1:"),
            "issuer {issuer:?}"
        );
        Some(Self { child, issuer, ca })
    }

    /// The user approves the device flow at `url`, logging in as `email`.
    fn approve(&self, url: &str, email: &str) {
        let output = Command::new("node")
            .arg(Path::new(PROVIDER_DIR).join("approve.mjs"))
            .args([url, email])
            .env("NODE_EXTRA_CA_CERTS", &self.ca)
            .output()
            .expect("node runs");
        assert!(
            output.status.success(),
            "approving as {email}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// `mpcnet` for party `name` of `root`, trusting the provider's certificate.
    fn mpcnet(&self, root: &Path, name: &str, args: &[&str]) -> Command {
        let mut command = mpcnet_command(&root.join(name), args);
        command.env("MPCNET_OIDC_EXTRA_CA", &self.ca);
        command
    }

    /// The flags that prove an identity at this provider.
    fn prove_flags(&self) -> [&str; 4] {
        ["--prove-with", &self.issuer, "--client-id", CLIENT_ID]
    }
}

/// `npm ci` of the provider's locked packages, once for all the tests (which run at once).
fn install_provider() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        if Path::new(PROVIDER_DIR)
            .join("node_modules/oidc-provider")
            .exists()
        {
            return;
        }
        let status = Command::new("npm")
            .args([
                "ci",
                "--ignore-scripts",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
            ])
            .current_dir(PROVIDER_DIR)
            .status()
            .expect("npm runs");
        assert!(status.success(), "npm ci in {PROVIDER_DIR}");
    });
}

/// Runs `command`; when it shows a login's URL, the user approves it as `email`.
/// Returns the finished process's exit code and output.
fn run_approving(provider: &Provider, mut command: Command, email: &str) -> Finished {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mpcnet starts");
    let (lines, seen) = mpsc::channel();
    let stderr = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let mut stderr = String::new();
    let deadline = std::time::Instant::now() + RUN_LIMIT;
    while let Ok(line) = seen.recv_timeout(deadline - std::time::Instant::now()) {
        if let Some(url) = prompt_url(&line) {
            provider.approve(url, email);
        }
        stderr.push_str(&line);
        stderr.push('\n');
    }
    let _ = child.kill();
    let output = child.wait_with_output().expect("mpcnet finishes");
    Finished {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr,
    }
}

/// The verification URL in mpcnet's device flow prompt, if `line` is that prompt.
fn prompt_url(line: &str) -> Option<&str> {
    let rest = line.split_once("to prove your identity, open ")?.1;
    Some(rest.split_once(' ')?.0)
}

/// Runs every party's command at once, each approving as its email.
fn run_all_approving(provider: &Provider, runs: Vec<(Command, &str)>) -> Vec<Finished> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = runs
            .into_iter()
            .map(|(command, email)| scope.spawn(move || run_approving(provider, command, email)))
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().expect("party thread"))
            .collect()
    })
}

/// Malformed identity flags are bad input (exit 2), refused before any issuer is asked.
#[test]
fn malformed_identity_flags_are_bad_input() {
    let root = tempfile::tempdir().expect("tempdir");
    let server = Server::start(&root.path().join("server"), "127.0.0.1:0");
    let program = example("secret_mean.py");
    let create = |extra: &[&str]| {
        let mut args = vec![
            "create",
            "--server",
            &server.address,
            "--parties",
            "2",
            "--program",
            program.to_str().expect("utf-8"),
        ];
        args.extend(extra);
        mpcnet(&root.path().join("alice"), &args)
    };
    assert_fails(
        &create(&["--require-issuer", "http://login.uni.example"]),
        2,
        "the issuer \"http://login.uni.example\" is not an https URL",
    );
    assert_fails(
        &create(&[
            "--require-issuer",
            "https://login.uni.example",
            "--require-email",
            "b*b@uni.example",
        ]),
        2,
        "the email pattern \"b*b@uni.example\" is neither an address nor *@domain",
    );
    assert_fails(
        &create(&[
            "--prove-with",
            "http://login.uni.example",
            "--client-id",
            "mpcnet",
        ]),
        2,
        "--prove-with: the issuer \"http://login.uni.example\" is not an https URL",
    );
}

#[test]
fn a_required_issuer_spelled_otherwise_than_its_discovery_document_is_bad_input() {
    let root = tempfile::tempdir().expect("tempdir");
    let Some(provider) = Provider::start(root.path()) else {
        return;
    };
    let server = Server::start(&root.path().join("server"), "127.0.0.1:0");
    let program = example("secret_mean.py");
    let slashed = format!("{}/", provider.issuer);
    let args = [
        "create",
        "--server",
        &server.address,
        "--parties",
        "2",
        "--program",
        program.to_str().expect("utf-8"),
        "--require-issuer",
        &slashed,
    ];
    let created = run_approving(&provider, provider.mpcnet(root.path(), "alice", &args), "");
    assert_eq!(created.code, Some(2), "{}", created.stderr);
    assert!(
        created.stderr.contains(&format!(
            "its discovery document spells it {:?}; give exactly that",
            provider.issuer
        )),
        "{}",
        created.stderr
    );
}

/// Alice creates a session of three requiring `*@uni.example` at the provider, proving hers.
pub fn create_requiring_identity(provider: &Provider, server: &Server, root: &Path) -> String {
    let program = example("secret_mean.py");
    let program = [
        "--parties",
        "3",
        "--program",
        program.to_str().expect("utf-8"),
    ];
    create_requiring_identity_with(provider, server, root, &program)
}

/// Alice creates a session of `program_args` (what names the program and the parties) that
/// requires a proof from `provider` for `*@uni.example`, proving her own; returns the invite.
fn create_requiring_identity_with(
    provider: &Provider,
    server: &Server,
    root: &Path,
    program_args: &[&str],
) -> String {
    let mut args = vec!["create", "--server", &server.address];
    args.extend(program_args);
    args.extend([
        "--party-name",
        "alice",
        "--require-issuer",
        &provider.issuer,
        "--require-email",
        "*@uni.example",
    ]);
    args.extend(provider.prove_flags());
    let command = provider.mpcnet(root, "alice", &args);
    let created = run_approving(provider, command, "alice@uni.example");
    assert_eq!(created.code, Some(0), "create: {}", created.stderr);
    created.stdout.trim().to_owned()
}

/// The README's flow from `mpcnet id` to the result: a named session of a catalog example
/// requiring proofs; every party proves its account and verifies every other's.
#[test]
fn parties_proving_required_identities_run_and_each_verifies_every_proof() {
    let root = tempfile::tempdir().expect("tempdir");
    let Some(provider) = Provider::start(root.path()) else {
        return;
    };
    let server = Server::start(&root.path().join("server"), "127.0.0.1:0");
    // The README's flow: bob and carol send their `mpcnet id` lines, alice lists them and picks
    // the program from the server's catalog.
    let listed = ["bob", "carol"].map(|name| identity_line(&root.path().join(name), name));
    let parties_file = root.path().join("parties.txt");
    std::fs::write(&parties_file, listed.join("\n")).expect("parties file");
    let parties_file = parties_file.to_str().expect("utf-8");
    let program = ["--example", "secret-mean", "--parties-file", parties_file];
    let invite = create_requiring_identity_with(&provider, &server, root.path(), &program);

    let runs = PARTIES
        .iter()
        .map(|name| {
            let mut command = run_command(root.path(), &invite, name, &[]);
            command.env("MPCNET_OIDC_EXTRA_CA", &provider.ca);
            if *name != "alice" {
                command.args(provider.prove_flags());
            }
            // Carol logs in through a browser on her machine (the loopback redirect with PKCE).
            if *name == "carol" {
                command.args(["--login", "loopback"]);
            }
            (command, *name)
        })
        .collect::<Vec<_>>();
    let emails = ["alice@uni.example", "bob@uni.example", "carol@uni.example"];
    let runs = runs
        .into_iter()
        .zip(emails)
        .map(|((command, _), email)| (command, email))
        .collect();
    let finished = run_all_approving(&provider, runs);
    assert_all_answer(&finished, "RESULT sum=60 mean=20 parties=3");
    let carol = &finished[2].stderr;
    assert!(
        carol.contains(
            "/auth?response_type=code&client_id=mpcnet-test&redirect_uri=http%3A%2F%2F127.0.0.1%3A"
        ),
        "{carol}"
    );
    assert!(
        carol.contains("code_challenge_method=S256 in a browser on this machine"),
        "{carol}"
    );
    assert!(
        finished[1].stderr.contains("/device?user_code="),
        "{}",
        finished[1].stderr
    );
    for party in &finished {
        let shown = format!(
            "(carol): carol@uni.example (verified by {})",
            provider.issuer
        );
        assert!(party.stderr.contains(&shown), "{}", party.stderr);
    }

    for name in PARTIES {
        let command = provider.mpcnet(root.path(), name, &["status", &invite]);
        let status = run_approving(&provider, command, "nobody@uni.example");
        assert_eq!(status.code, Some(0), "{name}'s status: {}", status.stderr);
        assert!(
            status.stdout.contains(&format!(
                "identity required from {}, email *@uni.example",
                provider.issuer
            )),
            "{}",
            status.stdout
        );
        assert!(
            status.stdout.contains("named: only these keys may join"),
            "{}",
            status.stdout
        );
        for email in emails {
            let shown = format!("{email} (verified by {})", provider.issuer);
            assert!(
                status.stdout.contains(&shown),
                "{name} shows no {shown:?}:\n{}",
                status.stdout
            );
        }
    }
}

#[test]
fn a_party_without_a_proof_of_its_own_is_refused_a_seat_and_a_forged_proof_by_every_party() {
    let root = tempfile::tempdir().expect("tempdir");
    let root = root.path();
    let Some(provider) = Provider::start(root) else {
        return;
    };
    let server = Server::start(&root.join("server"), "127.0.0.1:0");
    let invite = create_requiring_identity(&provider, &server, root);
    let join = |flags: &[&str]| {
        let mut args = vec!["join", &invite, "--name", "mallory"];
        args.extend(flags);
        provider.mpcnet(root, "mallory", &args)
    };

    let without = run_approving(&provider, join(&[]), "mallory@uni.example");
    assert_eq!(without.code, Some(2), "{}", without.stderr);
    assert!(
        without.stderr.contains(&format!(
            "this session requires an identity proof from {0}: join with --prove-with {0} --client-id ID",
            provider.issuer
        )),
        "{}",
        without.stderr
    );
    let elsewhere = run_approving(
        &provider,
        join(&provider.prove_flags()),
        "mallory@evil.example",
    );
    assert_fails_with(
        &elsewhere,
        "the session requires an email matching \"*@uni.example\"; the proof shows mallory@evil.example",
    );

    // Alice's genuine token, in a join record signed by mallory's own key.
    let invite: Invite = invite.parse().expect("invite");
    let refusal = post_join(&invite, |alices_proof, _| Some(alices_proof)).expect_err("refused");
    assert!(
        refusal.contains("nonce is not this party's for this lobby"),
        "{refusal}"
    );
    // No proof at all, past mpcnet's own check: the server refuses.
    let refusal = post_join(&invite, |_, _| None).expect_err("refused");
    assert!(
        refusal.contains(&format!(
            "has no identity proof from {}, which this session requires",
            provider.issuer
        )),
        "{refusal}"
    );
    // Nothing was seated: alice is alone.
    let ca = [("MPCNET_OIDC_EXTRA_CA", provider.ca.to_str().expect("utf-8"))];
    let invite_text = invite.to_string();
    let status = mpcnet_with(
        &root.join("alice"),
        &["status", &invite_text, "--json"],
        &ca,
        None,
    );
    let status: serde_json::Value = serde_json::from_str(&stdout(&status)).expect("status JSON");
    assert_eq!(
        status["parties"].as_array().map(Vec::len),
        Some(1),
        "{status}"
    );
    assert_eq!(
        status["parties"][0]["identity"]["email"],
        "alice@uni.example"
    );

    // Claims that fit mallory, under the signature of alice's token: the server (which checks
    // claims, not signatures) seats her, and then every party refuses the session.
    post_join(&invite, |alices_proof, mallory| {
        let claims = serde_json::json!({
            "iss": provider.issuer, "sub": "mallory@uni.example", "aud": CLIENT_ID,
            "nonce": proof_nonce(&invite.lobby_id(), &mallory.public()),
            "email": "mallory@uni.example", "email_verified": true,
            "iat": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)
                .expect("clock").as_secs(),
        });
        let (header, rest) = alices_proof.id_token.split_once('.').expect("JWS");
        let signature = rest.rsplit_once('.').expect("JWS").1;
        let claims = data_encoding::BASE64URL_NOPAD.encode(claims.to_string().as_bytes());
        Some(IdentityProof {
            id_token: format!("{header}.{claims}.{signature}"),
            ..alices_proof
        })
    })
    .expect("the server seats a forged proof whose claims fit");
    let refused = mpcnet_with(&root.join("alice"), &["status", &invite_text], &ca, None);
    assert_fails(&refused, 1, "VERIFICATION FAILED: party ");
    assert_fails(
        &refused,
        1,
        "identity proof is refused: the issuer's published keys do not verify the ID token's signature",
    );
}

/// Posts a join of a new party (mallory) to `invite`'s lobby, carrying the proof `proof`
/// makes from alice's genuine one and mallory's identity; the server's refusal, if any.
fn post_join(
    invite: &Invite,
    proof: impl FnOnce(IdentityProof, &Identity) -> Option<IdentityProof>,
) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let client = LobbyClient::new(&invite.server).expect("client");
        let snapshot = client.snapshot(&invite.lobby_id()).await.expect("snapshot");
        let verified = snapshot.verify(&invite.anchors()).expect("verifies");
        let (alices_proof, _) = verified.parties[0].identity.clone().expect("alice's proof");
        let mallory = Identity::generate();
        let name = Label::new("name", "mallory").expect("label");
        let proof = proof(alices_proof, &mallory);
        let join =
            SignedJoin::with_identity(&mallory, name, &invite.secret, &snapshot.offer, proof);
        client
            .join(&invite.lobby_id(), &join)
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    })
}
