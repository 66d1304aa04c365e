//! Provider credentials. Secrets are write-only: sealed on the way in, shown masked, and
//! decrypted only for Test (in memory) and for service identities (Resolve).
//!
//! A key goes only where the admin who sent it meant it to go: changing a credential's base
//! URL clears the stored key (and a Retell webhook secret, which Retell signs with like a
//! key) unless the same request brings a new one, and a credential without a key answers
//! FAILED_PRECONDITION (`CREDENTIAL_HAS_NO_KEY`) to Test and to Resolve. Provider text (a
//! test's detail) is scrubbed of keys before it is stored and again when it is shown.

use std::time::{Duration, Instant};

use salestrainer_proto::{config as pb, events::ChangeKind};
use salestrainer_runtime::{
    ApiError, ApiResult, Principal, Violations, names, paging, redact, time,
};
use sea_orm::DatabaseConnection;

use super::{ConfigApp, access::ADMIN};
use crate::{
    domain::{self, crypto, fields, stored_values as values, validate},
    store::{self, Change, credentials as scr, entities::provider_credential as cred},
};

const COLLECTION: &str = "credentials";
const TYPE: &str = "salestrainer.io/ProviderCredential";
/// The hard limit on a provider probe.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(10);

fn to_pb(m: &cred::Model) -> pb::ProviderCredential {
    let last_test_result = m
        .last_test_outcome
        .as_deref()
        .map(|o| pb::CredentialTestResult {
            outcome: values::outcome_from_key(o) as i32,
            http_status: m.last_test_http_status.unwrap_or_default(),
            // Scrubbed again on the way out: rows written before scrubbing existed.
            detail: redact::scrub_patterns(m.last_test_detail.as_deref().unwrap_or_default()),
            test_time: m.last_test_us.map(time::timestamp),
            latency: m.last_test_latency_ms.map(|ms| prost_types::Duration {
                seconds: ms / 1000,
                nanos: ((ms % 1000) * 1_000_000) as i32,
            }),
        });
    pb::ProviderCredential {
        name: names::child_name(&m.organization_id, COLLECTION, &m.id),
        kind: values::kind_from_key(&m.kind) as i32,
        display_name: m.display_name.clone(),
        base_url: m.base_url.clone(),
        model: m.model.clone(),
        api_key: String::new(),
        webhook_secret: String::new(),
        masked_api_key: m.masked_api_key.clone(),
        has_webhook_secret: m.webhook_secret_ciphertext.is_some(),
        limits: Some(pb::RateLimits {
            requests_per_minute: m.requests_per_minute,
            tokens_per_minute: m.tokens_per_minute,
        }),
        last_test_result,
        create_time: Some(time::timestamp(m.create_us)),
        update_time: Some(time::timestamp(m.update_us)),
        etag: m.etag.clone(),
        public_key: m.public_key.clone(),
    }
}

/// Whether the credential holds a key (a base URL change without a new key clears it).
fn has_key(m: &cred::Model) -> bool {
    !m.api_key_ciphertext.is_empty()
}

/// FAILED_PRECONDITION for a credential whose key was cleared.
fn require_key(m: &cred::Model) -> ApiResult<()> {
    if has_key(m) {
        return Ok(());
    }
    Err(ApiError::FailedPrecondition {
        reason: "CREDENTIAL_HAS_NO_KEY",
        message: format!(
            "{} has no API key (its base URL changed since the key was saved); set a new api_key first",
            names::child_name(&m.organization_id, COLLECTION, &m.id)
        ),
    })
}

fn kek(app: &ConfigApp) -> ApiResult<&crypto::Kek> {
    app.kek.as_deref().ok_or_else(|| {
        ApiError::Unavailable(
            "provider credentials are unavailable: no key-encryption key is configured".into(),
        )
    })
}

fn open(kek: &crypto::Kek, m: &cred::Model, sealed: &[u8], field: &str) -> ApiResult<String> {
    let name = names::child_name(&m.organization_id, COLLECTION, &m.id);
    if m.key_id != kek.id() {
        return Err(ApiError::internal(anyhow::anyhow!(
            "credential {name} is sealed under key {} but the configured key is {}; run the re-encryption command",
            m.key_id,
            kek.id()
        )));
    }
    kek.open(sealed, &crypto::aad(&name, field))
        .map_err(|e| ApiError::internal(anyhow::anyhow!("credential {name}: {e}")))
}

