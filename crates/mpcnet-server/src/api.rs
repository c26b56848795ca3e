//! The lobby HTTP API: axum handlers over the [`Store`], with every error rendered as JSON.
//!
//! Handlers parse bodies themselves (from bytes), so a malformed request gets the same
//! JSON error shape as any other refusal, with a message that says what was wrong.

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Extension, Path, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use mpcnet_proto::api::{
    self, ApiErrorBody, CreateLobby, Departure, Joined, LobbyCreated, ServerInfo, SessionMembers,
    SessionView,
};
use mpcnet_proto::lobby::Admission;
use mpcnet_proto::signed::Signed;
use mpcnet_proto::{
    EndpointAnnouncement, Lobby, LobbyError, LobbyId, LobbySnapshot, PublicKey, RunReport,
    SignedJoin, SignedManifest, VerifyError,
};
use serde::de::DeserializeOwned;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast};

use crate::departures::Departures;
use crate::limits::Limits;
use crate::metrics::Metrics;
use crate::quota::{
    ClientAddress, CreatorQuota, KeyedRate, OpenGuard, OpenPer, OpenPerAddress, counted_as,
};
use crate::store::{ProgramBudget, Store, StoreError, StoredStatement};
use crate::views::SharedViews;

/// Settings of the API.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// How long a lobby lives after its creation.
    pub lobby_ttl: Duration,
    /// Sizes, counts and rates the API holds clients to.
    pub limits: Limits,
    /// What `GET /v1/info` reports.
    pub info: ServerInfo,
}

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct ApiState {
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub config: Arc<ApiConfig>,
    /// Names the lobby of every stored change (`None`: any lobby), so its live pages recompute.
    changes: broadcast::Sender<Option<LobbyId>>,
    /// Each lobby's session view, made once per change and shared by all its readers.
    views: Arc<SharedViews>,
    /// Slots for live session pages (event streams held open): in all, per client address
    /// and per lobby.
    live_pages: Arc<Semaphore>,
    live_pages_per_address: Arc<OpenPerAddress>,
    live_pages_per_lobby: Arc<OpenPer<LobbyId>>,
    /// Live lobbies per creating address.
    creator_quota: Arc<CreatorQuota>,
    /// Requests per client address, and statements per party of a lobby.
    requests_per_address: Arc<KeyedRate<IpAddr>>,
    statements_per_party: Arc<KeyedRate<(LobbyId, PublicKey)>>,
    /// Request body bytes being received at once (a permit per byte).
    uploads: Arc<Semaphore>,
    /// Creates being uploaded at once, per address.
    uploads_per_address: Arc<OpenPerAddress>,
    /// Parties that closed their relay connection, per session (the relay fills it in).
    departures: Arc<Departures>,
}

/// The largest statement a party may send (addresses, a run report), or join record: a few
/// kilobytes at most.
const STATEMENT_BODY_LIMIT: usize = 16 * 1024;
const JOIN_BODY_LIMIT: usize = 16 * 1024;
/// The largest manifest: the offer (up to 64 arguments of 1024 characters) and 64 join
/// records, each nested in base64 once or twice, come to about 300 KiB.
const MANIFEST_BODY_LIMIT: usize = 512 * 1024;
/// What a create request carries besides the program (offer and creator's join).
const CREATE_BODY_OVERHEAD: usize = 512 * 1024;
/// Changes a slow live page may fall behind by before it just recomputes its view.
const CHANGE_BACKLOG: usize = 1024;
/// A live page's view is recomputed at least this often (it sees the lobby expire).
const LIVE_PAGE_REFRESH: Duration = Duration::from_secs(30);

impl ApiState {
    pub fn new(store: Store, metrics: Arc<Metrics>, config: ApiConfig) -> Self {
        let limits = config.limits;
        Self {
            store,
            metrics,
            creator_quota: Arc::new(CreatorQuota::new(limits.max_lobbies_per_creator)),
            config: Arc::new(config),
            changes: broadcast::Sender::new(CHANGE_BACKLOG),
            views: Arc::default(),
            live_pages: Arc::new(Semaphore::new(limits.live_pages)),
            live_pages_per_address: Arc::default(),
            live_pages_per_lobby: Arc::default(),
            requests_per_address: Arc::new(KeyedRate::new(limits.requests_per_address)),
            statements_per_party: Arc::new(KeyedRate::new(limits.statements_per_party)),
            uploads: Arc::new(Semaphore::new(limits.upload_bytes_in_flight)),
            uploads_per_address: Arc::default(),
            departures: Arc::default(),
        }
    }

