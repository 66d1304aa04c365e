//! The console (the browser app whose sources are in `services/console/`), built ahead into
//! `services/console/dist/` and embedded here, so a server serves it at `/` with no Node on
//! the machine: `salestrainer up` in embedded mode, the config service behind the gateway in
//! distributed mode. The app speaks gRPC-Web to the same origin with a bearer token like any
//! client.

use axum::{
    Router,
    extract::Path,
    response::{IntoResponse, Response},
    routing::get,
};
use http::{HeaderValue, StatusCode, header};
use include_dir::{Dir, include_dir};
use salestrainer_runtime::service::Routes;

static DIST: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../services/console/dist");

/// Scripts, styles and calls only to this origin, no framing: the app needs nothing else.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; \
    base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Exact paths of [`router`] that need no token (a prefix `/` would open every RPC).
pub const PUBLIC_PATHS: &[&str] = &["/", "/index.html"];
/// Path prefixes of [`router`] that need no token.
pub const PUBLIC_PREFIXES: &[&str] = &["/assets/"];

/// The page at `/` and its hashed assets under `/assets/`.
pub fn router() -> Router {
    Router::new()
        .route("/", get(index))
        .route("/index.html", get(index))
        .route("/assets/{*path}", get(asset))
}

/// Mounts [`router`] on a service's routes, public, with `/console/info` saying that this
/// server has no development sign-in (the app then asks for a token; `salestrainer up` answers
/// it itself). The config service does this behind the gateway when its `serve_console` is on.
pub fn mount(routes: &mut Routes<'_>) {
    let router = router().route(
        "/console/info",
        get(|| async {
            (
                [(header::CONTENT_TYPE, "application/json")],
                r#"{"dev_sign_in":false,"organization":""}"#,
            )
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

fn file(path: &str, cache: &'static str) -> Response {
    let Some(f) = DIST.get_file(path) else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    let mut res = f.contents().into_response();
    let h = res.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, content_type(path)),
        (header::CACHE_CONTROL, cache),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    res
}

async fn index() -> Response {
    // Always revalidated: it names the current hashed assets.
    file("index.html", "no-cache")
}

async fn asset(Path(path): Path<String>) -> Response {
    // Asset names carry their content hash, so a name never changes meaning.
    file(
        &format!("assets/{path}"),
        "public, max-age=31536000, immutable",
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
        for a in &assets {
            assert!(html.contains(&format!("/{a}")), "index.html names {a}");
        }
        // No inline script: the content-security policy would block it.
        assert!(!html.contains("<script>"), "{html}");
    }
}
