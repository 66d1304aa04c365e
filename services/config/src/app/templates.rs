//! Prompt templates: every change is a new revision; old revisions stay readable.

use salestrainer_proto::{config as pb, events::ChangeKind};
use salestrainer_runtime::{ApiError, ApiResult, Principal, Violations, names, paging, time};

use super::{
    ConfigApp,
    access::{ADMIN, ANYONE, Caller},
};
use crate::{
    domain::{self, fields, templates as dt, validate},
    store::{
        self, Change,
        entities::{prompt_template as tpl, prompt_template_revision as rev},
        templates as st,
    },
};

const COLLECTION: &str = "promptTemplates";
const TYPE: &str = "salestrainer.io/PromptTemplate";

fn to_pb(t: &tpl::Model, r: &rev::Model) -> pb::PromptTemplate {
    pb::PromptTemplate {
        name: names::child_name(&t.organization_id, COLLECTION, &t.id),
        purpose: dt::purpose_from_key(&t.purpose) as i32,
        display_name: r.display_name.clone(),
        body: r.body.clone(),
        variables: dt::extract_variables(&r.body).unwrap_or_default(),
        revision: r.revision,
        builtin: t.builtin,
        create_time: Some(time::timestamp(t.create_us)),
        update_time: Some(time::timestamp(r.create_us)),
        etag: r.etag.clone(),
    }
}

/// Trainees read only the built-in templates; custom prompts are staff material.
fn may_read(caller: &Caller, t: &tpl::Model) -> bool {
    !caller.is_trainee() || t.builtin
}

pub async fn create(
    app: &ConfigApp,
    principal: &Principal,
    req: pb::CreatePromptTemplateRequest,
) -> ApiResult<pb::CreatePromptTemplateResponse> {
    let (db, caller) = app.context(principal).await?;
    let org = fields::parent("parent", &req.parent)?;
    caller.in_org(&org, &req.parent)?;
    caller.require(ADMIN, "create prompt templates")?;
    let t = fields::required("prompt_template", req.prompt_template)?;
    let mut v = Violations::new();
    validate::client_id(&mut v, "prompt_template_id", &req.prompt_template_id);
    if req.prompt_template_id.starts_with("builtin-") {
        v.add(
            "prompt_template_id",
            "ids starting with \"builtin-\" are reserved",
        );
    }
    validate::prompt_template(&t, &mut v);
    v.into_result()?;
    let id = if req.prompt_template_id.is_empty() {
        names::generate_id("prompt")
    } else {
        req.prompt_template_id.clone()
    };
    let name = names::child_name(&org, COLLECTION, &id);
    let now = time::now_us();
    let etag = domain::new_etag();
    let purpose = dt::purpose_key(pb::PromptPurpose::try_from(t.purpose).unwrap_or_default());
    let template = tpl::Model {
        organization_id: org.clone(),
        id: id.clone(),
        purpose: purpose.to_owned(),
        display_name: t.display_name.clone(),
        builtin: false,
        revision: 1,
        etag: etag.clone(),
        create_us: now,
        update_us: now,
    };
    let revision = rev::Model {
        organization_id: org.clone(),
        template_id: id.clone(),
        revision: 1,
        display_name: t.display_name.clone(),
        body: t.body.clone(),
        etag: etag.clone(),
        create_us: now,
    };
    let txn = salestrainer_runtime::db::begin_write(db).await?;
    if st::get(&txn, &org, &id).await?.is_some() {
        return Err(ApiError::AlreadyExists(name));
    }
    match st::insert(&txn, template.clone(), revision.clone()).await {
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
            display_name: &t.display_name,
            etag: &etag,
        },
    )
    .await?;
    txn.commit().await?;
    app.committed();
    Ok(pb::CreatePromptTemplateResponse {
        prompt_template: Some(to_pb(&template, &revision)),
    })
}

