//! Prometheus metrics of the lobby and the relay, served as text on a separate (loopback by default) port.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// The outcome of a request to join a lobby.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: &'static str,
}

/// Every metric the server exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub lobbies_created: Counter,
    pub lobbies_sealed: Counter,
    pub lobbies_expired: Counter,
    pub lobbies_live: Gauge,
    pub joins: Family<OutcomeLabel, Counter>,
    pub relay_admissions: Family<OutcomeLabel, Counter>,
    pub views_made: Counter,
    pub relay_clients: Gauge,
    pub relay_bytes: Counter,
    pub relay_undelivered: Counter,
    pub api_errors: Family<OutcomeLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("mpcnet");
        let metrics = Self {
            lobbies_created: Counter::default(),
            lobbies_sealed: Counter::default(),
            lobbies_expired: Counter::default(),
            lobbies_live: Gauge::default(),
            joins: Family::default(),
            relay_admissions: Family::default(),
            views_made: Counter::default(),
            relay_clients: Gauge::default(),
            relay_bytes: Counter::default(),
            relay_undelivered: Counter::default(),
            api_errors: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "lobbies_created",
            "Lobbies created",
            metrics.lobbies_created.clone(),
        );
        registry.register(
            "lobbies_sealed",
            "Lobbies sealed by their creator",
            metrics.lobbies_sealed.clone(),
        );
        registry.register(
            "lobbies_expired",
            "Lobbies removed after their time to live",
            metrics.lobbies_expired.clone(),
        );
        registry.register(
            "lobbies_live",
            "Lobbies not yet expired",
            metrics.lobbies_live.clone(),
        );
        registry.register("joins", "Join requests by outcome", metrics.joins.clone());
        registry.register(
            "relay_admissions",
            "Relay connections by outcome (members of a live lobby are admitted)",
            metrics.relay_admissions.clone(),
        );
        registry.register(
            "views_made",
            "Session views computed (once per change of a lobby that has readers)",
            metrics.views_made.clone(),
        );
        registry.register(
            "relay_clients",
            "Relay connections admitted and open",
            metrics.relay_clients.clone(),
        );
        registry.register(
            "relay_bytes",
            "Bytes the relays received from their clients",
            metrics.relay_bytes.clone(),
        );
        registry.register(
            "relay_undelivered",
            "Relayed datagrams not delivered (no such client in the session, or its queue full)",
            metrics.relay_undelivered.clone(),
        );
        registry.register(
            "api_errors",
            "API requests refused, by error code",
            metrics.api_errors.clone(),
        );
        Self {
            registry,
            ..metrics
        }
    }
}

impl Metrics {
    /// Counts one event of `family` with `outcome`.
    pub fn count(family: &Family<OutcomeLabel, Counter>, outcome: &'static str) {
        family.get_or_create(&OutcomeLabel { outcome }).inc();
    }

    fn render(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

/// Serves `GET /metrics` on `listener` until the task is dropped.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(render))
        .with_state(metrics);
    axum::serve(listener, app).await
}

async fn render(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.render(),
    )
}