pub async fn create(
    app: &ConfigApp,
    principal: &Principal,
    req: pb::CreateProviderCredentialRequest,
) -> ApiResult<pb::CreateProviderCredentialResponse> {
    let (db, caller) = app.context(principal).await?;
    let org = fields::parent("parent", &req.parent)?;
    caller.in_org(&org, &req.parent)?;
    caller.require(ADMIN, "manage provider credentials")?;
    let c = fields::required("provider_credential", req.provider_credential)?;
    let mut v = Violations::new();
    validate::client_id(
        &mut v,
        "provider_credential_id",
        &req.provider_credential_id,
    );
    validate::credential(&c, true, &mut v);
    v.into_result()?;
    let kek = kek(app)?;
    let id = if req.provider_credential_id.is_empty() {
        names::generate_id("credential")
    } else {
        req.provider_credential_id.clone()
    };
    let name = names::child_name(&org, COLLECTION, &id);
    let kind = pb::ProviderKind::try_from(c.kind).unwrap_or_default();
    let now = time::now_us();
    let limits = c.limits.unwrap_or_default();
    let model = cred::Model {
        organization_id: org.clone(),
        id: id.clone(),
        kind: values::kind_key(kind).to_owned(),
        display_name: c.display_name.clone(),
        base_url: if c.base_url.is_empty() {
            validate::default_base_url(kind).to_owned()
        } else {
            c.base_url.trim_end_matches('/').to_owned()
        },
        model: c.model.clone(),
        api_key_ciphertext: kek.seal(&c.api_key, &crypto::aad(&name, "api_key")),
        webhook_secret_ciphertext: (!c.webhook_secret.is_empty())
            .then(|| kek.seal(&c.webhook_secret, &crypto::aad(&name, "webhook_secret"))),
        key_id: kek.id().to_owned(),
        masked_api_key: crypto::mask_key(&c.api_key),
        public_key: c.public_key.trim().to_owned(),
        requests_per_minute: limits.requests_per_minute,
        tokens_per_minute: limits.tokens_per_minute,
        last_test_outcome: None,
        last_test_http_status: None,
        last_test_detail: None,
        last_test_us: None,
        last_test_latency_ms: None,
        etag: domain::new_etag(),
        create_us: now,
        update_us: now,
    };
    let txn = salestrainer_runtime::db::begin_write(db).await?;
    if scr::get(&txn, &org, &id).await?.is_some() {
        return Err(ApiError::AlreadyExists(name));
    }
    match scr::insert(&txn, model.clone()).await {
        Err(e) if store::is_unique_violation(&e) => return Err(ApiError::AlreadyExists(name)),
        other => other?,
    }
    store::record_change(
        &txn,
        Change {
            organization: &org,
            resource: &name,
            resource_type: TYPE,
            kind: ChangeKind::Created,
            display_name: &model.display_name,
            etag: &model.etag,
        },
    )
    .await?;
    txn.commit().await?;
    app.committed();
    Ok(pb::CreateProviderCredentialResponse {
        provider_credential: Some(to_pb(&model)),
    })
}

pub async fn get(
    app: &ConfigApp,
    principal: &Principal,
    req: pb::GetProviderCredentialRequest,
) -> ApiResult<pb::GetProviderCredentialResponse> {
    let (db, caller) = app.context(principal).await?;
    let (org, id) = fields::child("name", &req.name, COLLECTION)?;
    caller.in_org(&org, &req.name)?;
    caller.require(ADMIN, "read provider credentials")?;
    let m = scr::get(db, &org, &id)
        .await?
        .ok_or_else(|| ApiError::NotFound(req.name.clone()))?;
    Ok(pb::GetProviderCredentialResponse {
        provider_credential: Some(to_pb(&m)),
    })
}

pub async fn list(
    app: &ConfigApp,
    principal: &Principal,
    req: pb::ListProviderCredentialsRequest,
) -> ApiResult<pb::ListProviderCredentialsResponse> {
    let (db, caller) = app.context(principal).await?;
    let org = fields::parent("parent", &req.parent)?;
    caller.in_org(&org, &req.parent)?;
    caller.require(ADMIN, "list provider credentials")?;
    fields::no_filter_expression(&req.filter)?;
    let fp = paging::fingerprint(&[&req.parent, COLLECTION]);
    let after = paging::decode(&req.page_token, fp)?;
    let found = scr::list(
        db,
        &org,
        after.as_deref(),
        paging::page_size(req.page_size)?,
    )
    .await?;
    Ok(pb::ListProviderCredentialsResponse {
        provider_credentials: found.items.iter().map(to_pb).collect(),
        next_page_token: found.next_token(fp),
        total_size: 0,
    })
}

