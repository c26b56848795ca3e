//! The flows a party runs against a lobby: create, join, status (which seals a full lobby
//! when the creator runs it), each verifying everything the server returns.

use std::path::{Path, PathBuf};
use std::time::Duration;

use mpcnet_proto::RunReport;
use mpcnet_proto::api::{CreateLobby, SeatView};
use mpcnet_proto::label::printable;
use mpcnet_proto::lobby::VerifiedLobby;
use mpcnet_proto::offer::ProgramInfo;
use mpcnet_proto::roles::{self, Role};
use mpcnet_proto::run_report::RunState;
use mpcnet_proto::{
    Bundle, BundleError, BundlePath, Identity, IdentityProof, IdentityRequirement, Invite,
    JoinSecret, Label, LobbyId, LobbyOffer, ProvenIdentity, Seat, ServerAddress, Sha256Digest,
    SignedJoin, SignedOffer, VerifyError,
};
use serde::Serialize;

use crate::home::{Home, HomeError};
use crate::lobby_client::{ClientError, LobbyClient};
use crate::oidc::{OidcClient, OidcError, ProofCheckError, ProofChecker, ProveWith};

/// Why a session flow failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Home(#[from] HomeError),
    #[error(
        "VERIFICATION FAILED: {0}. The lobby server returned data the session's creator did not sign; do not run this session"
    )]
    Verification(#[from] VerifyError),
    #[error(
        "VERIFICATION FAILED: the program {origin} does not match the SHA-256 the creator signed ({expected}, got {actual}); do not run it"
    )]
    ProgramMismatch {
        origin: String,
        expected: String,
        actual: String,
    },
    #[error("cannot read the program {path}: {source}")]
    ReadProgram {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid program bundle: {0}")]
    Bundle(BundleError),
    #[error(
        "VERIFICATION FAILED: the program bundle the creator signed cannot be used: {0}; do not run it"
    )]
    BadBundle(BundleError),
    #[error("invalid input: {0}")]
    Input(String),
    #[error("identity proof: {0}")]
    Identity(#[from] OidcError),
    #[error(
        "this session is for named parties and your key {did} is not one of them: ask its creator to list you (`mpcnet id` prints your key)"
    )]
    NotListed { did: String },
    #[error(
        "the session was not sealed within {waited:.1?}: {} of {expected} parties joined ({}); the others have not run `mpcnet join` or `mpcnet run`{}",
        joined.len(), joined.join(", "), if joined.len() == usize::from(*expected) { " (the creator seals it: is the creator's mpcnet running?)" } else { "" }
    )]
    NotSealed {
        joined: Vec<String>,
        expected: u16,
        waited: Duration,
    },
}

impl From<ProofCheckError> for SessionError {
    fn from(error: ProofCheckError) -> Self {
        match error {
            ProofCheckError::Oidc(error) => Self::Identity(error),
            ProofCheckError::Refused(error) => Self::Verification(error),
        }
    }
}

impl SessionError {
    /// Whether the error lies in what the user gave (exit code 2) rather than in what happened.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            Self::Input(_) | Self::ReadProgram { .. } | Self::Bundle(_)
        )
    }
}

/// A running run's status older than this means the run is gone.
const RUN_STATUS_STALE_MS: u128 = 5_000;

/// How often a waiting party asks the lobby whether the session is sealed.
const SEAL_POLL_PERIOD: Duration = Duration::from_millis(100);

/// What the creator decides when making a session.
#[derive(Debug, Clone)]
pub struct SessionPlan {
    pub server: ServerAddress,
    pub parties: u16,
    /// One file, a folder (packed as a bundle), or a bundle `mpcnet pack` made.
    pub program: PathBuf,
    /// A bundle's entry point; for a folder with one `.py` file at its top, that file.
    pub main: Option<String>,
    /// The session's name; the program's file name if `None`.
    pub name: Option<String>,
    /// The creator's own name as a party.
    pub party_name: String,
    /// Public arguments every party passes to the program.
    pub args: Vec<String>,
    /// Relays besides the lobby server's (`mpcnet relay`), that links move to if one dies.
    pub extra_relays: Vec<ServerAddress>,
    /// The named seats, the creator's first (see `mpcnet_proto::seats::with_creator`), one per
    /// party; empty for a session open to anyone holding the invite.
    pub seats: Vec<Seat>,
    /// The identity proof every party must attach.
    pub require_identity: Option<IdentityRequirement>,
    /// How the creator proves its own identity.
    pub prove: Option<ProveWith>,
    /// An asymmetric program's roles (entry points of the bundle); empty: every seat runs `main`.
    pub roles: Vec<Role>,
}

