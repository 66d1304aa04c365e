//! The console (the browser app whose sources are in `services/console/`), built ahead into
//! `services/console/dist/` and embedded here, so a server serves it at `/` with no Node on
//! the machine: `salestrainer up` in embedded mode, the config service behind the gateway in
//! distributed mode. The app speaks gRPC-Web to the same origin with a bearer token like any
//! client.

mod settings;

use std::sync::Arc;

use axum::{
    Json, Router,
    extract::{Path, State},
    response::{IntoResponse, Response},
    routing::get,
};
use http::{HeaderValue, StatusCode, header};
use include_dir::{Dir, include_dir};
use salestrainer_runtime::service::Routes;
pub use settings::{ConsoleSettings, Oidc};

static DIST: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../services/console/dist");

/// Exact paths of [`router`] that need no token (a prefix `/` would open every RPC).
pub const PUBLIC_PATHS: &[&str] = &["/", "/index.html"];
/// Path prefixes of [`router`] that need no token.
pub const PUBLIC_PREFIXES: &[&str] = &["/assets/"];

/// What `/console/info` tells the app before anyone signs in: whether this server has
/// development sign-in (and for which organization) and the identity provider to redirect to.
/// Nothing secret: the app is a public OIDC client (authorization code + PKCE).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Info {
    pub dev_sign_in: bool,
    pub organization: String,
    pub oidc: Option<Oidc>,
}

/// The page at `/` and its hashed assets under `/assets/`, served with the content-security
/// policy of `settings` (see [`ConsoleSettings::csp`]).
pub fn router(settings: &ConsoleSettings) -> Router {
    let csp = HeaderValue::from_str(&settings.csp())
        .unwrap_or_else(|_| HeaderValue::from_static(settings::BASE_CSP));
    Router::new()
        .route("/", get(index))
        .route("/index.html", get(index))
        .route("/assets/{*path}", get(asset))
        .with_state(Arc::new(csp))
}

/// Mounts [`router`] on a service's routes, public, with `/console/info` saying that this
/// server has no development sign-in (the app then offers the identity provider of
/// `settings`, or asks for a token; `salestrainer up` answers it itself). The config service
/// does this behind the gateway when its `serve_console` is on.
pub fn mount(routes: &mut Routes<'_>, settings: &ConsoleSettings) {
    let info = Info {
        dev_sign_in: false,
        organization: String::new(),
        oidc: settings.oidc(),
    };
    let router = router(settings).route(
        "/console/info",
        get(move || {
            let info = info.clone();
            async move { Json(info) }
        }),
    );
    let paths: Vec<&str> = PUBLIC_PATHS
        .iter()
        .copied()
        .chain(["/console/info"])
        .collect();
    routes.public_http(&paths, PUBLIC_PREFIXES, router);
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or_default() {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" => "application/json",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

fn file(path: &str, cache: &'static str, csp: &HeaderValue) -> Response {
    let Some(f) = DIST.get_file(path) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let mut res = f.contents().into_response();
    let h = res.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, content_type(path)),
        (header::CACHE_CONTROL, cache),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    h.insert(header::CONTENT_SECURITY_POLICY, csp.clone());
    res
}

async fn index(State(csp): State<Arc<HeaderValue>>) -> Response {
    // Always revalidated: it names the current hashed assets.
    file("index.html", "no-cache", &csp)
}

async fn asset(State(csp): State<Arc<HeaderValue>>, Path(path): Path<String>) -> Response {
    // Asset names carry their content hash, so a name never changes meaning.
    file(
        &format!("assets/{path}"),
        "public, max-age=31536000, immutable",
        &csp,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_build_is_embedded_and_names_its_hashed_assets() {
        let index = DIST.get_file("index.html").expect("dist/index.html");
        let html = std::str::from_utf8(index.contents()).expect("utf-8");
        let assets: Vec<_> = DIST
            .get_dir("assets")
            .expect("dist/assets")
            .files()
            .map(|f| f.path().to_string_lossy().into_owned())
            .collect();
        assert!(!assets.is_empty());
        // The page names its entry assets; chunks loaded on demand (the voice SDK) are named
        // by an entry script's dynamic import instead.
        let entry: Vec<&String> = assets
            .iter()
            .filter(|a| html.contains(&format!("/{a}")))
            .collect();
        let scripts: String = entry
            .iter()
            .filter(|a| a.ends_with(".js"))
            .filter_map(|a| DIST.get_file(a.as_str()))
            .map(|f| String::from_utf8_lossy(f.contents()).into_owned())
            .collect();
        for a in &assets {
            let file = a.rsplit('/').next().unwrap_or(a);
            assert!(
                entry.contains(&a) || scripts.contains(file),
                "neither index.html nor an entry script names {a}"
            );
        }
        // The voice SDK (VAPI's web SDK with Daily's client) is not part of the first load.
        assert!(
            entry.iter().all(|a| !a.contains("vapi")),
            "the voice SDK is loaded with the page: {entry:?}"
        );
        // No inline script: the content-security policy would block it.
        assert!(!html.contains("<script>"), "{html}");
    }
}
