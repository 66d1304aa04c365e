//! The console (the browser app in `services/console/`), built ahead into
//! `services/console/dist/` and embedded here, so `salestrainer up` serves it at `/` with no
//! Node on the machine. It speaks gRPC-Web to the same port with a bearer token like any
//! client; the only extra is development sign-in, which exists on `up` alone and is refused
//! when production (RS256) keys are configured.

use std::sync::Arc;

use axum::{
    Json, Router,
    extract::{Path, State},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use http::{HeaderValue, StatusCode, header};
use include_dir::{Dir, include_dir};
use salestrainer_proto::config as cfg;
use salestrainer_runtime::{Role, auth::TokenMinter};
use serde::{Deserialize, Serialize};

static DIST: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../console/dist");

/// Scripts and styles only from this origin, calls only to it, no framing: the app needs
/// nothing else.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; \
    base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Everything development sign-in needs; `None` where it is refused.
pub struct DevSignIn {
    pub minter: TokenMinter,
    pub organization: String,
    /// Where the config service answers (this process).
    pub config_uri: String,
}

/// The console's routes: the page at `/`, its hashed assets, and `/console/*`.
pub fn router(dev: Option<DevSignIn>) -> Router {
    let dev = dev.map(Arc::new);
    Router::new()
        .route("/", get(index))
        .route("/index.html", get(index))
        .route("/assets/{*path}", get(asset))
        .route("/console/info", get(info))
        .route("/console/dev/users", get(dev_users))
        .route("/console/dev/sign-in", post(dev_sign_in))
        .with_state(dev)
}

/// Exact paths of [`router`] that need no token.
pub const PUBLIC_PATHS: &[&str] = &["/", "/index.html"];
/// Path prefixes of [`router`] that need no token.
pub const PUBLIC_PREFIXES: &[&str] = &["/assets/", "/console/"];

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
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
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

#[derive(Serialize)]
struct Info {
    dev_sign_in: bool,
    organization: String,
}

async fn info(State(dev): State<Option<Arc<DevSignIn>>>) -> Json<Info> {
    Json(Info {
        dev_sign_in: dev.is_some(),
        organization: dev.map(|d| d.organization.clone()).unwrap_or_default(),
    })
}

#[derive(Serialize)]
struct DemoUser {
    subject: String,
    display_name: String,
    role: String,
}

fn refused() -> Response {
    (
        StatusCode::NOT_FOUND,
        "development sign-in is off: sign in with a token from your identity provider",
    )
        .into_response()
}

fn role_of(role: i32) -> Option<Role> {
    match cfg::Role::try_from(role).ok()? {
        cfg::Role::Admin => Some(Role::Admin),
        cfg::Role::Manager => Some(Role::Manager),
        cfg::Role::Trainee => Some(Role::Trainee),
        cfg::Role::Unspecified => None,
    }
}

/// The demo organization's members, read through the config service's own API.
async fn members(dev: &DevSignIn) -> anyhow::Result<Vec<cfg::Member>> {
    let token = dev.minter.mint(
        crate::DEMO_ADMIN_SUBJECT,
        &dev.organization,
        Role::Admin,
        60,
    )?;
    let channel = tonic::transport::Channel::from_shared(dev.config_uri.clone())?
        .connect()
        .await?;
    let mut client = cfg::config_service_client::ConfigServiceClient::new(channel);
    let mut req = tonic::Request::new(cfg::ListMembersRequest {
        parent: format!("organizations/{}", dev.organization),
        page_size: 100,
        ..Default::default()
    });
    req.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    Ok(client.list_members(req).await?.into_inner().members)
}

async fn dev_users(State(dev): State<Option<Arc<DevSignIn>>>) -> Response {
    let Some(dev) = dev else { return refused() };
    match members(&dev).await {
        Ok(list) => Json(
            list.into_iter()
                .filter_map(|m| {
                    let role = match role_of(m.role)? {
                        Role::Admin => "admin",
                        Role::Manager => "manager",
                        _ => "trainee",
                    };
                    Some(DemoUser {
                        subject: m.subject,
                        display_name: m.display_name,
                        role: role.to_owned(),
                    })
                })
                .collect::<Vec<_>>(),
        )
        .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "listing demo users failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the config service is not ready",
            )
                .into_response()
        }
    }
}

#[derive(Deserialize)]
struct SignIn {
    subject: String,
}

#[derive(Serialize)]
struct SignedIn {
    token: String,
}

async fn dev_sign_in(
    State(dev): State<Option<Arc<DevSignIn>>>,
    Json(body): Json<SignIn>,
) -> Response {
    let Some(dev) = dev else { return refused() };
    let list = match members(&dev).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "listing demo users failed");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "the config service is not ready",
            )
                .into_response();
        }
    };
    // Only an existing member of the demo organization, with the role it holds there.
    let Some(role) = list
        .iter()
        .find(|m| m.subject == body.subject)
        .and_then(|m| role_of(m.role))
    else {
        return (
            StatusCode::FORBIDDEN,
            "not a member of the demo organization",
        )
            .into_response();
    };
    match dev
        .minter
        .mint(&body.subject, &dev.organization, role, 12 * 3600)
    {
        Ok(token) => Json(SignedIn { token }).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "minting a development token failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
