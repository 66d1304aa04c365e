//! The console on `salestrainer up`: the embedded app (`salestrainer-console`) plus
//! development sign-in, which exists on `up` alone and is off when production (RS256) keys are
//! configured. It mints an ordinary token for a member of the demo organization that the user
//! picks; the browser then sends it as a bearer token like any client. Redirect sign-in with
//! the identity provider of `[console]` (OIDC) is offered beside it where configured.

use std::sync::Arc;

use axum::{
    Json, Router,
    extract::State,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use http::StatusCode;
use salestrainer_console::{ConsoleSettings, Info};
use salestrainer_proto::config as cfg;
use salestrainer_runtime::{Role, auth::TokenMinter};
use serde::{Deserialize, Serialize};

/// Everything development sign-in needs; `None` where it is refused.
pub struct DevSignIn {
    pub minter: TokenMinter,
    pub organization: String,
    /// Where the config service answers (this process).
    pub config_uri: String,
}

/// The console's page and assets, plus `/console/*`: whether development sign-in is on,
/// the identity provider (if any), the demo users and the sign-in itself.
pub fn router(dev: Option<DevSignIn>, settings: &ConsoleSettings) -> Router {
    let info = Info {
        dev_sign_in: dev.is_some(),
        organization: dev
            .as_ref()
            .map(|d| d.organization.clone())
            .unwrap_or_default(),
        oidc: settings.oidc(),
    };
    let dev = dev.map(Arc::new);
    salestrainer_console::router(settings).merge(
        Router::new()
            .route(
                "/console/info",
                get(move || {
                    let info = info.clone();
                    async move { Json(info) }
                }),
            )
            .route("/console/dev/users", get(dev_users))
            .route("/console/dev/sign-in", post(dev_sign_in))
            .with_state(dev),
    )
}

/// Exact paths of [`router`] that need no token.
pub const PUBLIC_PATHS: &[&str] = salestrainer_console::PUBLIC_PATHS;
/// Path prefixes of [`router`] that need no token.
pub const PUBLIC_PREFIXES: &[&str] = &["/assets/", "/console/"];

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