    /// Where the relay tells which parties closed their relay connection.
    pub fn departures(&self) -> Arc<Departures> {
        self.departures.clone()
    }

    /// The program bytes live lobbies may hold, in all and per creating address.
    fn program_budget(&self) -> ProgramBudget {
        ProgramBudget {
            total: self.config.limits.stored_program_bytes,
            per_creator: self.config.limits.stored_program_bytes_per_creator,
        }
    }

    /// Tells the live pages of `lobby` (`None`: of every lobby) that something was stored, and
    /// forgets its view.
    fn changed(&self, lobby: Option<LobbyId>) {
        self.views.forget(lobby);
        // No live page is no error.
        let _ = self.changes.send(lobby);
    }

    /// Forgets the rate state of clients that have been quiet long enough to be full again.
    pub fn forget_quiet_clients(&self) {
        self.requests_per_address.forget_quiet();
        self.statements_per_party.forget_quiet();
    }
}

/// The routes of a relay on another host: only `/ping`, the relay clients' latency probe.
pub fn probe_router() -> Router {
    Router::new()
        .route(
            iroh_relay::http::RELAY_PROBE_PATH,
            get(|| async { StatusCode::OK }),
        )
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such path") })
}

/// The lobby API's routes. `/ping` answers the relay clients' latency probe.
pub fn router(state: ApiState) -> Router {
    // Base64 grows the program by 4/3.
    let create_limit = state.config.limits.max_program_bytes / 3 * 4 + CREATE_BODY_OVERHEAD;
    let create: axum::routing::MethodRouter<ApiState> = axum::routing::post(create_lobby)
        .layer::<_, Infallible>(axum::middleware::from_fn_with_state(
            state.clone(),
            admit_upload,
        ))
        .layer::<_, Infallible>(DefaultBodyLimit::max(create_limit));
    Router::new()
        .route(api::INFO_PATH, get(info))
        .route(api::LOBBIES_PATH, create)
        .route(api::EXAMPLES_PATH, get(examples))
        .route("/v1/examples/{name}", get(example))
        .route("/v1/lobbies/{id}", get(lobby_snapshot))
        .route(
            "/v1/lobbies/{id}/joins",
            axum::routing::post(join_lobby).layer(DefaultBodyLimit::max(JOIN_BODY_LIMIT)),
        )
        .route(
            "/v1/lobbies/{id}/manifest",
            axum::routing::put(seal_lobby).layer(DefaultBodyLimit::max(MANIFEST_BODY_LIMIT)),
        )
        .route("/v1/lobbies/{id}/program", get(program))
        .route(
            "/v1/lobbies/{id}/endpoints",
            get(statements::<EndpointAnnouncement>)
                .put(put_statement::<EndpointAnnouncement>)
                .layer(DefaultBodyLimit::max(STATEMENT_BODY_LIMIT)),
        )
        .route(
            "/v1/lobbies/{id}/runs",
            get(statements::<RunReport>)
                .put(put_statement::<RunReport>)
                .layer(DefaultBodyLimit::max(STATEMENT_BODY_LIMIT)),
        )
        .route("/v1/lobbies/{id}/view", get(session_view))
        .route("/v1/lobbies/{id}/departures", get(departures))
        .route("/v1/lobbies/{id}/members", get(members))
        .route("/v1/lobbies/{id}/events", get(session_events))
        .merge(crate::pages::router())
        .route(
            iroh_relay::http::RELAY_PROBE_PATH,
            get(|| async { StatusCode::OK }),
        )
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such API path")
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed on this path",
            )
        })
        .layer(DefaultBodyLimit::max(STATEMENT_BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            limit_request_rate,
        ))
        .layer(axum::middleware::map_response(
            crate::pages::security_headers,
        ))
        .layer(axum::middleware::map_response_with_state(
            state.metrics.clone(),
            count_refusals,
        ))
        .with_state(state)
}

/// A refused request: status, stable code and message, rendered as [`ApiErrorBody`].
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
}

/// Marks a response as a refusal with this code, for [`count_refusals`].
#[derive(Debug, Clone, Copy)]
struct RefusalCode(&'static str);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ApiErrorBody {
            status: self.status.as_u16(),
            code: self.code.into(),
            message: self.message,
        };
        let mut response = (self.status, Json(body)).into_response();
        response.extensions_mut().insert(RefusalCode(self.code));
        response
    }
}

