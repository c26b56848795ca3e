//! The lobby API through its router: the happy path, then malformed and refused requests, each
//! answered with the right status and a JSON error body.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use http::{Method, Request, StatusCode};
use http_body_util::BodyExt as _;
use mpcnet_proto::api::{ApiErrorBody, CreateLobby, ServerInfo, SessionPhase, SessionView};
use mpcnet_proto::bundle::{Bundle, BundlePath};
use mpcnet_proto::offer::ProgramInfo;
use mpcnet_proto::run_report::{LinkPath, LinkStatus, RunState};
use mpcnet_proto::{
    EndpointAnnouncement, Identity, JoinSecret, Label, LobbyOffer, LobbySnapshot, RunReport,
    SignedAnnouncement, SignedJoin, SignedOffer,
};
use mpcnet_server::Limits;
use mpcnet_server::api::{ApiConfig, ApiState, router};
use mpcnet_server::metrics::Metrics;
use mpcnet_server::quota::ClientAddress;
use mpcnet_server::store::Store;
use tower::ServiceExt as _;

const MAX_PROGRAM_BYTES: usize = 4096;

/// What is wrong, the request (method, path, body), and the expected status and error code.
type BadRequestCase = (
    &'static str,
    Method,
    String,
    Vec<u8>,
    StatusCode,
    &'static str,
);

struct Fixture {
    app: axum::Router,
    metrics: Arc<Metrics>,
    creator: Identity,
    secret: JoinSecret,
    _dir: tempfile::TempDir,
}

fn label(text: &str) -> Label {
    Label::new("name", text).expect("label")
}

fn fixture() -> Fixture {
    fixture_with(Limits {
        max_program_bytes: MAX_PROGRAM_BYTES,
        max_lobbies: 2,
        max_lobbies_per_creator: 1,
        ..Limits::default()
    })
}

fn fixture_with(limits: Limits) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let metrics = Arc::new(Metrics::default());
    let state = ApiState::new(
        Store::open(&dir.path().join("lobbies.sqlite3")).expect("store"),
        metrics.clone(),
        ApiConfig {
            lobby_ttl: Duration::from_secs(3600),
            limits,
            info: ServerInfo {
                version: "test".into(),
                relay_quic_port: None,
                certificate: None,
                max_program_bytes: limits.max_program_bytes as u64,
            },
        },
    );
    Fixture {
        app: router(state),
        metrics,
        creator: Identity::generate(),
        secret: JoinSecret::generate(),
        _dir: dir,
    }
}

fn create_request(fixture: &Fixture, parties: u16, program: &[u8]) -> CreateLobby {
    let offer = LobbyOffer {
        lobby_id: fixture.secret.lobby_id(),
        name: label("test"),
        parties,
        creator: fixture.creator.public(),
        join_key: fixture.secret.join_key().public(),
        program: ProgramInfo::describe(label("mean.py"), program),
        args: Vec::new(),
        relay_url: "https://127.0.0.1:7000/".parse().expect("url"),
        extra_relays: Vec::new(),
        seats: Vec::new(),
        require_identity: None,
        roles: Vec::new(),
    };
    let offer = SignedOffer::create(&offer, &fixture.creator).expect("offer");
    CreateLobby {
        creator_join: SignedJoin::new(&fixture.creator, label("alice"), &fixture.secret, &offer),
        offer,
        program: program.to_vec(),
    }
}

async fn send(
    app: &axum::Router,
    method: Method,
    path: &str,
    body: Vec<u8>,
) -> (StatusCode, Vec<u8>) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .expect("request");
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec();
    (status, bytes)
}

impl Fixture {
    /// `party` joins the fixture's lobby of `offer` under `name`: the answer's status and body.
    async fn join_as(
        &self,
        party: &Identity,
        name: &str,
        offer: &SignedOffer,
    ) -> (StatusCode, Vec<u8>) {
        let join = SignedJoin::new(party, label(name), &self.secret, offer);
        let path = format!("/v1/lobbies/{}/joins", self.secret.lobby_id());
        send(&self.app, Method::POST, &path, json(&join)).await
    }

    /// The creator seals the fixture's lobby as it now stands: the answer's status.
    async fn seal(&self) -> StatusCode {
        let id = self.secret.lobby_id();
        let (status, body) = send(
            &self.app,
            Method::GET,
            &format!("/v1/lobbies/{id}"),
            Vec::new(),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let snapshot: LobbySnapshot = serde_json::from_slice(&body).expect("snapshot");
        let manifest = json(&snapshot.seal(&self.creator));
        let path = format!("/v1/lobbies/{id}/manifest");
        send(&self.app, Method::PUT, &path, manifest).await.0
    }
}

fn json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("serializes")
}

