//! Voice-provider webhooks over plain HTTP on the gRPC port: `POST /webhooks/vapi` and
//! `POST /webhooks/retell`. A thin adapter: reads the headers that matter, enforces the body
//! limit (413), hands the body to `app::webhooks` and turns its answer into a status.

use std::sync::Arc;

use axum::{
    Json, Router,
    extract::{DefaultBodyLimit, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
};
use bytes::Bytes;
use serde_json::json;

use crate::{
    app::{
        CallApp,
        webhooks::{self, Answer},
    },
    domain::webhook::{self as hook, MAX_WEBHOOK_BODY, VapiHeaders},
};

pub fn router(core: Arc<CallApp>) -> Router {
    Router::new()
        .route("/webhooks/vapi", post(vapi))
        .route("/webhooks/retell", post(retell))
        .layer(DefaultBodyLimit::max(MAX_WEBHOOK_BODY))
        .with_state(core)
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn reply(answer: Answer) -> Response {
    let (status, outcome) = match answer {
        Answer::Done(o) => (StatusCode::OK, o.to_owned()),
        Answer::BadRequest(o) => (StatusCode::BAD_REQUEST, o),
        Answer::Unauthorized(o) => (StatusCode::UNAUTHORIZED, o.to_owned()),
        Answer::Unavailable(o) => (StatusCode::SERVICE_UNAVAILABLE, o.to_owned()),
        Answer::Failed(o) => (StatusCode::INTERNAL_SERVER_ERROR, o.to_owned()),
    };
    (status, Json(json!({ "status": outcome }))).into_response()
}

async fn vapi(State(core): State<Arc<CallApp>>, headers: HeaderMap, body: Bytes) -> Response {
    let h = VapiHeaders {
        secret: header(&headers, hook::VAPI_SECRET_HEADER),
        signature: header(&headers, hook::VAPI_SIGNATURE_HEADER),
        timestamp: header(&headers, hook::VAPI_TIMESTAMP_HEADER),
    };
    reply(webhooks::vapi(&core, h, &body).await)
}

async fn retell(State(core): State<Arc<CallApp>>, headers: HeaderMap, body: Bytes) -> Response {
    let signature = header(&headers, hook::RETELL_SIGNATURE_HEADER);
    reply(webhooks::retell(&core, signature, &body).await)
}