/// Counts every refused request by its code (middleware over the whole API).
async fn count_refusals(State(metrics): State<Arc<Metrics>>, response: Response) -> Response {
    if let Some(RefusalCode(code)) = response.extensions().get::<RefusalCode>() {
        Metrics::count(&metrics.api_errors, code);
    }
    response
}

/// Refuses a client address that sends requests faster than its rate (429), and closes the
/// connection after the refusal: a client that keeps sending must then reconnect, and new
/// connections per address are rate-limited before TLS, so refusing it costs the server little.
async fn limit_request_rate(
    State(state): State<ApiState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let address = request.extensions().get::<ClientAddress>().map(|a| a.0);
    if let Some(address) = address
        && !state.requests_per_address.allows(counted_as(address))
    {
        let mut refusal = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            "this address sends requests faster than the server answers one address; slow down",
        )
        .into_response();
        refusal.headers_mut().insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
        return refusal;
    }
    next.run(request).await
}

/// Admits a create's upload before its body is read, so a create that cannot succeed costs
/// the server no upload, decoding or hashing: the address must have a lobby place and room for
/// the program in its stored bytes (the program is at least `(length - overhead) * 3/4` bytes),
/// be uploading fewer than its share at once (429 otherwise), and the body must fit the
/// server's budget of bytes in flight (503), which it holds until the handler is done. A body
/// without a length is refused (411): the budget is taken before the body is read.
async fn admit_upload(
    State(state): State<ApiState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    // The exact size is known from Content-Length (hyper) or from the body itself (in tests).
    let length = axum::body::HttpBody::size_hint(request.body())
        .exact()
        .and_then(|length| u32::try_from(length).ok());
    let Some(length) = length else {
        return ApiError::new(
            StatusCode::LENGTH_REQUIRED,
            "length_required",
            "a create request must say its Content-Length",
        )
        .into_response();
    };
    let address = request.extensions().get::<ClientAddress>().map(|a| a.0);
    let _uploading = match address {
        Some(address) => match upload_place(&state, address, length).await {
            Ok(place) => Some(place),
            Err(error) => return error.into_response(),
        },
        None => None,
    };
    let Ok(_budget) = state.uploads.clone().try_acquire_many_owned(length) else {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_busy",
            "the server is receiving as many uploads as it may; try again in a moment",
        )
        .into_response();
    };
    next.run(request).await
}

/// One of `address`'s upload places, if it may upload a create of `length` bytes now.
async fn upload_place(
    state: &ApiState,
    address: IpAddr,
    length: u32,
) -> Result<OpenGuard<IpAddr>, ApiError> {
    let limits = state.config.limits;
    let place = state
        .uploads_per_address
        .enter_from(address, limits.uploads_per_address)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_uploads",
                format!(
                    "this address is uploading as many sessions at once as one address may ({})",
                    limits.uploads_per_address
                ),
            )
        })?;
    if !state.creator_quota.has_room(address, now()) {
        return Err(too_many_lobbies(limits.max_lobbies_per_creator));
    }
    let least_program = u64::from(length).saturating_sub(CREATE_BODY_OVERHEAD as u64) / 4 * 3;
    let (store, budget) = (state.store.clone(), state.program_budget());
    blocking(move || store.program_fits(Some(address), least_program, budget, now())).await?;
    Ok(place)
}

fn too_many_lobbies(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_lobbies",
        format!(
            "this address holds as many live sessions as one address may ({limit}); create more once some expire"
        ),
    )
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => {
                Self::new(StatusCode::NOT_FOUND, "lobby_not_found", error.to_string())
            }
            StoreError::Full => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "server_full",
                error.to_string(),
            ),
            StoreError::Stale => Self::new(StatusCode::CONFLICT, "stale", error.to_string()),
            StoreError::TooFast => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_statements",
                error.to_string(),
            ),
            StoreError::ProgramsFull => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "server_full",
                error.to_string(),
            ),
            StoreError::ProgramsPerCreator { .. } => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_program_bytes",
                error.to_string(),
            ),
            StoreError::Exists => {
                Self::new(StatusCode::CONFLICT, "lobby_exists", error.to_string())
            }
            StoreError::Lobby(lobby) => lobby.into(),
            StoreError::Corrupt { .. } | StoreError::Database(_) => {
                tracing::error!(%error, "store failure");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "the server's store failed; see its log",
                )
            }
        }
    }
}

