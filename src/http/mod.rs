//! The HTTP server: embedded demo page and widget, `/healthz`, `/readyz`, CORS for the widget's
//! origins, request tracing, and optional TLS (browsers only give the microphone to https or localhost).

mod api;
pub mod assets;
pub mod bodies;
mod call_control;
pub mod client_ip;
mod elsewhere;
pub mod keyring;
pub mod recordings;
pub mod routes;
pub(crate) mod tls;
mod ws;
pub mod ws_transport;

use crate::config::Config;
use crate::lifecycle::Lifecycle;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::net::SocketAddr;
use std::sync::Arc;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::TraceLayer;
use tracing::info;

/// Why the HTTP server could not start.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The listen address could not be bound.
    #[error("cannot bind HTTP listener on {addr}: {source}")]
    Bind {
        /// The configured address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The certificate or key could not be loaded.
    #[error("HTTP TLS: {0}")]
    Tls(String),
}

/// State shared by request handlers.
#[derive(Clone)]
pub struct HttpState {
    /// Readiness and draining.
    pub lifecycle: Lifecycle,
    /// The configuration.
    pub cfg: Arc<Config>,
    /// Call control (the WebSocket and the REST API), when running.
    pub calls: Option<Arc<crate::call::CallManager>>,
    /// The REST API's keys and their scopes.
    pub keys: Arc<keyring::Keyring>,
    /// The SIP flood defence (its ban list), when SIP is running.
    pub flood: Option<Arc<crate::sip::flood::FloodShield>>,
    /// New widget sockets per visitor address.
    pub ws_rate: Arc<std::sync::Mutex<crate::ratelimit::TokenBuckets<std::net::IpAddr>>>,
}

/// The routes, with CORS and tracing layers.
pub fn router(state: HttpState) -> Router {
    let cors = cors_layer(&state.cfg);
    let max_body = state.cfg.http.max_body_bytes;
    let keys = state.keys.clone();
    let router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(api::metrics))
        .route("/ws", get(ws::upgrade));
    routes::add_api_routes(router, keys, &state)
        .route("/", get(index))
        .route("/{*path}", get(asset))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(cors)
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

fn cors_layer(cfg: &Config) -> CorsLayer {
    let origins: Vec<HeaderValue> = cfg
        .http
        .cors_origins
        .iter()
        // Validated at load time; an origin that still is not a header value is skipped, not fatal.
        .filter_map(|o| HeaderValue::from_str(o.trim_end_matches('/')).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            header::HeaderName::from_static("x-api-key"),
        ])
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<HttpState>) -> Response {
    if state.lifecycle.is_ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}

async fn index() -> Response {
    serve_asset("index.html")
}

async fn asset(Path(path): Path<String>) -> Response {
    serve_asset(&path)
}

fn serve_asset(path: &str) -> Response {
    match assets::lookup(path) {
        Some((body, ct)) => (
            [
                (header::CONTENT_TYPE, ct),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "not found\n").into_response(),
    }
}

/// Binds the listener and serves until the lifecycle's stop token fires. Returns the bound address.
pub async fn serve(
    cfg: Arc<Config>,
    lifecycle: Lifecycle,
    calls: Option<Arc<crate::call::CallManager>>,
    flood: Option<Arc<crate::sip::flood::FloodShield>>,
    keys: Arc<keyring::Keyring>,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), HttpError> {
    let addr = cfg.http.listen;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| HttpError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| HttpError::Bind { addr, source })?;
    let stop = lifecycle.stop_token();
    let app = router(HttpState {
        lifecycle,
        cfg: cfg.clone(),
        calls,
        keys,
        flood,
        ws_rate: Arc::new(std::sync::Mutex::new(crate::ratelimit::TokenBuckets::new(
            f64::from(cfg.limits.ws_per_ip_per_sec),
            f64::from(cfg.limits.ws_per_ip_burst),
            100_000,
        ))),
    });
    let handle = match (&cfg.http.tls_cert, &cfg.http.tls_key) {
        (Some(cert), Some(key)) => {
            let acceptor = tls::acceptor(cert, key).map_err(HttpError::Tls)?;
            info!(%bound, "HTTPS listening");
            tokio::spawn(tls::serve(listener, acceptor, app, stop))
        }
        _ => {
            info!(%bound, "HTTP listening");
            tokio::spawn(async move {
                let server = axum::serve(
                    listener,
                    app.into_make_service_with_connect_info::<SocketAddr>(),
                )
                .with_graceful_shutdown(async move { stop.cancelled().await });
                if let Err(e) = server.await {
                    tracing::error!(error = %e, "HTTP server failed");
                }
            })
        }
    };
    Ok((bound, handle))
}