/// Creates a lobby on the server and returns the invite to share.
pub async fn create(identity: &Identity, plan: &SessionPlan) -> Result<Invite, SessionError> {
    let (program, program_info) = attach_program(plan)?;
    let file_name = program_info.file_name.clone();
    let name = label(
        "the session name",
        plan.name.as_deref().unwrap_or(file_name.as_str()),
    )?;
    let party_name = label("your party name", &plan.party_name)?;

    let client = LobbyClient::new(&plan.server)?;
    // Ask the server first: a wrong address or pin fails here, before anything is signed.
    client.info().await?;
    let secret = JoinSecret::generate();
    let offer = LobbyOffer {
        lobby_id: secret.lobby_id(),
        name,
        parties: plan.parties,
        creator: identity.public(),
        join_key: secret.join_key().public(),
        program: program_info,
        args: plan.args.clone(),
        relay_url: plan.server.origin().clone(),
        extra_relays: plan.extra_relays.clone(),
        seats: plan.seats.clone(),
        require_identity: plan.require_identity.clone(),
        roles: plan.roles.clone(),
    };
    let offer =
        SignedOffer::create(&offer, identity).map_err(|e| SessionError::Input(e.to_string()))?;
    if let Some(required) = &plan.require_identity {
        check_issuer_spelling(&required.issuer).await?;
    }
    let proof = identity_proof(plan.prove.as_ref(), &secret.lobby_id(), identity).await?;
    let creator_join = SignedJoin::with_identity(identity, party_name, &secret, &offer, proof);
    let request = CreateLobby {
        offer,
        creator_join,
        program,
    };
    client.create(&request).await?;
    Ok(Invite {
        server: plan.server.clone(),
        creator: identity.public(),
        secret,
    })
}

/// The bytes to upload and their description: one file as it is, a folder packed as a bundle
/// (its name the folder's), or with `main` a file that must be a bundle already.
fn attach_program(plan: &SessionPlan) -> Result<(Vec<u8>, ProgramInfo), SessionError> {
    let path = &plan.program;
    let read_error = |source| SessionError::ReadProgram {
        path: path.clone(),
        source,
    };
    let is_folder = std::fs::metadata(path).map_err(read_error)?.is_dir();
    let file_name = program_name(path, is_folder, plan.main.is_some())?;
    if !is_folder && plan.main.is_none() && !plan.roles.is_empty() {
        return Err(SessionError::Input(
            "roles are entry points of a bundle: give --program a folder (a packed bundle with --main), or the role files alone without --program".into(),
        ));
    }
    if !is_folder && plan.main.is_none() {
        let contents = std::fs::read(path).map_err(read_error)?;
        let info = ProgramInfo::describe(file_name, &contents);
        return Ok((contents, info));
    }
    let bundle = match is_folder {
        true => Bundle::pack_dir(path),
        false => Bundle::parse(&std::fs::read(path).map_err(read_error)?),
    }
    .map_err(SessionError::Bundle)?;
    let main = default_entry_point(&bundle, plan).map_err(SessionError::Bundle)?;
    for role in &plan.roles {
        bundle
            .entry_point(Some(role.main.as_str()))
            .map_err(SessionError::Bundle)?;
    }
    let bytes = bundle.to_bytes();
    let info = ProgramInfo::describe_bundle(file_name, &bytes, main);
    Ok((bytes, info))
}