pub async fn update(
    app: &ConfigApp,
    principal: &Principal,
    req: pb::UpdateProviderCredentialRequest,
) -> ApiResult<pb::UpdateProviderCredentialResponse> {
    let (db, caller) = app.context(principal).await?;
    let patch = fields::required("provider_credential", req.provider_credential)?;
    let (org, id) = fields::child("provider_credential.name", &patch.name, COLLECTION)?;
    caller.in_org(&org, &patch.name)?;
    caller.require(ADMIN, "manage provider credentials")?;
    const UPDATABLE: &[&str] = &[
        "display_name",
        "base_url",
        "model",
        "api_key",
        "webhook_secret",
        "limits",
        "public_key",
    ];
    // Secrets change only when named explicitly: "*" must not blank a key the client never saw.
    let explicit: Vec<String> = req
        .update_mask
        .as_ref()
        .map(|m| m.paths.clone())
        .unwrap_or_default();
    let mut paths = fields::mask("update_mask", req.update_mask.as_ref(), UPDATABLE)?;
    paths
        .retain(|p| !matches!(*p, "api_key" | "webhook_secret") || explicit.iter().any(|e| e == p));
    let current = scr::get(db, &org, &id)
        .await?
        .ok_or_else(|| ApiError::NotFound(patch.name.clone()))?;
    if !domain::etag_matches(&patch.etag, &current.etag) {
        return Err(fields::etag_aborted(&patch.name));
    }
    let kind = values::kind_from_key(&current.kind);
    let mut check = pb::ProviderCredential {
        kind: kind as i32,
        ..to_pb(&current)
    };
    for p in &paths {
        match *p {
            "display_name" => check.display_name = patch.display_name.clone(),
            "base_url" => check.base_url = patch.base_url.clone(),
            "model" => check.model = patch.model.clone(),
            "api_key" => check.api_key = patch.api_key.clone(),
            "webhook_secret" => check.webhook_secret = patch.webhook_secret.clone(),
            "limits" => check.limits = patch.limits,
            "public_key" => check.public_key = patch.public_key.clone(),
            _ => {}
        }
    }
    let mut v = Violations::new();
    validate::credential(&check, false, &mut v);
    if paths.contains(&"api_key") && check.api_key.trim().is_empty() {
        v.add(
            "provider_credential.api_key",
            "is required when named in update_mask",
        );
    }
    v.into_result()?;
    let kek = kek(app)?;
    let touches_secret = paths.contains(&"api_key") || paths.contains(&"webhook_secret");
    if touches_secret && current.key_id != kek.id() {
        // Sealing one secret under the new key would strand the other under the old one.
        return Err(ApiError::FailedPrecondition {
            reason: "KEY_ROTATION_PENDING",
            message: format!(
                "{} is sealed under an older key-encryption key; run the re-encryption command first",
                patch.name
            ),
        });
    }
    let mut model = cred::Model {
        display_name: check.display_name.clone(),
        base_url: if check.base_url.is_empty() {
            validate::default_base_url(kind).to_owned()
        } else {
            check.base_url.trim_end_matches('/').to_owned()
        },
        model: check.model.clone(),
        public_key: check.public_key.trim().to_owned(),
        requests_per_minute: check.limits.unwrap_or_default().requests_per_minute,
        tokens_per_minute: check.limits.unwrap_or_default().tokens_per_minute,
        etag: domain::new_etag(),
        update_us: time::now_us(),
        ..current.clone()
    };
    if paths.contains(&"api_key") {
        model.api_key_ciphertext = kek.seal(&check.api_key, &crypto::aad(&patch.name, "api_key"));
        model.masked_api_key = crypto::mask_key(&check.api_key);
        // A new key has not been tested.
        model.last_test_outcome = None;
        model.last_test_http_status = None;
        model.last_test_detail = None;
        model.last_test_us = None;
        model.last_test_latency_ms = None;
    }
    // The key was sent for the old endpoint: a new endpoint gets it only when the same
    // request brings it (otherwise an admin could point the URL at their own server and have
    // Test or a grading call deliver the stored key there).
    // (`kind` is immutable today; compared too so making it updatable cannot reopen this.)
    if model.base_url != current.base_url || model.kind != current.kind {
        if !paths.contains(&"api_key") {
            model.api_key_ciphertext = Vec::new();
            model.masked_api_key = String::new();
        }
        // Retell signs webhooks with a key-like secret; Vapi's secret is only compared.
        if kind == pb::ProviderKind::Retell && !paths.contains(&"webhook_secret") {
            model.webhook_secret_ciphertext = None;
        }
        // A test of the old endpoint says nothing about the new one.
        model.last_test_outcome = None;
        model.last_test_http_status = None;
        model.last_test_detail = None;
        model.last_test_us = None;
        model.last_test_latency_ms = None;
    }
    if paths.contains(&"webhook_secret") {
        model.webhook_secret_ciphertext = (!check.webhook_secret.is_empty()).then(|| {
            kek.seal(
                &check.webhook_secret,
                &crypto::aad(&patch.name, "webhook_secret"),
            )
        });
    }
    let txn = salestrainer_runtime::db::begin_write(db).await?;
    if !store::compare_and_swap(
        &txn,
        cred::ActiveModel::from(model.clone()),
        scr::key(&org, &id, &current.etag),
    )
    .await?
    {
        return Err(fields::etag_aborted(&patch.name));
    }
    store::record_change(
        &txn,
        Change {
            organization: &org,
            resource: &patch.name,
            resource_type: TYPE,
            kind: ChangeKind::Updated,
            display_name: &model.display_name,
            etag: &model.etag,
        },
    )
    .await?;
    txn.commit().await?;
    app.committed();
    Ok(pb::UpdateProviderCredentialResponse {
        provider_credential: Some(to_pb(&model)),
    })
}

