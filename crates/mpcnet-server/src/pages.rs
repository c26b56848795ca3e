//! The lobby's web pages: create a session (`/`), share its invite (`/s/{id}/share`) and follow
//! it live (`/s/{id}`). Every file is built into the binary; pages are static HTML whose
//! scripts fill in user text as text, never as markup. Secrets live in URL fragments, which
//! browsers never send, so no request to these routes carries one.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::api::ApiState;

/// Where the browser may load anything from: this server only, and no inline script or style.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'";

/// One file of the pages, built in.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $content_type:expr) => {
        Asset {
            name: $name,
            content_type: $content_type,
            body: include_bytes!(concat!("../web/", $name)),
        }
    };
}

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";

/// Files served under `/assets/`.
const ASSETS: &[Asset] = &[
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("page.js", JAVASCRIPT),
    asset!("protocol.js", JAVASCRIPT),
    asset!("seats.js", JAVASCRIPT),
    asset!("live.js", JAVASCRIPT),
    asset!("create.js", JAVASCRIPT),
    asset!("share.js", JAVASCRIPT),
    asset!("session.js", JAVASCRIPT),
    asset!("vendor/uqr.mjs", JAVASCRIPT),
];

const CREATE_PAGE: &[u8] = include_bytes!("../web/create.html");
const SHARE_PAGE: &[u8] = include_bytes!("../web/share.html");
const SESSION_PAGE: &[u8] = include_bytes!("../web/session.html");

/// The pages' routes.
pub fn router() -> Router<ApiState> {
    Router::new()
        .route("/", get(|| async { html(StatusCode::OK, CREATE_PAGE) }))
        .route("/s/{id}", get(session_page))
        .route("/s/{id}/share", get(share_page))
        .route("/assets/{*name}", get(asset))
}

/// Headers every answer of the server carries, pages and API alike.
pub async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (
            header::HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

fn html(status: StatusCode, body: &'static [u8]) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

const NO_SUCH_SESSION: &[u8] = b"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>No such session \xc2\xb7 mpcnet</title><link rel=\"stylesheet\" href=\"/assets/style.css\"></head>\
<body><main><h1>No such session</h1><p>This session does not exist on this server, or it expired.\
 <a href=\"/\">Create a new one</a>.</p></main></body></html>";

/// The page `body` for lobby `id`, or a "no such session" page if it is not live.
async fn lobby_page(state: &ApiState, id: &str, body: &'static [u8]) -> Response {
    let exists = match id.parse() {
        Ok(id) => crate::api::lobby_exists(state, id).await,
        Err(_) => false,
    };
    if exists {
        html(StatusCode::OK, body)
    } else {
        html(StatusCode::NOT_FOUND, NO_SUCH_SESSION)
    }
}

async fn session_page(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    lobby_page(&state, &id, SESSION_PAGE).await
}

async fn share_page(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    lobby_page(&state, &id, SHARE_PAGE).await
}

async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|asset| asset.name == name) {
        Some(asset) => (
            [
                (header::CONTENT_TYPE, asset.content_type),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            asset.body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}
