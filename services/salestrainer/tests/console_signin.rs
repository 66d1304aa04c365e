//! Redirect sign-in (OIDC, authorization code + PKCE) and voice practice in real headless
//! Chromium, against the real `salestrainer up` in production mode: RS256 keys configured, so
//! development sign-in and development tokens are off.
//!
//! The identity provider is a fake run here (discovery, authorize that approves the user the
//! browser script names at once, token that checks the PKCE verifier, JWKS), signing RS256
//! tokens with a key generated for this run; the services verify them with its public key
//! (`[auth] rs256_public_keys`: static PEM keys, the runtime has no JWKS fetching).
//! `services/console/e2e/signin.mjs` drives the browser and runs the fake VAPI API the web
//! SDK is pointed at (the credential's base URL). Daily's WebRTC cannot run here (no
//! network), so the call ends in the console's error state, which the script checks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Instant, SystemTime, UNIX_EPOCH},
};

use axum::{
    Json, Router,
    extract::{RawQuery, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rsa::{
    RsaPrivateKey,
    pkcs1::EncodeRsaPrivateKey,
    pkcs8::{EncodePublicKey, LineEnding},
    rand_core::{OsRng, RngCore},
    traits::PublicKeyParts,
};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use support::{Up, free_port, repo_root, require_browser};

const CLIENT_ID: &str = "salestrainer-console";
const AUDIENCE: &str = "salestrainer-api";
const KID: &str = "test-key-1";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn random() -> String {
    let mut b = [0u8; 24];
    OsRng.fill_bytes(&mut b);
    b64(&b)
}

/// `application/x-www-form-urlencoded` pairs (a query string or a form body).
fn form(s: &str) -> HashMap<String, String> {
    fn decode(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < b.len() => {
                    let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                    match u8::from_str_radix(hex, 16) {
                        Ok(v) => {
                            out.push(v);
                            i += 2;
                        }
                        Err(_) => out.push(b'%'),
                    }
                }
                c => out.push(c),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// Percent-encodes everything but unreserved characters.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|c| {
            if c.is_ascii_alphanumeric() || b"-._~".contains(&c) {
                (c as char).to_string()
            } else {
                format!("%{c:02X}")
            }
        })
        .collect()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Whom the next authorization approves, as the browser script asks (`POST /test/next`).
#[derive(Clone, Deserialize)]
struct NextLogin {
    subject: String,
    role: String,
    /// Answer with another state than the one sent (a forged or replayed response).
    #[serde(default)]
    tamper: bool,
    /// Answer `error=access_denied` (the user declined).
    #[serde(default)]
    deny: bool,
}

struct Grant {
    subject: String,
    role: String,
    challenge: String,
    nonce: String,
    redirect_uri: String,
}

#[derive(Default)]
struct Log {
    next: Option<NextLogin>,
    codes: HashMap<String, Grant>,
    /// Codes sent back with a tampered state: the console must never redeem them.
    tampered: Vec<String>,
    redeemed: Vec<String>,
    refused: Vec<String>,
}

struct Idp {
    issuer: String,
    console: Mutex<String>,
    key: EncodingKey,
    jwk: serde_json::Value,
    log: Mutex<Log>,
}

type Shared = Arc<Idp>;

fn cors(console: &str, mut res: Response) -> Response {
    if let Ok(v) = HeaderValue::from_str(console) {
        res.headers_mut()
            .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
    res
}

async fn discovery(State(idp): State<Shared>) -> Response {
    let i = &idp.issuer;
    let console = idp.console.lock().unwrap().clone();
    cors(
        &console,
        Json(json!({
            "issuer": i,
            "authorization_endpoint": format!("{i}/authorize"),
            "token_endpoint": format!("{i}/token"),
            "jwks_uri": format!("{i}/jwks"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": true,
        }))
        .into_response(),
    )
}

async fn jwks(State(idp): State<Shared>) -> Json<serde_json::Value> {
    Json(json!({ "keys": [idp.jwk] }))
}

fn bad(what: String) -> Response {
    (StatusCode::BAD_REQUEST, what).into_response()
}

async fn authorize(State(idp): State<Shared>, RawQuery(q): RawQuery) -> Response {
    let q = form(&q.unwrap_or_default());
    let console = idp.console.lock().unwrap().clone();
    let param = |k: &str| q.get(k).cloned().unwrap_or_default();
    let redirect_uri = param("redirect_uri");
    if redirect_uri != format!("{console}/") {
        return bad(format!("unregistered redirect_uri {redirect_uri:?}"));
    }
    for (k, want) in [
        ("response_type", "code"),
        ("client_id", CLIENT_ID),
        ("code_challenge_method", "S256"),
        ("audience", AUDIENCE),
    ] {
        if param(k) != want {
            return bad(format!("{k} must be {want}, got {:?}", param(k)));
        }
    }
    if !param("scope").split(' ').any(|s| s == "openid") {
        return bad("scope lacks openid".into());
    }
    for k in ["state", "nonce", "code_challenge"] {
        if param(k).len() < 16 {
            return bad(format!("{k} is missing or too short"));
        }
    }
    let mut log = idp.log.lock().unwrap();
    let Some(next) = log.next.take() else {
        return bad("the test named no user to sign in".into());
    };
    if next.deny {
        let to = format!(
            "{redirect_uri}?error=access_denied&error_description={}&state={}",
            encode("the user declined"),
            encode(&param("state"))
        );
        return (StatusCode::FOUND, [(header::LOCATION, to)]).into_response();
    }
    let code = random();
    let state = if next.tamper {
        log.tampered.push(code.clone());
        format!("{}-tampered", param("state"))
    } else {
        param("state")
    };
    log.codes.insert(
        code.clone(),
        Grant {
            subject: next.subject,
            role: next.role,
            challenge: param("code_challenge"),
            nonce: param("nonce"),
            redirect_uri: redirect_uri.clone(),
        },
    );
    let to = format!(
        "{redirect_uri}?code={}&state={}&iss={}",
        encode(&code),
        encode(&state),
        encode(&idp.issuer)
    );
    (StatusCode::FOUND, [(header::LOCATION, to)]).into_response()
}

async fn token(State(idp): State<Shared>, body: String) -> Response {
    let f = form(&body);
    let console = idp.console.lock().unwrap().clone();
    let param = |k: &str| f.get(k).cloned().unwrap_or_default();
    let mut log = idp.log.lock().unwrap();
    let code = param("code");
    let refuse = |log: &mut Log, why: &str| {
        log.refused.push(format!("{code}: {why}"));
        cors(
            &console,
            (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": "invalid_grant", "error_description": why})),
            )
                .into_response(),
        )
    };
    if param("grant_type") != "authorization_code" || param("client_id") != CLIENT_ID {
        return refuse(&mut log, "bad grant_type or client_id");
    }
    // Single use: a code is gone once presented.
    let Some(g) = log.codes.remove(&code) else {
        return refuse(&mut log, "unknown or used code");
    };
    if param("redirect_uri") != g.redirect_uri {
        return refuse(&mut log, "redirect_uri differs");
    }
    if b64(&Sha256::digest(param("code_verifier").as_bytes())) != g.challenge {
        return refuse(&mut log, "PKCE verifier does not match the challenge");
    }
    log.redeemed.push(code.clone());
    let t = now();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(KID.into());
    let sign =
        |claims: serde_json::Value| jsonwebtoken::encode(&header, &claims, &idp.key).unwrap();
    let access = sign(json!({
        "iss": idp.issuer, "sub": g.subject, "aud": AUDIENCE, "iat": t, "exp": t + 600,
        "org": "demo", "role": g.role,
    }));
    let id = sign(json!({
        "iss": idp.issuer, "sub": g.subject, "aud": CLIENT_ID, "iat": t, "exp": t + 600,
        "nonce": g.nonce, "org": "demo", "role": g.role,
    }));
    let mut res = Json(json!({
        "access_token": access, "id_token": id, "token_type": "Bearer", "expires_in": 600,
    }))
    .into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    cors(&console, res)
}

async fn next(State(idp): State<Shared>, Json(n): Json<NextLogin>) -> StatusCode {
    idp.log.lock().unwrap().next = Some(n);
    StatusCode::NO_CONTENT
}

async fn preflight(State(idp): State<Shared>, _h: HeaderMap) -> Response {
    let console = idp.console.lock().unwrap().clone();
    cors(&console, StatusCode::NO_CONTENT.into_response())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_sign_in_and_voice_practice_in_headless_chromium() {
    let root = repo_root();
    let chromium = require_browser();

    let started = Instant::now();
    let key = tokio::task::spawn_blocking(|| RsaPrivateKey::new(&mut OsRng, 2048))
        .await
        .unwrap()
        .expect("an RSA key");
    println!(
        "generated the IdP's RSA-2048 key in {:?}",
        started.elapsed()
    );
    let private_pem = key.to_pkcs1_pem(LineEnding::LF).unwrap();
    let public_pem = key
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    let public = key.to_public_key();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let idp = Arc::new(Idp {
        issuer: issuer.clone(),
        console: Mutex::new(String::new()),
        key: EncodingKey::from_rsa_pem(private_pem.as_bytes()).unwrap(),
        jwk: json!({
            "kty": "RSA", "use": "sig", "alg": "RS256", "kid": KID,
            "n": b64(&public.n().to_bytes_be()), "e": b64(&public.e().to_bytes_be()),
        }),
        log: Mutex::new(Log::default()),
    });
    let app = Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(discovery).options(preflight),
        )
        .route("/authorize", get(authorize))
        .route("/token", post(token).options(preflight))
        .route("/jwks", get(jwks))
        .route("/test/next", post(next))
        .with_state(Arc::clone(&idp));
    tokio::spawn(async move { axum::serve(listener, app).await });

    let data = tempfile::tempdir().expect("temp dir");
    // A first start in development mode creates the demo organization and its members (in
    // production `up` has no development tokens to create them with).
    tokio::task::spawn_blocking({
        let dir = data.path().to_owned();
        move || drop(Up::start(&dir, &[]))
    })
    .await
    .unwrap();

    let vapi_port = free_port();
    let key_file = data.path().join("idp-public.pem");
    std::fs::write(&key_file, &public_pem).unwrap();
    let settings = data.path().join("production.toml");
    std::fs::write(
        &settings,
        format!(
            r#"
[auth]
rs256_public_keys = ["{key}"]
issuer = "{issuer}"
audience = "{AUDIENCE}"

[console]
oidc_issuer = "{issuer}"
oidc_client_id = "{CLIENT_ID}"
oidc_audience = "{AUDIENCE}"
connect_src = "http://127.0.0.1:{vapi_port} https://*.daily.co wss://*.daily.co"
"#,
            key = key_file.display()
        ),
    )
    .unwrap();
    let server = tokio::task::spawn_blocking({
        let dir = data.path().to_owned();
        let settings = settings.display().to_string();
        move || Up::start(&dir, &[("SALESTRAINER_CONFIG_FILE", settings)])
    })
    .await
    .unwrap();
    *idp.console.lock().unwrap() = server.url();

    let status = tokio::process::Command::new("node")
        .arg("e2e/signin.mjs")
        .current_dir(root.join("services/console"))
        .env("CONSOLE_URL", server.url())
        .env("IDP_URL", &issuer)
        .env("VAPI_PORT", vapi_port.to_string())
        .env("CHROMIUM", &chromium)
        .status()
        .await
        .expect("run node e2e/signin.mjs");
    drop(server);
    assert!(
        status.success(),
        "the sign-in browser test failed (its output is above)"
    );

    let log = idp.log.lock().unwrap();
    // Every exchange the console made carried the right PKCE verifier.
    assert!(
        log.refused.is_empty(),
        "refused exchanges: {:?}",
        log.refused
    );
    // Signed in: the admin, the trainee, the trainee again after signing out.
    assert!(log.redeemed.len() >= 3, "redeemed: {}", log.redeemed.len());
    // The tampered response was refused by the console before it spent the code.
    assert_eq!(log.tampered.len(), 1);
    assert!(
        !log.redeemed.contains(&log.tampered[0]),
        "the console redeemed a code whose state it had not sent"
    );
}