pub async fn delete(
    app: &ConfigApp,
    principal: &Principal,
    req: pb::DeleteProviderCredentialRequest,
) -> ApiResult<pb::DeleteProviderCredentialResponse> {
    let (db, caller) = app.context(principal).await?;
    let (org, id) = fields::child("name", &req.name, COLLECTION)?;
    caller.in_org(&org, &req.name)?;
    caller.require(ADMIN, "manage provider credentials")?;
    let txn = salestrainer_runtime::db::begin_write(db).await?;
    let current = scr::get(&txn, &org, &id)
        .await?
        .ok_or_else(|| ApiError::NotFound(req.name.clone()))?;
    if let Some(o) = store::organizations::get(&txn, &org).await? {
        let s = super::organizations::settings_from_json(&o.settings);
        if s.default_llm_credential == req.name || s.default_voice_credential == req.name {
            return Err(ApiError::FailedPrecondition {
                reason: "RESOURCE_IN_USE",
                message: format!(
                    "{} is a default credential in the settings of organizations/{org}",
                    req.name
                ),
            });
        }
    }
    if !domain::etag_matches(&req.etag, &current.etag)
        || !scr::delete(&txn, &org, &id, &current.etag).await?
    {
        return Err(fields::etag_aborted(&req.name));
    }
    store::record_change(
        &txn,
        Change {
            organization: &org,
            resource: &req.name,
            resource_type: TYPE,
            kind: ChangeKind::Deleted,
            display_name: &current.display_name,
            etag: "",
        },
    )
    .await?;
    txn.commit().await?;
    app.committed();
    Ok(pb::DeleteProviderCredentialResponse {})
}

/// The cheap authenticated call that proves a key works, per provider kind.
fn probe_url(kind: pb::ProviderKind, base_url: &str) -> String {
    match kind {
        pb::ProviderKind::Vapi => format!("{base_url}/assistant?limit=1"),
        pb::ProviderKind::Retell => format!("{base_url}/list-agents"),
        _ => format!("{base_url}/models"),
    }
}