pub async fn get(
    app: &ConfigApp,
    principal: &Principal,
    req: pb::GetPromptTemplateRequest,
) -> ApiResult<pb::GetPromptTemplateResponse> {
    let (db, caller) = app.context(principal).await?;
    let (org, id) = fields::child("name", &req.name, COLLECTION)?;
    caller.in_org(&org, &req.name)?;
    caller.require(ANYONE, "read prompt templates")?;
    if req.revision < 0 {
        return Err(ApiError::invalid(
            "revision",
            "must be 0 (latest) or a revision number",
        ));
    }
    let t = st::get(db, &org, &id)
        .await?
        .ok_or_else(|| ApiError::NotFound(req.name.clone()))?;
    if !may_read(&caller, &t) {
        return Err(ApiError::PermissionDenied(
            "trainees read only the built-in prompt templates".into(),
        ));
    }
    let wanted = if req.revision == 0 {
        t.revision
    } else {
        req.revision
    };
    let r = st::get_revision(db, &org, &id, wanted)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("{} revision {wanted}", req.name)))?;
    Ok(pb::GetPromptTemplateResponse {
        prompt_template: Some(to_pb(&t, &r)),
    })
}

pub async fn list(
    app: &ConfigApp,
    principal: &Principal,
    req: pb::ListPromptTemplatesRequest,
) -> ApiResult<pb::ListPromptTemplatesResponse> {
    let (db, caller) = app.context(principal).await?;
    let org = fields::parent("parent", &req.parent)?;
    caller.in_org(&org, &req.parent)?;
    caller.require(ANYONE, "list prompt templates")?;
    fields::no_filter_expression(&req.filter)?;
    let purpose = pb::PromptPurpose::try_from(req.purpose)
        .map_err(|_| ApiError::invalid("purpose", "unknown purpose"))?;
    let purpose = (purpose != pb::PromptPurpose::Unspecified).then(|| dt::purpose_key(purpose));
    let fp = paging::fingerprint(&[&req.parent, COLLECTION, purpose.unwrap_or_default()]);
    let after = paging::decode(&req.page_token, fp)?;
    let found = st::list(
        db,
        &org,
        purpose,
        caller.is_trainee(),
        after.as_deref(),
        paging::page_size(req.page_size)?,
    )
    .await?;
    let mut out = Vec::with_capacity(found.items.len());
    for t in &found.items {
        let r = st::get_revision(db, &org, &t.id, t.revision)
            .await?
            .ok_or_else(|| {
                ApiError::internal(anyhow::anyhow!(
                    "template {} lacks its latest revision",
                    t.id
                ))
            })?;
        out.push(to_pb(t, &r));
    }
    Ok(pb::ListPromptTemplatesResponse {
        prompt_templates: out,
        next_page_token: found.next_token(fp),
        total_size: 0,
    })
}

pub async fn list_revisions(
    app: &ConfigApp,
    principal: &Principal,
    req: pb::ListPromptTemplateRevisionsRequest,
) -> ApiResult<pb::ListPromptTemplateRevisionsResponse> {
    let (db, caller) = app.context(principal).await?;
    let (org, id) = fields::child("name", &req.name, COLLECTION)?;
    caller.in_org(&org, &req.name)?;
    caller.require(ANYONE, "read prompt templates")?;
    let t = st::get(db, &org, &id)
        .await?
        .ok_or_else(|| ApiError::NotFound(req.name.clone()))?;
    if !may_read(&caller, &t) {
        return Err(ApiError::PermissionDenied(
            "trainees read only the built-in prompt templates".into(),
        ));
    }
    let fp = paging::fingerprint(&[&req.name, "revisions"]);
    let before = match paging::decode(&req.page_token, fp)? {
        Some(k) => Some(
            k.parse::<i64>()
                .map_err(|_| ApiError::invalid("page_token", "malformed page token"))?,
        ),
        None => None,
    };
    let found =
        st::list_revisions(db, &org, &id, before, paging::page_size(req.page_size)?).await?;
    Ok(pb::ListPromptTemplateRevisionsResponse {
        prompt_templates: found.items.iter().map(|r| to_pb(&t, r)).collect(),
        next_page_token: found.next_token(fp),
    })
}