/// The entry point of the seats no role names: `main` if given; with roles covering every
/// seat, seat 0's (it never runs as the default, but marks the program a bundle); else the
/// bundle's one `.py` file at its top.
fn default_entry_point(bundle: &Bundle, plan: &SessionPlan) -> Result<BundlePath, BundleError> {
    let seat_zero = plan.roles.iter().find(|role| role.has(0));
    let covered = (0..plan.parties).all(|seat| plan.roles.iter().any(|role| role.has(seat)));
    match (&plan.main, seat_zero) {
        (None, Some(role)) if covered => Ok(role.main.clone()),
        (main, _) => bundle.entry_point(main.as_deref()),
    }
}

/// The name the offer gives the program: its file's, a folder's own (`.` is named too), or a
/// packed bundle's file name less `.tar`, as its folder would be named.
fn program_name(path: &Path, is_folder: bool, is_bundle: bool) -> Result<Label, SessionError> {
    let named = match is_folder {
        true => std::fs::canonicalize(path).map_err(|source| SessionError::ReadProgram {
            path: path.into(),
            source,
        })?,
        false => path.to_path_buf(),
    };
    let file_name = named
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let file_name = match is_bundle {
        true => file_name.strip_suffix(".tar").unwrap_or(&file_name),
        false => &file_name,
    };
    label("the program's file name", file_name)
}

/// The identity proof `prove` gets for `identity` in `lobby` (the user logs in), if any.
async fn identity_proof(
    prove: Option<&ProveWith>,
    lobby: &LobbyId,
    identity: &Identity,
) -> Result<Option<IdentityProof>, SessionError> {
    match prove {
        Some(prove) => Ok(Some(prove.prove(lobby, &identity.public()).await?)),
        None => Ok(None),
    }
}

/// Checks that `issuer` is spelled as its own discovery document spells it (as its tokens'
/// `iss` will be): a required issuer with a trailing slash too many would refuse every proof.
async fn check_issuer_spelling(issuer: &str) -> Result<(), SessionError> {
    match OidcClient::new()?.discover(issuer).await {
        Err(OidcError::IssuerMismatch { named, .. }) => Err(SessionError::Input(format!(
            "--require-issuer {issuer}: its discovery document spells it {named:?}; give exactly that"
        ))),
        Err(error) => Err(error.into()),
        Ok(_) => Ok(()),
    }
}

/// Joins the invite's lobby as `name` and returns the verified session. The join record commits
/// to the offer verified here; with `approved` (the SHA-256 of an offer the user reviewed) the
/// join is refused if the offer is another one now. With `prove`, a party not seated yet
/// first gets an identity proof (the user logs in) and signs it into its join record.
pub async fn join(
    home: &Home,
    identity: &Identity,
    invite: &Invite,
    name: &str,
    local_program: Option<&Path>,
    approved: Option<&Sha256Digest>,
    prove: Option<&ProveWith>,
) -> Result<SessionReport, SessionError> {
    let name = label("your party name", name)?;
    let client = LobbyClient::new(&invite.server)?;
    let snapshot = client.snapshot(&invite.lobby_id()).await?;
    let verified = snapshot.verify(&invite.anchors())?;
    if approved.is_some_and(|digest| *digest != Sha256Digest::of(snapshot.offer.payload())) {
        return Err(VerifyError::OfferChangedSinceReview.into());
    }
    if verified.party(&identity.public()).is_none() {
        if let (Some(required), None) = (&verified.offer.require_identity, prove) {
            return Err(SessionError::Input(format!(
                "this session requires an identity proof from {}: join with --prove-with {} --client-id ID",
                printable(&required.issuer),
                printable(&required.issuer)
            )));
        }
        let proof = identity_proof(prove, &invite.lobby_id(), identity).await?;
        let join =
            SignedJoin::with_identity(identity, name, &invite.secret, &snapshot.offer, proof);
        match client.join(&invite.lobby_id(), &join).await {
            Err(refused) if refused.code() == Some("not_listed") => {
                return Err(SessionError::NotListed {
                    did: identity.public().did_key(),
                });
            }
            joined => joined?,
        };
    }
    status(home, identity, invite, local_program).await
}