/// Probes once (never retried: a failed probe is an answer, not an error).
async fn probe(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    timeout: Duration,
) -> pb::CredentialTestResult {
    let started = Instant::now();
    // The whole exchange, connect included, is bounded by `timeout`.
    let sent = tokio::time::timeout(timeout, client.get(url).bearer_auth(key).send()).await;
    let latency = started.elapsed();
    let (outcome, status, detail) = match sent {
        Err(_) => (
            pb::TestOutcome::Timeout,
            0,
            format!("no answer within {} s", timeout.as_secs_f32()),
        ),
        Ok(Err(e)) if e.is_timeout() => (
            pb::TestOutcome::Timeout,
            0,
            format!("no answer within {} s", timeout.as_secs_f32()),
        ),
        Ok(Err(e)) if e.is_connect() => (
            pb::TestOutcome::Unreachable,
            0,
            "could not connect to the provider".to_owned(),
        ),
        Ok(Err(_)) => (
            pb::TestOutcome::Unreachable,
            0,
            "request to the provider failed".to_owned(),
        ),
        Ok(Ok(resp)) => {
            let code = resp.status().as_u16();
            let (outcome, mut detail) = match code {
                200..=299 => (
                    pb::TestOutcome::Ok,
                    "the provider accepted the key".to_owned(),
                ),
                401 | 403 => (
                    pb::TestOutcome::Unauthorized,
                    "the provider rejected the key".to_owned(),
                ),
                _ => (
                    pb::TestOutcome::Error,
                    format!("the provider answered HTTP {code}"),
                ),
            };
            if outcome != pb::TestOutcome::Ok {
                // The provider's own words help the admin; they are scrubbed by the caller
                // (providers quote the key they were sent).
                let left = timeout.saturating_sub(started.elapsed());
                if let Some(said) = provider_message(resp, left).await {
                    detail = format!("{detail}: {said}");
                }
            }
            (outcome, code, detail)
        }
    };
    pb::CredentialTestResult {
        outcome: outcome as i32,
        http_status: i32::from(status),
        detail,
        test_time: Some(time::timestamp(time::now_us())),
        latency: Some(prost_types::Duration {
            seconds: latency.as_secs() as i64,
            nanos: latency.subsec_nanos() as i32,
        }),
    }
}

/// The error message of a provider's answer (`error.message`, `message` or `error`), read
/// from at most the first [`MAX_PROVIDER_BODY`] bytes within `left`, cut to 300 characters.
async fn provider_message(mut resp: reqwest::Response, left: Duration) -> Option<String> {
    const MAX_PROVIDER_BODY: usize = 4096;
    let read = async {
        let mut body = Vec::new();
        while body.len() < MAX_PROVIDER_BODY {
            match resp.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                _ => break,
            }
        }
        body.truncate(MAX_PROVIDER_BODY);
        body
    };
    let body = tokio::time::timeout(left, read).await.ok()?;
    let v: serde_json::Value = serde_json::from_slice(&body).ok()?;
    let text = |v: &serde_json::Value| v.as_str().map(str::to_owned);
    let said = v
        .pointer("/error/message")
        .and_then(text)
        .or_else(|| v.get("message").and_then(text))
        .or_else(|| v.get("error").and_then(text))?;
    let said: String = said.chars().filter(|c| !c.is_control()).take(300).collect();
    (!said.trim().is_empty()).then_some(said)
}

pub async fn test(
    app: &ConfigApp,
    principal: &Principal,
    req: pb::TestProviderCredentialRequest,
) -> ApiResult<pb::TestProviderCredentialResponse> {
    let (db, caller) = app.context(principal).await?;
    let (org, id) = fields::child("name", &req.name, COLLECTION)?;
    caller.in_org(&org, &req.name)?;
    caller.require(ADMIN, "test provider credentials")?;
    let timeout = match &req.timeout {
        None => TEST_TIMEOUT,
        Some(d) if d.seconds < 0 || d.nanos < 0 => {
            return Err(ApiError::invalid("timeout", "must not be negative"));
        }
        Some(d) if d.nanos >= 1_000_000_000 => {
            return Err(ApiError::invalid("timeout", "nanos must be below 1e9"));
        }
        Some(d) if d.seconds == 0 && d.nanos == 0 => TEST_TIMEOUT,
        // Shorter probes are allowed; the hard limit is never exceeded.
        Some(d) => Duration::new(d.seconds as u64, d.nanos as u32).min(TEST_TIMEOUT),
    };
    let current = scr::get(db, &org, &id)
        .await?
        .ok_or_else(|| ApiError::NotFound(req.name.clone()))?;
    require_key(&current)?;
    let kek = kek(app)?;
    let key = open(kek, &current, &current.api_key_ciphertext, "api_key")?;
    let client = app
        .http
        .as_ref()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("no HTTP client")))?;
    let kind = values::kind_from_key(&current.kind);
    let mut result = probe(client, &probe_url(kind, &current.base_url), &key, timeout).await;
    result.detail = redact::scrub(&result.detail, &[&key]);
    drop(key);
    record_test(db, &current, &req.name, &result).await?;
    Ok(pb::TestProviderCredentialResponse {
        result: Some(result),
    })
}