impl From<LobbyError> for ApiError {
    fn from(error: LobbyError) -> Self {
        let message = error.to_string();
        match error {
            LobbyError::Invalid(VerifyError::BadSignature(_) | VerifyError::InvalidKey) => {
                Self::new(StatusCode::FORBIDDEN, "bad_signature", message)
            }
            LobbyError::Invalid(VerifyError::NotListed { .. }) => {
                Self::new(StatusCode::FORBIDDEN, "not_listed", message)
            }
            LobbyError::Invalid(_) => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
            }
            LobbyError::Full { .. } => Self::new(StatusCode::CONFLICT, "lobby_full", message),
            LobbyError::NotFull { .. } => {
                Self::new(StatusCode::CONFLICT, "lobby_not_full", message)
            }
            LobbyError::AlreadySealed => Self::new(StatusCode::CONFLICT, "lobby_sealed", message),
            LobbyError::NotMember(_) => Self::new(StatusCode::FORBIDDEN, "not_member", message),
        }
    }
}

/// The answer to an API request that took too long (its body arrived too slowly).
pub fn request_timed_out() -> Response {
    ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "timeout",
        "the request took too long",
    )
    .into_response()
}

/// Seconds since the Unix epoch.
fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn parse_lobby_id(text: &str) -> Result<LobbyId, ApiError> {
    text.parse().map_err(|e: mpcnet_proto::join::BadLobbyId| {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_lobby_id", e.to_string())
    })
}

fn parse_json<T: DeserializeOwned>(body: Result<Bytes, BytesRejection>) -> Result<T, ApiError> {
    let body = body.map_err(|rejection| {
        let status = rejection.status();
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "too_large"
        } else {
            "bad_body"
        };
        ApiError::new(status, code, rejection.body_text())
    })?;
    serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_json",
            format!("request body: {e}"),
        )
    })
}

/// Runs blocking store work off the async runtime.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    off_runtime(move || work().map_err(ApiError::from)).await
}

/// Runs CPU-heavy request work (decoding, verifying, hashing megabytes) off the async
/// runtime, so the light requests of everyone else never wait for a worker it holds.
async fn off_runtime<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work).await.map_err(|_| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "request task failed",
        )
    })?
}

/// A create request's body parsed and checked: the program within `max_program_bytes` and
/// matching the size and SHA-256 in the signed offer, the offer and creator's join valid.
/// Returns the program and the new lobby.
fn checked_create(
    body: Result<Bytes, BytesRejection>,
    max_program_bytes: usize,
) -> Result<(Vec<u8>, Lobby), ApiError> {
    let request: CreateLobby = parse_json(body)?;
    if request.program.len() > max_program_bytes {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the program is larger than {max_program_bytes} bytes"),
        ));
    }
    let lobby = Lobby::create(request.offer, request.creator_join)?;
    let offer = &lobby.verified().offer;
    if !offer.program.matches(&request.program) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "program_mismatch",
            "the program does not match the size and SHA-256 in the signed offer",
        ));
    }
    // Parties refuse a bundle that is malformed or lacks an entry point: so does the server.
    if offer.program.main.is_some()
        && let Err(error) = mpcnet_proto::roles::verified_bundle(&request.program, offer)
    {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_bundle",
            error.to_string(),
        ));
    }
    Ok((request.program, lobby))
}

async fn info(State(state): State<ApiState>) -> Json<ServerInfo> {
    Json(state.config.info.clone())
}

async fn create_lobby(
    State(state): State<ApiState>,
    client: Option<Extension<ClientAddress>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<LobbyCreated>), ApiError> {
    let limits = state.config.limits;
    let (program, lobby) =
        off_runtime(move || checked_create(body, limits.max_program_bytes)).await?;
    let offer = &lobby.verified().offer;
    let created = now();
    let expires_at = created.saturating_add(state.config.lobby_ttl.as_secs());
    let lobby_id = offer.lobby_id;
    let client = client.map(|Extension(ClientAddress(address))| address);
    if let Some(address) = client
        && !state.creator_quota.reserve(address, created, expires_at)
    {
        return Err(too_many_lobbies(limits.max_lobbies_per_creator));
    }
    let (store, budget) = (state.store.clone(), state.program_budget());
    let stored = blocking(move || {
        if store.live_lobbies(created)? >= limits.max_lobbies {
            return Err(StoreError::Full);
        }
        store.insert(&lobby, &program, client, budget, (created, expires_at))
    })
    .await;
    if let (Err(_), Some(address)) = (&stored, client) {
        state.creator_quota.release(address, expires_at);
    }
    stored?;
    state.changed(Some(lobby_id));
    state.metrics.lobbies_created.inc();
    state.metrics.lobbies_live.inc();
    tracing::info!(lobby = %lobby_id, "lobby created");
    Ok((
        StatusCode::CREATED,
        Json(LobbyCreated {
            lobby_id,
            expires_at,
        }),
    ))
}