/// Fetches and verifies the session; the creator seals it here once every party has joined.
/// The program is fetched (or `local_program` read) and checked against the signed hash.
pub async fn status(
    home: &Home,
    identity: &Identity,
    invite: &Invite,
    local_program: Option<&Path>,
) -> Result<SessionReport, SessionError> {
    let client = LobbyClient::new(&invite.server)?;
    let (verified, sealed_now) =
        check(&client, identity, invite, &mut ProofChecker::default()).await?;
    let program = fetch_program(home, &client, &verified, local_program).await?;
    let runs = verified.members_statements(&client.run_reports(&invite.lobby_id()).await?);
    let mut report = SessionReport::new(invite, &verified, identity, program, sealed_now, &runs);
    report.run = read_run_status(&home.run_status_file(&invite.lobby_id()));
    Ok(report)
}

/// The status a run of this session on this machine left (see [`LocalRunStatus`]), if any.
fn read_run_status(path: &Path) -> Option<LocalRunStatus> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut run: LocalRunStatus = serde_json::from_str(&text).ok()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    run.age_ms = Some(now.saturating_sub(run.updated_unix_ms));
    if run.state == "running" && run.age_ms > Some(RUN_STATUS_STALE_MS) {
        run.state = "stopped".into();
    }
    Some(run)
}

/// Polls the lobby until the session is sealed (sealing it, as the creator, once full), then
/// fetches the program like [`status`]. `on_change` sees each new number of joined parties.
pub async fn wait_until_sealed(
    home: &Home,
    identity: &Identity,
    invite: &Invite,
    local_program: Option<&Path>,
    timeout: Duration,
    on_change: impl Fn(&VerifiedLobby),
) -> Result<SessionReport, SessionError> {
    let client = LobbyClient::new(&invite.server)?;
    let deadline = tokio::time::Instant::now() + timeout;
    let mut seen = usize::MAX;
    let mut proofs = ProofChecker::default();
    loop {
        let (verified, sealed_now) = check(&client, identity, invite, &mut proofs).await?;
        if verified.sealed.is_some() {
            let program = fetch_program(home, &client, &verified, local_program).await?;
            // What comes next is this party's run: the parties' run reports are not asked for.
            return Ok(SessionReport::new(
                invite,
                &verified,
                identity,
                program,
                sealed_now,
                &[],
            ));
        }
        if verified.parties.len() != seen {
            seen = verified.parties.len();
            on_change(&verified);
        }
        if tokio::time::Instant::now() >= deadline {
            let joined = verified
                .parties
                .iter()
                .map(|party| party.name.to_string())
                .collect();
            return Err(SessionError::NotSealed {
                joined,
                expected: verified.offer.parties,
                waited: timeout,
            });
        }
        tokio::time::sleep(SEAL_POLL_PERIOD).await;
    }
}

/// Fetches and verifies the lobby, the parties' identity proofs included; as the creator,
/// seals it if it is full and not yet sealed.
async fn check(
    client: &LobbyClient,
    identity: &Identity,
    invite: &Invite,
    proofs: &mut ProofChecker,
) -> Result<(VerifiedLobby, bool), SessionError> {
    let lobby_id = invite.lobby_id();
    let snapshot = client.snapshot(&lobby_id).await?;
    let verified = snapshot.verify(&invite.anchors())?;
    proofs.check(&verified).await?;
    if verified.sealed.is_some() || !verified.is_full() || identity.public() != invite.creator {
        return Ok((verified, false));
    }
    client.seal(&lobby_id, &snapshot.seal(identity)).await?;
    let verified = client
        .snapshot(&lobby_id)
        .await?
        .verify(&invite.anchors())?;
    proofs.check(&verified).await?;
    let sealed_now = verified.sealed.is_some();
    Ok((verified, sealed_now))
}