#[tokio::test]
async fn a_lobby_is_created_joined_sealed_and_served_as_signed() {
    let fixture = fixture();
    let id = fixture.secret.lobby_id();
    let request = create_request(&fixture, 2, b"x=1");
    let (status, _) = send(&fixture.app, Method::POST, "/v1/lobbies", json(&request)).await;
    assert_eq!(status, StatusCode::CREATED);

    let bob = Identity::generate();
    let (status, body) = fixture.join_as(&bob, "bob", &request.offer).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let (status, _) = fixture.join_as(&bob, "bob", &request.offer).await;
    assert_eq!(status, StatusCode::OK, "a repeated join is idempotent");

    assert_eq!(fixture.seal().await, StatusCode::NO_CONTENT);

    let announcement =
        EndpointAnnouncement::sign(id, &bob, 2, vec!["127.0.0.1:4444".parse().expect("addr")]);
    let endpoints = format!("/v1/lobbies/{id}/endpoints");
    let (status, _) = send(&fixture.app, Method::PUT, &endpoints, json(&announcement)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let stranger = EndpointAnnouncement::sign(id, &Identity::generate(), 2, Vec::new());
    let (status, body) = send(&fixture.app, Method::PUT, &endpoints, json(&stranger)).await;
    let error: ApiErrorBody = serde_json::from_slice(&body).expect("json error");
    assert_eq!(
        (status, error.code.as_str()),
        (StatusCode::FORBIDDEN, "not_member")
    );
    let (status, body) = send(&fixture.app, Method::GET, &endpoints, Vec::new()).await;
    assert_eq!(status, StatusCode::OK);
    let listed: Vec<SignedAnnouncement> = serde_json::from_slice(&body).expect("announcements");
    assert_eq!(listed, vec![announcement.clone()]);

    // A newer announcement replaces it; the old one replayed is refused as stale, and the
    // lobby keeps serving the newer one (no old address shows again).
    let moved =
        EndpointAnnouncement::sign(id, &bob, 3, vec!["127.0.0.1:5555".parse().expect("addr")]);
    let (status, _) = send(&fixture.app, Method::PUT, &endpoints, json(&moved)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for replayed in [&announcement, &moved] {
        let (status, body) = send(&fixture.app, Method::PUT, &endpoints, json(replayed)).await;
        let error: ApiErrorBody = serde_json::from_slice(&body).expect("json error");
        assert_eq!(
            (status, error.code.as_str()),
            (StatusCode::CONFLICT, "stale")
        );
    }
    let (_, body) = send(&fixture.app, Method::GET, &endpoints, Vec::new()).await;
    let listed: Vec<SignedAnnouncement> = serde_json::from_slice(&body).expect("announcements");
    assert_eq!(listed, vec![moved]);

    // Run reports feed the session page's view; a stranger's is refused.
    let view_path = format!("/v1/lobbies/{id}/view");
    let view = |body: Vec<u8>| -> SessionView { serde_json::from_slice(&body).expect("view") };
    let (status, body) = send(&fixture.app, Method::GET, &view_path, Vec::new()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(view(body).phase, SessionPhase::Sealed);
    let running = |party: &Identity, peer: u16| RunReport {
        lobby_id: id,
        party: party.public(),
        at_unix_ms: 2,
        state: RunState::Running,
        links: vec![LinkStatus {
            peer,
            path: LinkPath::Relayed,
            rtt_ms: Some(2.5),
            unreachable_s: None,
        }],
    };
    let runs = format!("/v1/lobbies/{id}/runs");
    let report = running(&bob, 0).sign(&bob);
    let (status, _) = send(&fixture.app, Method::PUT, &runs, json(&report)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let stranger = Identity::generate();
    let forged = running(&stranger, 0).sign(&stranger);
    let (status, _) = send(&fixture.app, Method::PUT, &runs, json(&forged)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // An older report of bob's (or the same one again) does not replace the one kept.
    let mut older = running(&bob, 0);
    older.state = RunState::Linking;
    older.at_unix_ms = 1;
    for stale in [older.sign(&bob), report.clone()] {
        let (status, _) = send(&fixture.app, Method::PUT, &runs, json(&stale)).await;
        assert_eq!(status, StatusCode::CONFLICT);
    }
    let (_, body) = send(&fixture.app, Method::GET, &view_path, Vec::new()).await;
    let shown = view(body);
    assert_eq!(shown.phase, SessionPhase::Running);
    assert_eq!(shown.parties[1].run, Some(RunState::Running));
    assert_eq!(shown.parties[0].run, None);
    assert_eq!(
        (
            shown.links.len(),
            shown.links[0].parties,
            shown.links[0].path
        ),
        (1, [0, 1], LinkPath::Relayed)
    );

    let (status, program) = send(
        &fixture.app,
        Method::GET,
        &format!("/v1/lobbies/{id}/program"),
        Vec::new(),
    )
    .await;
    assert_eq!(
        (status, program.as_slice()),
        (StatusCode::OK, b"x=1".as_slice())
    );
}

#[tokio::test]
async fn malformed_and_refused_requests_get_clear_json_errors() {
    let fixture = fixture();
    let id = fixture.secret.lobby_id();
    let good = create_request(&fixture, 3, b"x=1");
    let (status, _) = send(&fixture.app, Method::POST, "/v1/lobbies", json(&good)).await;
    assert_eq!(status, StatusCode::CREATED);
    let joins = format!("/v1/lobbies/{id}/joins");

    let mut wrong_program = create_request(&fixture, 3, b"x=1");
    wrong_program.program = b"x=2".to_vec();
    let other = fixture_with_other_secret(&fixture);
    let mut too_large = create_request(&other, 3, &vec![b'#'; MAX_PROGRAM_BYTES + 1]);
    too_large.program = vec![b'#'; MAX_PROGRAM_BYTES + 1];
    let stranger = Identity::generate();
    let no_secret = SignedJoin::new(
        &stranger,
        label("mallory"),
        &JoinSecret::generate(),
        &good.offer,
    );
    let early_seal = LobbySnapshot {
        offer: good.offer.clone(),
        joins: vec![good.creator_join.clone()],
        manifest: None,
    }
    .seal(&fixture.creator);
    let unknown = JoinSecret::generate().lobby_id();

    let cases: Vec<BadRequestCase> = vec![
        (
            "not JSON",
            Method::POST,
            "/v1/lobbies".into(),
            b"{not json".to_vec(),
            StatusCode::BAD_REQUEST,
            "bad_json",
        ),
        (
            "body over the limit",
            Method::POST,
            "/v1/lobbies".into(),
            vec![b' '; 1_000_000],
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
        ),
        (
            "wrong shape",
            Method::POST,
            "/v1/lobbies".into(),
            b"{\"offer\":1}".to_vec(),
            StatusCode::BAD_REQUEST,
            "bad_json",
        ),
        (
            "same lobby twice",
            Method::POST,
            "/v1/lobbies".into(),
            json(&good),
            StatusCode::CONFLICT,
            "lobby_exists",
        ),
        (
            "program not as signed",
            Method::POST,
            "/v1/lobbies".into(),
            json(&wrong_program),
            StatusCode::UNPROCESSABLE_ENTITY,
            "program_mismatch",
        ),
        (
            "program too large",
            Method::POST,
            "/v1/lobbies".into(),
            json(&too_large),
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
        ),
        (
            "bad lobby id",
            Method::GET,
            "/v1/lobbies/not-an-id".into(),
            Vec::new(),
            StatusCode::BAD_REQUEST,
            "bad_lobby_id",
        ),
        (
            "unknown lobby",
            Method::GET,
            format!("/v1/lobbies/{unknown}"),
            Vec::new(),
            StatusCode::NOT_FOUND,
            "lobby_not_found",
        ),
        (
            "unknown lobby's program",
            Method::GET,
            format!("/v1/lobbies/{unknown}/program"),
            Vec::new(),
            StatusCode::NOT_FOUND,
            "lobby_not_found",
        ),
        (
            "join without the secret",
            Method::POST,
            joins.clone(),
            json(&no_secret),
            StatusCode::FORBIDDEN,
            "bad_signature",
        ),
        (
            "join with an empty body",
            Method::POST,
            joins.clone(),
            Vec::new(),
            StatusCode::BAD_REQUEST,
            "bad_json",
        ),
        (
            "seal before full",
            Method::PUT,
            format!("/v1/lobbies/{id}/manifest"),
            json(&early_seal),
            StatusCode::CONFLICT,
            "lobby_not_full",
        ),
        (
            "unknown path",
            Method::GET,
            "/v2/anything".into(),
            Vec::new(),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "wrong method",
            Method::DELETE,
            format!("/v1/lobbies/{id}"),
            Vec::new(),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
    ];
    for (what, method, path, body, expected_status, expected_code) in cases {
        let (status, bytes) = send(&fixture.app, method, &path, body).await;
        let error: ApiErrorBody = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "{what}: not a JSON error ({e}): {}",
                String::from_utf8_lossy(&bytes)
            )
        });
        assert_eq!(
            (status, error.code.as_str()),
            (expected_status, expected_code),
            "{what}: {}",
            error.message
        );
        assert_eq!(error.status, status.as_u16(), "{what}");
        assert!(!error.message.is_empty(), "{what}");
    }
    let refused = |code: &'static str| {
        let label = mpcnet_server::metrics::OutcomeLabel { outcome: code };
        fixture.metrics.api_errors.get_or_create(&label).get()
    };
    assert_eq!(
        refused("bad_json"),
        3,
        "every refusal is counted by its code"
    );
    assert_eq!(refused("lobby_not_found"), 2);
}

/// A create request for a bundle: `bytes` described as a bundle run from `main`, with seat 0
/// running `lead` if given (a role).
fn bundle_request(fixture: &Fixture, bytes: &[u8], main: &str, lead: Option<&str>) -> CreateLobby {
    let mut request = create_request(fixture, 3, bytes);
    let mut offer = request.offer.decode_unverified().expect("decodes");
    let path = |text: &str| BundlePath::new(text).expect("bundle path");
    offer.program = ProgramInfo::describe_bundle(label("survey"), bytes, path(main));
    offer.roles = lead
        .map(|lead| mpcnet_proto::Role {
            seats: vec![0],
            main: path(lead),
            args: None,
        })
        .into_iter()
        .collect();
    request.offer = SignedOffer::create(&offer, &fixture.creator).expect("offer");
    request.creator_join = SignedJoin::new(
        &fixture.creator,
        label("alice"),
        &fixture.secret,
        &request.offer,
    );
    request
}

/// The server stores a bundle only if the parties would take it: well formed, canonical,
/// with its signed entry point and every role's.
#[tokio::test]
async fn a_bundle_is_stored_only_if_the_parties_would_take_it() {
    let survey = |name: &str| (BundlePath::new(name).expect("path"), b"print(1)\n".to_vec());
    let bundle = Bundle::from_files([survey("survey.py"), survey("scoring.py")])
        .expect("bundle")
        .to_bytes();
    let mut unsorted = bundle.clone();
    unsorted.rotate_left(1024); // survey.py first, scoring.py after the end blocks
    // What is wrong (nothing, for the first two), the bytes, the entry point signed and seat
    // 0's role's, if it has one.
    let cases: &[(&str, &[u8], &str, Option<&str>)] = &[
        ("nothing", &bundle, "survey.py", None),
        (
            "nothing, with a role",
            &bundle,
            "survey.py",
            Some("scoring.py"),
        ),
        ("no such entry point", &bundle, "main.py", None),
        (
            "no such entry point of a role",
            &bundle,
            "survey.py",
            Some("lead.py"),
        ),
        ("not a bundle", b"print(1)\n", "survey.py", None),
        ("not canonical", &unsorted, "survey.py", None),
    ];
    for (index, (what, bytes, main, lead)) in cases.iter().enumerate() {
        let fixture = fixture_with(Limits::default());
        let request = bundle_request(&fixture, bytes, main, *lead);
        let (status, body) = send(&fixture.app, Method::POST, "/v1/lobbies", json(&request)).await;
        if index < 2 {
            assert_eq!(
                status,
                StatusCode::CREATED,
                "{}",
                String::from_utf8_lossy(&body)
            );
            continue;
        }
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{what}");
        let error: ApiErrorBody = serde_json::from_slice(&body).expect("JSON error");
        assert_eq!(error.code, "bad_bundle", "{what}");
    }
}

#[tokio::test]
async fn a_full_lobby_refuses_another_join() {
    let fixture = fixture();
    let request = create_request(&fixture, 2, b"x");
    send(&fixture.app, Method::POST, "/v1/lobbies", json(&request)).await;
    let (bob, carol) = (Identity::generate(), Identity::generate());
    let (status, _) = fixture.join_as(&bob, "bob", &request.offer).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = fixture.join_as(&carol, "carol", &request.offer).await;
    let error: ApiErrorBody = serde_json::from_slice(&body).expect("json error");
    assert_eq!(
        (status, error.code.as_str()),
        (StatusCode::CONFLICT, "lobby_full")
    );
}

fn fixture_with_other_secret(fixture: &Fixture) -> Fixture {
    Fixture {
        app: fixture.app.clone(),
        metrics: fixture.metrics.clone(),
        creator: fixture.creator.clone(),
        secret: JoinSecret::generate(),
        _dir: tempfile::tempdir().expect("tempdir"),
    }
}

#[tokio::test]
async fn lobbies_beyond_the_cap_are_refused_until_some_expire() {
    let fixture = fixture();
    for _ in 0..2 {
        let other = fixture_with_other_secret(&fixture);
        let (status, _) = send(
            &fixture.app,
            Method::POST,
            "/v1/lobbies",
            json(&create_request(&other, 2, b"x")),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let third = fixture_with_other_secret(&fixture);
    let (status, body) = send(
        &fixture.app,
        Method::POST,
        "/v1/lobbies",
        json(&create_request(&third, 2, b"x")),
    )
    .await;
    let error: ApiErrorBody = serde_json::from_slice(&body).expect("json error");
    assert_eq!(
        (status, error.code.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "server_full")
    );
}

#[tokio::test]
async fn pages_are_built_in_and_locked_down_and_the_event_stream_pushes_changes() {
    let fixture = fixture();
    let id = fixture.secret.lobby_id();
    let page = |path: &str| {
        let request = Request::builder()
            .uri(path)
            .body(Body::empty())
            .expect("request");
        fixture.app.clone().oneshot(request)
    };
    let created = page("/").await.expect("infallible");
    assert_eq!(created.status(), StatusCode::OK);
    let policy = created.headers()["content-security-policy"]
        .to_str()
        .expect("ascii");
    assert!(policy.starts_with("default-src 'none';"), "{policy}");
    assert!(policy.contains("script-src 'self';"), "{policy}");
    for loophole in ["unsafe", "http", "*", "data:", "blob:"] {
        assert!(!policy.contains(loophole), "{loophole} in {policy}");
    }
    assert_eq!(created.headers()["x-content-type-options"], "nosniff");
    let script = page("/assets/create.js").await.expect("infallible");
    assert_eq!(
        script.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    for missing in [
        "/assets/../Cargo.toml",
        "/assets/nothing.js",
        &format!("/s/{id}"),
    ] {
        let answer = page(missing).await.expect("infallible");
        assert_eq!(answer.status(), StatusCode::NOT_FOUND, "{missing}");
    }

    let request = create_request(&fixture, 2, b"x=1");
    let (status, _) = send(&fixture.app, Method::POST, "/v1/lobbies", json(&request)).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        page(&format!("/s/{id}/share"))
            .await
            .expect("infallible")
            .status(),
        StatusCode::OK
    );
    // A party's statements are small: a padded one is refused before it is read.
    let padded = vec![b' '; 20 * 1024];
    let (status, _) = send(
        &fixture.app,
        Method::PUT,
        &format!("/v1/lobbies/{id}/runs"),
        padded,
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let events = page(&format!("/v1/lobbies/{id}/events"))
        .await
        .expect("infallible");
    assert_eq!(events.headers()["content-type"], "text/event-stream");
    let mut body = events.into_body();
    let mut next_view = async || -> SessionView {
        let mut text = String::new();
        while !text.contains("\n\n") {
            let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
                .await
                .expect("an event within 10 s")
                .expect("open stream")
                .expect("frame");
            if let Ok(data) = frame.into_data() {
                text.push_str(std::str::from_utf8(&data).expect("utf-8"));
            }
        }
        let data = text
            .lines()
            .find_map(|line| line.strip_prefix("data: "))
            .unwrap_or_else(|| panic!("an event with data: {text:?}"));
        serde_json::from_str(data).expect("a session view")
    };
    let first = next_view().await;
    assert_eq!((first.phase, first.parties.len()), (SessionPhase::Open, 1));
    let bob = Identity::generate();
    let (status, _) = fixture.join_as(&bob, "bob", &request.offer).await;
    assert_eq!(status, StatusCode::CREATED);
    let second = next_view().await;
    assert_eq!(
        (second.phase, second.parties[1].name.as_str()),
        (SessionPhase::Full, "bob")
    );
}

#[tokio::test]
async fn one_address_may_hold_only_so_many_live_lobbies() {
    let fixture = fixture();
    let create_from = |address: &str, request: &CreateLobby| {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri("/v1/lobbies")
            .body(Body::from(json(request)))
            .expect("request");
        let address = address.parse().expect("address");
        request.extensions_mut().insert(ClientAddress(address));
        fixture.app.clone().oneshot(request)
    };
    let first = create_request(&fixture, 2, b"x=1");
    let answer = create_from("10.0.0.1", &first).await.expect("infallible");
    assert_eq!(answer.status(), StatusCode::CREATED);
    let second = create_request(&fixture_with_other_secret(&fixture), 2, b"x=1");
    let answer = create_from("10.0.0.1", &second).await.expect("infallible");
    assert_eq!(answer.status(), StatusCode::TOO_MANY_REQUESTS);
    let answer = create_from("10.0.0.2", &second).await.expect("infallible");
    assert_eq!(answer.status(), StatusCode::CREATED, "another address may");
}

#[tokio::test]
async fn live_pages_are_limited_per_address_and_a_closed_one_frees_its_place() {
    let fixture = fixture();
    let id = fixture.secret.lobby_id();
    let request = create_request(&fixture, 2, b"x=1");
    let (status, _) = send(&fixture.app, Method::POST, "/v1/lobbies", json(&request)).await;
    assert_eq!(status, StatusCode::CREATED);
    let follow = |address: &str| {
        let mut request = Request::builder()
            .uri(format!("/v1/lobbies/{id}/events"))
            .body(Body::empty())
            .expect("request");
        let address = address.parse().expect("address");
        request.extensions_mut().insert(ClientAddress(address));
        fixture.app.clone().oneshot(request)
    };
    let mut open = Vec::new();
    for _ in 0..16 {
        let page = follow("10.0.0.1").await.expect("infallible");
        assert_eq!(page.status(), StatusCode::OK);
        open.push(page);
    }
    let refused = follow("10.0.0.1").await.expect("infallible");
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    let elsewhere = follow("10.0.0.2").await.expect("infallible");
    assert_eq!(elsewhere.status(), StatusCode::OK);
    drop(open.pop());
    let again = follow("10.0.0.1").await.expect("infallible");
    assert_eq!(
        again.status(),
        StatusCode::OK,
        "a closed page freed its place"
    );
}

/// Creates the fixture's lobby with `parties` parties, joins them all and seals it; returns
/// the create request and every party's identity (the creator first).
async fn sealed_lobby(fixture: &Fixture, parties: u16) -> (CreateLobby, Vec<Identity>) {
    let request = create_request(fixture, parties, b"x=1");
    let (status, _) = send(&fixture.app, Method::POST, "/v1/lobbies", json(&request)).await;
    assert_eq!(status, StatusCode::CREATED);
    let mut members = vec![fixture.creator.clone()];
    for index in 1..parties {
        let party = Identity::generate();
        let name = format!("party {index}");
        let (status, _) = fixture.join_as(&party, &name, &request.offer).await;
        assert_eq!(status, StatusCode::CREATED);
        members.push(party);
    }
    assert_eq!(fixture.seal().await, StatusCode::NO_CONTENT);
    (request, members)
}

/// Sends a request as if from client `address` (as the HTTPS listener marks it).
async fn send_from(
    app: &axum::Router,
    address: &str,
    method: Method,
    path: &str,
    body: Vec<u8>,
) -> (StatusCode, String) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .body(Body::from(body))
        .expect("request");
    answer_from(app.clone(), address, request).await
}

/// The status and error code `app` answers to `request` from client `address`.
async fn answer_from(
    app: axum::Router,
    address: &str,
    mut request: Request<Body>,
) -> (StatusCode, String) {
    let address = address.parse().expect("address");
    request.extensions_mut().insert(ClientAddress(address));
    let response = app.oneshot(request).await.expect("infallible");
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let code = serde_json::from_slice::<ApiErrorBody>(&bytes).map_or(String::new(), |e| e.code);
    (status, code)
}

fn report(id: mpcnet_proto::LobbyId, party: &Identity, at_unix_ms: u64) -> Vec<u8> {
    let report = RunReport {
        lobby_id: id,
        party: party.public(),
        at_unix_ms,
        state: RunState::Linking,
        links: Vec::new(),
    };
    json(&report.sign(party))
}

#[tokio::test]
async fn a_lobby_is_verified_once_per_change_however_many_read_its_view() {
    let fixture = fixture_with(Limits::default());
    let id = fixture.secret.lobby_id();
    let (_, members) = sealed_lobby(&fixture, 64).await;
    let view_path = format!("/v1/lobbies/{id}/view");
    for _ in 0..40 {
        let (status, _) = send(&fixture.app, Method::GET, &view_path, Vec::new()).await;
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(
        fixture.metrics.views_made.get(),
        1,
        "forty readers, one view"
    );
    let runs = format!("/v1/lobbies/{id}/runs");
    let (status, _) = send(&fixture.app, Method::PUT, &runs, report(id, &members[5], 1)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for _ in 0..10 {
        let (_, body) = send(&fixture.app, Method::GET, &view_path, Vec::new()).await;
        let view: SessionView = serde_json::from_slice(&body).expect("view");
        assert_eq!(view.parties.len(), 64);
    }
    assert_eq!(
        fixture.metrics.views_made.get(),
        2,
        "a change makes one new view"
    );
}

#[tokio::test]
async fn an_address_sending_requests_too_fast_is_refused_and_others_are_not() {
    let fixture = fixture_with(Limits {
        requests_per_address: mpcnet_server::Rate::new(1, 5),
        ..Limits::default()
    });
    for _ in 0..5 {
        let (status, _) =
            send_from(&fixture.app, "10.0.0.1", Method::GET, "/v1/info", vec![]).await;
        assert_eq!(status, StatusCode::OK);
    }
    let refused = send_from(&fixture.app, "10.0.0.1", Method::GET, "/v1/info", vec![]).await;
    assert_eq!(
        refused,
        (StatusCode::TOO_MANY_REQUESTS, "too_many_requests".into())
    );
    let other = send_from(&fixture.app, "10.0.0.2", Method::GET, "/v1/info", vec![]).await;
    assert_eq!(other.0, StatusCode::OK);
}

#[tokio::test]
async fn a_party_sending_statements_too_fast_is_refused_and_others_are_not() {
    let fixture = fixture_with(Limits {
        statements_per_party: mpcnet_server::Rate::new(1, 3),
        ..Limits::default()
    });
    let id = fixture.secret.lobby_id();
    let (_, members) = sealed_lobby(&fixture, 3).await;
    let runs = format!("/v1/lobbies/{id}/runs");
    for at in 1..=3 {
        let (status, _) = send(
            &fixture.app,
            Method::PUT,
            &runs,
            report(id, &members[1], at),
        )
        .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }
    let (status, body) = send(&fixture.app, Method::PUT, &runs, report(id, &members[1], 4)).await;
    let error: ApiErrorBody = serde_json::from_slice(&body).expect("json error");
    assert_eq!(
        (status, error.code.as_str()),
        (StatusCode::TOO_MANY_REQUESTS, "too_many_statements")
    );
    let (status, _) = send(&fixture.app, Method::PUT, &runs, report(id, &members[2], 1)).await;
    assert_eq!(
        status,
        StatusCode::NO_CONTENT,
        "another party has its own rate"
    );
}

#[tokio::test]
async fn bodies_are_limited_per_route_and_uploads_by_a_budget_in_flight() {
    let fixture = fixture_with(Limits::default());
    let id = fixture.secret.lobby_id();
    let (request, _) = sealed_lobby(&fixture, 2).await;
    let join = SignedJoin::new(
        &Identity::generate(),
        label("pad"),
        &fixture.secret,
        &request.offer,
    );
    let mut padded = json(&join);
    padded.extend(std::iter::repeat_n(b' ', 11 << 20));
    let joins = format!("/v1/lobbies/{id}/joins");
    let (status, body) = send(&fixture.app, Method::POST, &joins, padded).await;
    let error: ApiErrorBody = serde_json::from_slice(&body).expect("json error");
    assert_eq!(
        (status, error.code.as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
        "a join padded to 11 MB"
    );
    let manifest = format!("/v1/lobbies/{id}/manifest");
    let (status, _) = send(&fixture.app, Method::PUT, &manifest, vec![b' '; 600 << 10]).await;
    assert_eq!(
        status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "a manifest over 512 KiB"
    );

    let tight = fixture_with(Limits {
        upload_bytes_in_flight: 1000,
        ..Limits::default()
    });
    let create = json(&create_request(&tight, 2, b"x=1"));
    assert!(create.len() > 1000);
    let (status, body) = send(&tight.app, Method::POST, "/v1/lobbies", create).await;
    let error: ApiErrorBody = serde_json::from_slice(&body).expect("json error");
    assert_eq!(
        (status, error.code.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "server_busy"),
        "a body larger than the upload budget left now"
    );
}

#[tokio::test]
async fn stored_program_bytes_are_capped_in_all_and_per_creating_address() {
    let fixture = fixture_with(Limits {
        max_program_bytes: 4096,
        stored_program_bytes: 5000,
        stored_program_bytes_per_creator: 3000,
        ..Limits::default()
    });
    let program = vec![b'#'; 2000];
    let create_from = async |address: &str| {
        let other = fixture_with_other_secret(&fixture);
        let body = json(&create_request(&other, 2, &program));
        send_from(&fixture.app, address, Method::POST, "/v1/lobbies", body).await
    };
    assert_eq!(create_from("10.0.0.1").await.0, StatusCode::CREATED);
    assert_eq!(
        create_from("10.0.0.1").await,
        (
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_program_bytes".into()
        ),
        "4000 bytes from one address, 3000 allowed"
    );
    assert_eq!(create_from("10.0.0.2").await.0, StatusCode::CREATED);
    assert_eq!(
        create_from("10.0.0.3").await,
        (StatusCode::SERVICE_UNAVAILABLE, "server_full".into()),
        "6000 bytes in all, 5000 allowed"
    );
}

#[tokio::test]
async fn live_pages_are_limited_per_lobby() {
    let fixture = fixture_with(Limits {
        live_pages_per_lobby: 3,
        ..Limits::default()
    });
    let id = fixture.secret.lobby_id();
    sealed_lobby(&fixture, 2).await;
    let events = format!("/v1/lobbies/{id}/events");
    let mut open = Vec::new();
    for address in ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"] {
        let mut request = Request::builder()
            .uri(&events)
            .body(Body::empty())
            .expect("request");
        let address = address.parse().expect("address");
        request.extensions_mut().insert(ClientAddress(address));
        open.push(
            fixture
                .app
                .clone()
                .oneshot(request)
                .await
                .expect("infallible"),
        );
    }
    let statuses: Vec<StatusCode> = open.iter().map(|page| page.status()).collect();
    assert_eq!(
        statuses,
        [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::SERVICE_UNAVAILABLE
        ],
        "three pages of one lobby, from any addresses"
    );
}

/// A create body that declares its length (`.0` bytes) and never sends a byte: a create answered
/// while its body is outstanding was refused before the body was read.
struct Stalled(u64);

impl http_body::Body for Stalled {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
        std::task::Poll::Pending
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.0)
    }
}

/// Starts a create of `length` declared bytes from `address` that never sends its body.
fn stalled_create(
    fixture: &Fixture,
    address: &str,
    length: u64,
) -> tokio::task::JoinHandle<(StatusCode, String)> {
    let request = Request::builder()
        .method(Method::POST)
        .uri("/v1/lobbies")
        .body(Body::new(Stalled(length)))
        .expect("request");
    let (app, address) = (fixture.app.clone(), address.to_string());
    tokio::spawn(async move { answer_from(app, &address, request).await })
}

/// The answer to a stalled create within a moment, or `None` if the server is (rightly)
/// waiting for its body.
async fn answer_at_once(
    create: tokio::task::JoinHandle<(StatusCode, String)>,
) -> Option<(StatusCode, String)> {
    tokio::time::sleep(Duration::from_millis(300)).await;
    if create.is_finished() {
        Some(create.await.expect("task"))
    } else {
        create.abort();
        None
    }
}

#[tokio::test]
async fn a_create_that_cannot_succeed_is_refused_before_its_body_is_read() {
    const MIB: u64 = 1 << 20;
    let fixture = fixture_with(Limits {
        max_program_bytes: 8 << 20,
        stored_program_bytes_per_creator: 2 << 20,
        max_lobbies_per_creator: 1,
        uploads_per_address: 2,
        ..Limits::default()
    });
    // Two uploads in flight hold one address's two places; a third is refused at once, while
    // another address's upload is waited for as usual.
    let holding = [
        stalled_create(&fixture, "10.0.0.1", MIB),
        stalled_create(&fixture, "10.0.0.1", MIB),
    ];
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        answer_at_once(stalled_create(&fixture, "10.0.0.1", MIB)).await,
        Some((StatusCode::TOO_MANY_REQUESTS, "too_many_uploads".into()))
    );
    assert_eq!(
        answer_at_once(stalled_create(&fixture, "10.0.0.2", MIB)).await,
        None,
        "another address's upload is read"
    );
    for upload in holding {
        assert!(!upload.is_finished(), "both were waiting for their bodies");
        upload.abort();
    }
    // A body that must hold more program than the address may store: refused unread.
    assert_eq!(
        answer_at_once(stalled_create(&fixture, "10.0.0.3", 4 * MIB)).await,
        Some((
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_program_bytes".into()
        ))
    );
    // An address holding all its lobby places: refused unread.
    let create = json(&create_request(&fixture, 2, b"x=1"));
    let made = send_from(
        &fixture.app,
        "10.0.0.4",
        Method::POST,
        "/v1/lobbies",
        create,
    )
    .await;
    assert_eq!(made.0, StatusCode::CREATED);
    assert_eq!(
        answer_at_once(stalled_create(&fixture, "10.0.0.4", MIB)).await,
        Some((StatusCode::TOO_MANY_REQUESTS, "too_many_lobbies".into()))
    );
}

/// A session named for bob and carol: carol joins first and takes seat 2, a holder of the
/// invite the list does not name is refused as `not_listed` (before and after the others
/// join), bob takes seat 1, and the view shows every seat taken.
#[tokio::test]
async fn a_named_lobby_seats_only_its_listed_keys_in_list_order() {
    let fixture = fixture();
    let (bob, carol, dave) = (
        Identity::generate(),
        Identity::generate(),
        Identity::generate(),
    );
    let mut request = create_request(&fixture, 3, b"x");
    let mut offer = request.offer.decode_unverified().expect("offer");
    offer.seats = [&fixture.creator, &bob, &carol]
        .map(|party| mpcnet_proto::Seat {
            key: party.public(),
            name: None,
        })
        .to_vec();
    request.offer = SignedOffer::create(&offer, &fixture.creator).expect("named offer");
    request.creator_join = SignedJoin::new(
        &fixture.creator,
        label("alice"),
        &fixture.secret,
        &request.offer,
    );
    let (status, _) = send(&fixture.app, Method::POST, "/v1/lobbies", json(&request)).await;
    assert_eq!(status, StatusCode::CREATED);

    let joined = |body: Vec<u8>| -> u16 {
        serde_json::from_slice::<mpcnet_proto::api::Joined>(&body)
            .expect("joined")
            .index
    };
    let not_listed = async || {
        let (status, body) = fixture.join_as(&dave, "dave", &request.offer).await;
        let error: ApiErrorBody = serde_json::from_slice(&body).expect("json error");
        assert_eq!(
            (status, error.code.as_str()),
            (StatusCode::FORBIDDEN, "not_listed")
        );
        assert!(
            error.message.contains(&dave.public().did_key()),
            "{}",
            error.message
        );
    };
    let (status, body) = fixture.join_as(&carol, "carol", &request.offer).await;
    assert_eq!((status, joined(body)), (StatusCode::CREATED, 2));
    not_listed().await;
    let (status, body) = fixture.join_as(&bob, "bob", &request.offer).await;
    assert_eq!((status, joined(body)), (StatusCode::CREATED, 1));
    not_listed().await;
    assert_eq!(fixture.seal().await, StatusCode::NO_CONTENT);

    let id = fixture.secret.lobby_id();
    let (_, body) = send(
        &fixture.app,
        Method::GET,
        &format!("/v1/lobbies/{id}/view"),
        Vec::new(),
    )
    .await;
    let view: SessionView = serde_json::from_slice(&body).expect("view");
    let names: Vec<(u16, &str)> = view
        .parties
        .iter()
        .map(|p| (p.index, p.name.as_str()))
        .collect();
    assert_eq!(names, [(0, "alice"), (1, "bob"), (2, "carol")]);
    assert_eq!(view.seats.len(), 3);
    assert!(view.seats.iter().all(|seat| seat.taken));
    assert_eq!(view.seats[2].did, carol.public().did_key());
}