async fn lobby_snapshot(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<LobbySnapshot>, ApiError> {
    let id = parse_lobby_id(&id)?;
    let store = state.store.clone();
    Ok(Json(blocking(move || store.snapshot(&id, now())).await?))
}

async fn join_lobby(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Joined>), ApiError> {
    let admitted: Result<(LobbyId, Admission), ApiError> = async {
        let id = parse_lobby_id(&id)?;
        let join: SignedJoin = parse_json(body)?;
        let store = state.store.clone();
        let admission = blocking(move || store.admit(&id, join, now())).await?;
        tracing::info!(lobby = %id, index = admission.index, repeated = admission.repeated, "join");
        Ok((id, admission))
    }
    .await;
    let outcome = match &admitted {
        Ok((_, admission)) if admission.repeated => "repeated",
        Ok(_) => "admitted",
        Err(_) => "refused",
    };
    Metrics::count(&state.metrics.joins, outcome);
    let (id, admission) = admitted?;
    if !admission.repeated {
        state.changed(Some(id));
    }
    let status = if admission.repeated {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((
        status,
        Json(Joined {
            index: admission.index,
            repeated: admission.repeated,
        }),
    ))
}

async fn seal_lobby(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ApiError> {
    let id = parse_lobby_id(&id)?;
    let manifest: SignedManifest = parse_json(body)?;
    let store = state.store.clone();
    blocking(move || store.seal(&id, manifest, now())).await?;
    state.changed(Some(id));
    state.metrics.lobbies_sealed.inc();
    tracing::info!(lobby = %id, "lobby sealed");
    Ok(StatusCode::NO_CONTENT)
}

async fn program(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_lobby_id(&id)?;
    let store = state.store.clone();
    let bytes = blocking(move || store.program(&id, now())).await?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

async fn examples() -> Json<api::ExampleList> {
    let examples = crate::catalog::EXAMPLES.iter().map(|e| e.info()).collect();
    Json(api::ExampleList { examples })
}

async fn example(Path(name): Path<String>) -> Result<Response, ApiError> {
    let example = crate::catalog::find(&name).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "example_not_found",
            "no example of that name",
        )
    })?;
    let content_type = match example.main {
        Some(_) => "application/x-tar",
        None => "text/x-python; charset=utf-8",
    };
    Ok((
        [(header::CONTENT_TYPE, content_type)],
        example.program.clone(),
    )
        .into_response())
}

async fn put_statement<T: StoredStatement>(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ApiError> {
    let id = parse_lobby_id(&id)?;
    let signed: Signed<T> = parse_json(body)?;
    let store = state.store.clone();
    let rate = state.statements_per_party.clone();
    blocking(move || store.put_statement(&id, &signed, now(), |party| rate.allows((id, party))))
        .await?;
    if T::SHOWN_ON_PAGE {
        state.changed(Some(id));
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn statements<T: StoredStatement>(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<Vec<Signed<T>>>, ApiError> {
    let id = parse_lobby_id(&id)?;
    let store = state.store.clone();
    Ok(Json(blocking(move || store.statements(&id, now())).await?))
}

/// Lobby `id`'s session view as JSON: made once per change of the lobby, shared by every reader.
async fn view(state: &ApiState, id: LobbyId) -> Result<Arc<str>, ApiError> {
    state
        .views
        .get(id, async {
            let store = state.store.clone();
            let view: SessionView = blocking(move || store.view(&id, now())).await?;
            state.metrics.views_made.inc();
            let json = serde_json::to_string(&view).expect("plain data serializes");
            Ok(Arc::from(json))
        })
        .await
}

/// Whether lobby `id` is live (a failing store counts as no).
pub(crate) async fn lobby_exists(state: &ApiState, id: LobbyId) -> bool {
    let store = state.store.clone();
    blocking(move || store.is_live(&id, now()))
        .await
        .unwrap_or(false)
}

/// The parties of a live session that closed their relay connection (see [`Departures`]).
async fn departures(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<Vec<Departure>>, ApiError> {
    let id = parse_lobby_id(&id)?;
    if !lobby_exists(&state, id).await {
        return Err(StoreError::NotFound.into());
    }
    Ok(Json(state.departures.of(&id)))
}

/// The parties of a sealed, live session, for the relays on other hosts that admit them; 404
/// for a lobby that is not sealed or not live, like for one that does not exist.
async fn members(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Json<SessionMembers>, ApiError> {
    let id = parse_lobby_id(&id)?;
    let store = state.store.clone();
    let members = blocking(move || store.session_members(&id, now()))
        .await?
        .ok_or(StoreError::NotFound)?;
    Ok(Json(SessionMembers { members }))
}

async fn session_view(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_lobby_id(&id)?;
    let json = view(&state, id).await?;
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        json.to_string(),
    )
        .into_response())
}

/// The session page's live feed: a `view` event with the [`SessionView`] now and after every
/// change of this lobby, until the lobby is gone (a last `gone` event with the reason) or the
/// page leaves (the stream is dropped with its connection).
async fn session_events(
    State(state): State<ApiState>,
    client: Option<Extension<ClientAddress>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_lobby_id(&id)?;
    let busy = |why: &str| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_busy",
            format!("{why}; reload later"),
        )
    };
    let slot = (state.live_pages.clone().try_acquire_owned())
        .map_err(|_| busy("too many live session pages on this server"))?;
    let limits = state.config.limits;
    let address_slot = match client {
        Some(Extension(ClientAddress(address))) => Some(
            (state.live_pages_per_address)
                .enter_from(address, limits.live_pages_per_address)
                .ok_or_else(|| busy("too many live session pages from this address"))?,
        ),
        None => None,
    };
    let lobby_slot = (state.live_pages_per_lobby)
        .enter(id, limits.live_pages_per_lobby)
        .ok_or_else(|| busy("too many live pages of this session"))?;
    let feed = LiveFeed {
        changes: state.changes.subscribe(),
        state,
        id,
        shown: None,
        ended: false,
        _slots: (slot, address_slot, lobby_slot),
    };
    let stream = futures_util::stream::unfold(feed, LiveFeed::next_event);
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// One live page's feed of one lobby; holds the page's slots while it lasts.
struct LiveFeed {
    state: ApiState,
    id: LobbyId,
    changes: broadcast::Receiver<Option<LobbyId>>,
    /// The view the page has, as sent.
    shown: Option<Arc<str>>,
    ended: bool,
    _slots: (
        OwnedSemaphorePermit,
        Option<OpenGuard<IpAddr>>,
        OpenGuard<LobbyId>,
    ),
}

impl LiveFeed {
    /// The next event the page should get, and the feed after it; `None` once the lobby is gone.
    async fn next_event(mut self) -> Option<(Result<Event, Infallible>, Self)> {
        if self.ended {
            return None;
        }
        loop {
            if self.shown.is_some() {
                self.wait_for_change().await;
            }
            match view(&self.state, self.id).await {
                Ok(json) => {
                    if self.shown.as_ref() != Some(&json) {
                        self.shown = Some(json.clone());
                        return Some((Ok(Event::default().event("view").data(&*json)), self));
                    }
                }
                Err(error) => {
                    self.ended = true;
                    let gone = Event::default().event("gone").data(error.message);
                    return Some((Ok(gone), self));
                }
            }
        }
    }

    /// Returns when this lobby may have changed: a change to it, to every lobby (expiry), missed
    /// changes, or [`LIVE_PAGE_REFRESH`] without news.
    async fn wait_for_change(&mut self) {
        let refresh = tokio::time::sleep(LIVE_PAGE_REFRESH);
        tokio::pin!(refresh);
        loop {
            tokio::select! {
                received = self.changes.recv() => match received {
                    Ok(Some(lobby)) if lobby != self.id => continue,
                    _ => return,
                },
                () = &mut refresh => return,
            }
        }
    }
}

/// Removes expired lobbies every `period`, forever.
pub async fn expire_lobbies(state: ApiState, period: Duration) {
    let mut ticker = tokio::time::interval(period);
    loop {
        ticker.tick().await;
        state.forget_quiet_clients();
        let store = state.store.clone();
        let result = blocking(move || {
            let now = now();
            Ok((store.delete_expired(now)?, store.live_lobbies(now)?))
        })
        .await;
        match result {
            Ok((expired, live)) => {
                state.metrics.lobbies_expired.inc_by(expired as u64);
                state
                    .metrics
                    .lobbies_live
                    .set(i64::try_from(live).unwrap_or(i64::MAX));
                if expired > 0 {
                    state.changed(None);
                    tracing::info!(expired, live, "expired lobbies removed");
                }
            }
            Err(error) => tracing::error!(?error, "expiring lobbies failed"),
        }
    }
}