/// The program, checked against the signed hash. Fetched copies are saved in the home; a saved
/// copy that still matches the hash is used again instead of fetching it again.
async fn fetch_program(
    home: &Home,
    client: &LobbyClient,
    verified: &VerifiedLobby,
    local_program: Option<&Path>,
) -> Result<VerifiedProgram, SessionError> {
    let expected = &verified.offer.program;
    if expected.main.is_some() {
        return fetch_bundle(home, client, verified, local_program).await;
    }
    let lobby_id = &verified.offer.lobby_id;
    let single = |path: PathBuf| VerifiedProgram {
        path,
        bundle: None,
        roles: Vec::new(),
    };
    let (contents, origin) = match local_program {
        Some(path) => (read_program(path)?, path.display().to_string()),
        None => {
            let saved = home.program_path(lobby_id, expected.file_name.as_str());
            if std::fs::read(&saved).is_ok_and(|contents| expected.matches(&contents)) {
                return Ok(single(saved));
            }
            (
                client.program(lobby_id).await?,
                "fetched from the server".to_string(),
            )
        }
    };
    check_program(expected, &contents, origin)?;
    match local_program {
        Some(path) => Ok(single(path.to_path_buf())),
        None => Ok(single(home.save_program(
            lobby_id,
            expected.file_name.as_str(),
            &contents,
        )?)),
    }
}

/// A bundle, checked against the signed hash and entry point, unpacked into the home (the
/// copy unpacked before is used again while it still packs to the signed hash). A local
/// copy may be the folder itself or the packed bundle.
async fn fetch_bundle(
    home: &Home,
    client: &LobbyClient,
    verified: &VerifiedLobby,
    local_program: Option<&Path>,
) -> Result<VerifiedProgram, SessionError> {
    let expected = &verified.offer.program;
    let lobby_id = &verified.offer.lobby_id;
    let dir = home.bundle_dir(lobby_id);
    let saved = Bundle::pack_dir(&dir)
        .ok()
        .filter(|saved| expected.matches(&saved.to_bytes()));
    let intact = saved.is_some();
    let (bytes, origin) = match (local_program, saved) {
        (Some(path), _) => local_bundle(path)?,
        (None, Some(saved)) => (saved.to_bytes(), format!("unpacked in {}", dir.display())),
        (None, None) => (
            client.program(lobby_id).await?,
            "fetched from the server".to_string(),
        ),
    };
    check_program(expected, &bytes, origin)?;
    let bundle =
        roles::verified_bundle(&bytes, &verified.offer).map_err(SessionError::BadBundle)?;
    if !intact {
        home.replace_bundle(lobby_id, &bundle)?;
    }
    let main = expected.main.as_ref().expect("a bundle has an entry point");
    Ok(VerifiedProgram {
        path: dir.join(main.as_str()),
        roles: role_table(&verified.offer, &bundle, &dir),
        bundle: Some(dir),
    })
}

/// The roles of `offer`, then the seats in none (if any) with the program's `main`, each
/// with the SHA-256 of its entry point inside the verified `bundle` unpacked in `dir`.
fn role_table(offer: &LobbyOffer, bundle: &Bundle, dir: &Path) -> Vec<RoleReport> {
    if offer.roles.is_empty() {
        return Vec::new();
    }
    let others = roles::seats_without_role(offer);
    let main = offer.program.main.as_ref().expect("roles are a bundle's");
    let default = (!others.is_empty()).then_some((others, main, None, true));
    let rows = (offer.roles.iter())
        .map(|role| (role.seats.clone(), &role.main, role.args.as_ref(), false));
    rows.chain(default)
        .map(|(seats, main, args, default)| RoleReport {
            seats_text: roles::seats_text(&seats),
            seats,
            main: main.to_string(),
            args: args.unwrap_or(&offer.args).clone(),
            sha256: bundle
                .files()
                .find(|(path, _)| path == &main)
                .map(|(_, contents)| Sha256Digest::of(contents).to_string())
                .unwrap_or_default(),
            path: dir.join(main.as_str()),
            default,
        })
        .collect()
}

/// The bytes of a local copy of a bundle (its folder, packed, or a packed file) and where
/// they came from.
fn local_bundle(path: &Path) -> Result<(Vec<u8>, String), SessionError> {
    let bytes = match path.is_dir() {
        true => Bundle::pack_dir(path)
            .map_err(SessionError::Bundle)?
            .to_bytes(),
        false => read_program(path)?,
    };
    Ok((bytes, path.display().to_string()))
}