pub async fn update(
    app: &ConfigApp,
    principal: &Principal,
    req: pb::UpdatePromptTemplateRequest,
) -> ApiResult<pb::UpdatePromptTemplateResponse> {
    let (db, caller) = app.context(principal).await?;
    let patch = fields::required("prompt_template", req.prompt_template)?;
    let (org, id) = fields::child("prompt_template.name", &patch.name, COLLECTION)?;
    caller.in_org(&org, &patch.name)?;
    caller.require(ADMIN, "update prompt templates")?;
    let paths = fields::mask(
        "update_mask",
        req.update_mask.as_ref(),
        &["display_name", "body"],
    )?;
    let t = st::get(db, &org, &id)
        .await?
        .ok_or_else(|| ApiError::NotFound(patch.name.clone()))?;
    if !domain::etag_matches(&patch.etag, &t.etag) {
        return Err(fields::etag_aborted(&patch.name));
    }
    let latest = st::get_revision(db, &org, &id, t.revision)
        .await?
        .ok_or_else(|| {
            ApiError::internal(anyhow::anyhow!("template {id} lacks its latest revision"))
        })?;
    let mut merged = to_pb(&t, &latest);
    for p in &paths {
        match *p {
            "display_name" => merged.display_name = patch.display_name.clone(),
            "body" => merged.body = patch.body.clone(),
            _ => {}
        }
    }
    let mut v = Violations::new();
    validate::prompt_template(&merged, &mut v);
    v.into_result()?;
    let now = time::now_us();
    let etag = domain::new_etag();
    let template = tpl::Model {
        display_name: merged.display_name.clone(),
        revision: t.revision + 1,
        etag: etag.clone(),
        update_us: now,
        ..t.clone()
    };
    let revision = rev::Model {
        organization_id: org.clone(),
        template_id: id.clone(),
        revision: t.revision + 1,
        display_name: merged.display_name.clone(),
        body: merged.body.clone(),
        etag: etag.clone(),
        create_us: now,
    };
    let txn = salestrainer_runtime::db::begin_write(db).await?;
    let swapped = match st::add_revision(&txn, template.clone(), revision.clone(), &t.etag).await {
        // Two writers raced to the same revision number.
        Err(e) if store::is_unique_violation(&e) => false,
        other => other?,
    };
    if !swapped {
        return Err(fields::etag_aborted(&patch.name));
    }
    store::record_change(
        &txn,
        Change {
            organization: &org,
            resource: &patch.name,
            resource_type: TYPE,
            kind: ChangeKind::Updated,
            display_name: &template.display_name,
            etag: &etag,
        },
    )
    .await?;
    txn.commit().await?;
    app.committed();
    Ok(pb::UpdatePromptTemplateResponse {
        prompt_template: Some(to_pb(&template, &revision)),
    })
}

pub async fn delete(
    app: &ConfigApp,
    principal: &Principal,
    req: pb::DeletePromptTemplateRequest,
) -> ApiResult<pb::DeletePromptTemplateResponse> {
    let (db, caller) = app.context(principal).await?;
    let (org, id) = fields::child("name", &req.name, COLLECTION)?;
    caller.in_org(&org, &req.name)?;
    caller.require(ADMIN, "delete prompt templates")?;
    let txn = salestrainer_runtime::db::begin_write(db).await?;
    let t = st::get(&txn, &org, &id)
        .await?
        .ok_or_else(|| ApiError::NotFound(req.name.clone()))?;
    if t.builtin {
        return Err(ApiError::FailedPrecondition {
            reason: "BUILTIN_TEMPLATE",
            message: format!(
                "{} is built in and cannot be deleted; update it to override",
                req.name
            ),
        });
    }
    if !domain::etag_matches(&req.etag, &t.etag) || !st::delete(&txn, &org, &id, &t.etag).await? {
        return Err(fields::etag_aborted(&req.name));
    }
    store::record_change(
        &txn,
        Change {
            organization: &org,
            resource: &req.name,
            resource_type: TYPE,
            kind: ChangeKind::Deleted,
            display_name: &t.display_name,
            etag: "",
        },
    )
    .await?;
    txn.commit().await?;
    app.committed();
    Ok(pb::DeletePromptTemplateResponse {})
}