/// Stores the outcome on the credential. The etag stays: a probe does not change what the
/// credential is, so it must not make a concurrent editor's etag stale.
async fn record_test(
    db: &DatabaseConnection,
    current: &cred::Model,
    name: &str,
    r: &pb::CredentialTestResult,
) -> ApiResult<()> {
    let latency_ms = r
        .latency
        .map(|d| d.seconds * 1000 + i64::from(d.nanos) / 1_000_000);
    let model = cred::Model {
        last_test_outcome: Some(
            values::outcome_key(pb::TestOutcome::try_from(r.outcome).unwrap_or_default())
                .to_owned(),
        ),
        last_test_http_status: Some(r.http_status),
        last_test_detail: Some(redact::scrub_patterns(&r.detail)),
        last_test_us: Some(time::now_us()),
        last_test_latency_ms: latency_ms,
        ..current.clone()
    };
    let txn = salestrainer_runtime::db::begin_write(db).await?;
    // If the credential changed during the probe (e.g. a key rotation), this result is
    // about the old key: drop it rather than attach it to the new one.
    if store::compare_and_swap(
        &txn,
        cred::ActiveModel::from(model.clone()),
        scr::key(&current.organization_id, &current.id, &current.etag),
    )
    .await?
    {
        store::record_change(
            &txn,
            Change {
                organization: &current.organization_id,
                resource: name,
                resource_type: TYPE,
                kind: ChangeKind::Updated,
                display_name: &model.display_name,
                etag: &model.etag,
            },
        )
        .await?;
    }
    txn.commit().await?;
    Ok(())
}

pub async fn resolve(
    app: &ConfigApp,
    principal: &Principal,
    req: pb::ResolveProviderCredentialRequest,
) -> ApiResult<pb::ResolveProviderCredentialResponse> {
    let (db, caller) = app.context(principal).await?;
    // The auth layer admits only service identities here; this is defence in depth.
    if !caller.service {
        return Err(ApiError::PermissionDenied(
            "this method is internal: service identities only".into(),
        ));
    }
    let current = if !req.name.is_empty() {
        let (org, id) = fields::child("name", &req.name, COLLECTION)?;
        scr::get(db, &org, &id)
            .await?
            .ok_or_else(|| ApiError::NotFound(req.name.clone()))?
    } else {
        let org = fields::parent("parent", &req.parent)?;
        let kind = pb::ProviderKind::try_from(req.kind).unwrap_or_default();
        if kind == pb::ProviderKind::Unspecified {
            return Err(ApiError::invalid("kind", "is required with parent"));
        }
        let settings = store::organizations::get(db, &org)
            .await?
            .map(|o| super::organizations::settings_from_json(&o.settings))
            .ok_or_else(|| ApiError::NotFound(req.parent.clone()))?;
        let default = if kind == pb::ProviderKind::OpenaiCompatible {
            settings.default_llm_credential
        } else {
            settings.default_voice_credential
        };
        let mut found = None;
        if let Some((o, id)) = names::parse_child(&default, COLLECTION) {
            found = scr::get(db, o, id)
                .await?
                .filter(|c| c.kind == values::kind_key(kind));
        }
        match found {
            Some(c) => c,
            None => scr::first_of_kind(db, &org, values::kind_key(kind))
                .await?
                .ok_or_else(|| {
                    ApiError::NotFound(format!(
                        "{} has no {} credential",
                        req.parent,
                        values::kind_key(kind)
                    ))
                })?,
        }
    };
    require_key(&current)?;
    let kek = kek(app)?;
    let api_key = open(kek, &current, &current.api_key_ciphertext, "api_key")?;
    let webhook_secret = match &current.webhook_secret_ciphertext {
        Some(s) => open(kek, &current, s, "webhook_secret")?,
        None => String::new(),
    };
    Ok(pb::ResolveProviderCredentialResponse {
        name: names::child_name(&current.organization_id, COLLECTION, &current.id),
        kind: values::kind_from_key(&current.kind) as i32,
        base_url: current.base_url.clone(),
        model: current.model.clone(),
        api_key,
        webhook_secret,
        limits: Some(pb::RateLimits {
            requests_per_minute: current.requests_per_minute,
            tokens_per_minute: current.tokens_per_minute,
        }),
        etag: current.etag.clone(),
        public_key: current.public_key.clone(),
    })
}