/// A verified copy of the session's program on this machine.
struct VerifiedProgram {
    /// The file Python runs.
    path: PathBuf,
    /// For a bundle, the folder it was unpacked into.
    bundle: Option<PathBuf>,
    /// An asymmetric program's role table (see [`SessionReport::roles`]).
    roles: Vec<RoleReport>,
}

fn read_program(path: &Path) -> Result<Vec<u8>, SessionError> {
    std::fs::read(path).map_err(|source| SessionError::ReadProgram {
        path: path.into(),
        source,
    })
}

/// Refuses `contents` (from `origin`) unless they are the program the creator signed.
fn check_program(
    expected: &ProgramInfo,
    contents: &[u8],
    origin: String,
) -> Result<(), SessionError> {
    if expected.matches(contents) {
        return Ok(());
    }
    Err(SessionError::ProgramMismatch {
        origin,
        expected: expected.sha256.to_string(),
        actual: Sha256Digest::of(contents).to_string(),
    })
}

fn label(what: &'static str, text: &str) -> Result<Label, SessionError> {
    Label::new(what, text).map_err(|e| SessionError::Input(e.to_string()))
}

/// A verified session as `mpcnet status --json` prints it. The field names are a stable interface.
#[derive(Debug, Clone, Serialize)]
pub struct SessionReport {
    pub lobby_id: String,
    pub server: String,
    pub name: String,
    /// `open` (waiting for parties), `full` (waiting for the creator's seal) or `sealed`.
    pub state: &'static str,
    /// Set when this call sealed the session.
    pub sealed_now: bool,
    /// The session fingerprint to compare out of band, once sealed.
    pub session_fingerprint: Option<String>,
    pub parties_expected: u16,
    pub parties: Vec<PartyReport>,
    /// A named session's seats in order (only their keys may join), each taken or not; empty
    /// for a session open to anyone holding the invite.
    pub seats: Vec<SeatView>,
    /// This party's index, if it has joined.
    pub you: Option<u16>,
    pub program: ProgramReport,
    /// SHA-256 of the creator's signed offer (program, arguments, party count): what a party
    /// agrees to when it joins.
    pub offer_sha256: String,
    pub args: Vec<String>,
    /// An asymmetric program's roles, every seat in one row: seats, entry point, public
    /// arguments and the entry point's SHA-256 inside the verified bundle (the row of the
    /// seats in no role last, marked `default`). Empty when every seat runs `program.main`.
    pub roles: Vec<RoleReport>,
    pub relay_url: String,
    /// The creator's other relays, each with its certificate pin (`https://HOST:PORT#sha256=PIN`).
    pub extra_relays: Vec<String>,
    /// The identity proof the creator requires of every party: `null` if none.
    pub require_identity: Option<IdentityRequirement>,
    /// The latest run of this session on this machine: `null` if none.
    pub run: Option<LocalRunStatus>,
}

/// What a run (`mpcnet run`) reports about itself, refreshed every second while it lasts.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct LocalRunStatus {
    /// `running`, `finished`, or `stopped` (no update for a while: the run was killed).
    pub state: String,
    /// The `mpcnet run` process.
    pub pid: u32,
    pub me: u16,
    pub updated_unix_ms: u128,
    /// How old the report was when read.
    #[serde(default)]
    pub age_ms: Option<u128>,
    /// One entry per peer: state, route (direct address or relay), RTT, bytes.
    pub links: Vec<mpcnet_proto::link_report::LinkReport>,
}

/// One party in a [`SessionReport`].
#[derive(Debug, Clone, Serialize)]
pub struct PartyReport {
    pub index: u16,
    pub name: String,
    pub key: String,
    pub fingerprint: String,
    pub did: String,
    pub creator: bool,
    /// The account the party proved it holds (issuer, subject, verified email), checked by
    /// this machine against the issuer's published keys; `null` if it attached no proof.
    pub identity: Option<ProvenIdentity>,
    /// The party's run as it last reported it to the lobby (signed by its key); `null` if none.
    pub run: Option<RunState>,
}

/// One row of a [`SessionReport`]'s role table.
#[derive(Debug, Clone, Serialize)]
pub struct RoleReport {
    pub seats: Vec<u16>,
    /// The seats as `--role` reads them (`1-3,5`).
    pub seats_text: String,
    /// The entry point, a path inside the bundle, and its verified copy on this machine.
    pub main: String,
    pub path: PathBuf,
    /// The public arguments these seats pass.
    pub args: Vec<String>,
    /// SHA-256 of the entry point's file inside the verified bundle.
    pub sha256: String,
    /// Whether this row is the seats no role names (running the program's `main`).
    pub default: bool,
}

/// The program in a [`SessionReport`].
#[derive(Debug, Clone, Serialize)]
pub struct ProgramReport {
    pub file_name: String,
    pub sha256: String,
    pub size: u64,
    /// Where the verified copy is on this machine (for a bundle, its entry point there).
    pub path: PathBuf,
    /// For a bundle: its entry point, and the folder it was unpacked into; `null` for one file.
    pub main: Option<String>,
    pub bundle_dir: Option<PathBuf>,
}

impl ProgramReport {
    /// What a party reads before running it: a bundle's folder, else the one file.
    pub fn to_review(&self) -> &Path {
        self.bundle_dir.as_deref().unwrap_or(&self.path)
    }

    /// The program's name as shown: a bundle's folder name says what it runs.
    pub fn shown_name(&self, has_roles: bool) -> String {
        if has_roles {
            return format!("{} (a bundle with roles)", self.file_name);
        }
        match &self.main {
            Some(main) => format!("{} (a bundle, running {main})", self.file_name),
            None => self.file_name.clone(),
        }
    }
}

impl SessionReport {
    /// The file party `seat` runs and its public arguments: its role's, else the program's.
    pub fn entry_for(&self, seat: u16) -> (&Path, &[String]) {
        match self.roles.iter().find(|role| role.seats.contains(&seat)) {
            Some(role) => (&role.path, &role.args),
            None => (&self.program.path, &self.args),
        }
    }

    /// The program's name as shown (see [`ProgramReport::shown_name`]).
    pub fn program_name(&self) -> String {
        self.program.shown_name(!self.roles.is_empty())
    }

    /// The report of `verified`, with each party's run as it reported it in `runs` (checked).
    fn new(
        invite: &Invite,
        verified: &VerifiedLobby,
        identity: &Identity,
        program: VerifiedProgram,
        sealed_now: bool,
        runs: &[RunReport],
    ) -> Self {
        let offer = &verified.offer;
        let state = match (&verified.sealed, verified.is_full()) {
            (Some(_), _) => "sealed",
            (None, true) => "full",
            (None, false) => "open",
        };
        Self {
            lobby_id: offer.lobby_id.to_string(),
            server: invite.server.to_string(),
            name: offer.name.to_string(),
            state,
            sealed_now,
            session_fingerprint: verified.sealed.as_ref().map(|s| s.fingerprint.to_string()),
            parties_expected: offer.parties,
            parties: verified
                .parties
                .iter()
                .map(|party| PartyReport {
                    index: party.index,
                    name: party.name.to_string(),
                    key: party.key.to_string(),
                    fingerprint: party.key.fingerprint().to_string(),
                    did: party.key.did_key(),
                    creator: party.key == offer.creator,
                    identity: party.identity.as_ref().map(|(_, proven)| proven.clone()),
                    run: runs
                        .iter()
                        .find(|run| run.party == party.key)
                        .map(|run| run.state.clone()),
                })
                .collect(),
            seats: SeatView::of(verified),
            you: verified.party(&identity.public()).map(|party| party.index),
            program: ProgramReport {
                file_name: offer.program.file_name.to_string(),
                sha256: offer.program.sha256.to_string(),
                size: offer.program.size,
                path: program.path,
                main: offer.program.main.as_ref().map(ToString::to_string),
                bundle_dir: program.bundle,
            },
            offer_sha256: verified.offer_digest.to_string(),
            args: offer.args.clone(),
            roles: program.roles,
            relay_url: offer.relay_url.to_string(),
            extra_relays: offer.extra_relays.iter().map(ToString::to_string).collect(),
            require_identity: offer.require_identity.clone(),
            run: None,
        }
    }
}
