//! Organizations and members.

use salestrainer_proto::{config as pb, events::ChangeKind};
use salestrainer_runtime::{ApiError, ApiResult, Principal, Violations, names, paging, time};

use super::{
    ConfigApp,
    access::{ADMIN, ANYONE},
};
use crate::{
    domain::{self, fields, stored_values as values, validate},
    store::{
        self, Change,
        entities::{member, organization},
        organizations as so,
    },
};

const ORG_TYPE: &str = "salestrainer.io/Organization";
const MEMBER_TYPE: &str = "salestrainer.io/Member";
const MEMBERS: &str = "members";

fn settings_to_json(s: &pb::OrganizationSettings) -> serde_json::Value {
    serde_json::json!({
        "leaderboard_visible_to_trainees": s.leaderboard_visible_to_trainees,
        "default_llm_credential": s.default_llm_credential,
        "default_voice_credential": s.default_voice_credential,
    })
}

pub fn settings_from_json(v: &serde_json::Value) -> pb::OrganizationSettings {
    let s = |k: &str| {
        v.get(k)
            .and_then(|x| x.as_str())
            .unwrap_or_default()
            .to_owned()
    };
    pb::OrganizationSettings {
        leaderboard_visible_to_trainees: v
            .get("leaderboard_visible_to_trainees")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false),
        default_llm_credential: s("default_llm_credential"),
        default_voice_credential: s("default_voice_credential"),
    }
}

fn org_to_pb(m: &organization::Model) -> pb::Organization {
    pb::Organization {
        name: names::organization_name(&m.id),
        display_name: m.display_name.clone(),
        settings: Some(settings_from_json(&m.settings)),
        create_time: Some(time::timestamp(m.create_us)),
        update_time: Some(time::timestamp(m.update_us)),
        etag: m.etag.clone(),
    }
}

fn member_to_pb(m: &member::Model) -> pb::Member {
    pb::Member {
        name: names::child_name(&m.organization_id, MEMBERS, &m.id),
        subject: m.subject.clone(),
        display_name: m.display_name.clone(),
        email: m.email.clone(),
        role: values::role_from_key(&m.role) as i32,
        create_time: Some(time::timestamp(m.create_us)),
        update_time: Some(time::timestamp(m.update_us)),
        etag: m.etag.clone(),
    }
}

/// Default credentials named in settings must be this organization's.
fn check_settings_org(org: &str, s: Option<&pb::OrganizationSettings>, v: &mut Violations) {
    let Some(s) = s else { return };
    for (field, value) in [
        (
            "organization.settings.default_llm_credential",
            &s.default_llm_credential,
        ),
        (
            "organization.settings.default_voice_credential",
            &s.default_voice_credential,
        ),
    ] {
        if let Some((o, _)) = names::parse_child(value, "credentials")
            && o != org
        {
            v.add(field, "must be a credential of this organization");
        }
    }
}

pub async fn create_organization(
    app: &ConfigApp,
    principal: &Principal,
    req: pb::CreateOrganizationRequest,
) -> ApiResult<pb::CreateOrganizationResponse> {
    let (db, caller) = app.context(principal).await?;
    // Creating tenants is a platform operation: service identities (the provisioning
    // tooling), not the admins of some other organization.
    if !caller.service {
        return Err(ApiError::PermissionDenied(
            "only the platform (a service identity) creates organizations".into(),
        ));
    }
    let org = fields::required("organization", req.organization)?;
    let mut v = Violations::new();
    validate::client_id(&mut v, "organization_id", &req.organization_id);
    validate::organization(&org, &mut v);
    let id = if req.organization_id.is_empty() {
        names::generate_id("org")
    } else {
        req.organization_id.clone()
    };
    check_settings_org(&id, org.settings.as_ref(), &mut v);
    v.into_result()?;
    let name = names::organization_name(&id);
    let now = time::now_us();
    let model = organization::Model {
        id: id.clone(),
        display_name: org.display_name.clone(),
        settings: settings_to_json(&org.settings.unwrap_or_default()),
        etag: domain::new_etag(),
        create_us: now,
        update_us: now,
    };
    let txn = salestrainer_runtime::db::begin_write(db).await?;
    if so::get(&txn, &id).await?.is_some() {
        return Err(ApiError::AlreadyExists(name));
    }
    use sea_orm::ActiveModelTrait;
    match organization::ActiveModel::from(model.clone())
        .reset_all()
        .insert(&txn)
        .await
    {
        Err(e) if store::is_unique_violation(&e) => return Err(ApiError::AlreadyExists(name)),
        other => other?,
    };
    store::templates::seed_builtins(&txn, &id, now).await?;
    store::record_change(
        &txn,
        Change {
            organization: &id,
            resource: &name,
            resource_type: ORG_TYPE,
            kind: ChangeKind::Created,
            display_name: &model.display_name,
            etag: &model.etag,
        },
    )
    .await?;
    txn.commit().await?;
    app.committed();
    Ok(pb::CreateOrganizationResponse {
        organization: Some(org_to_pb(&model)),
    })
}

pub async fn get_organization(
    app: &ConfigApp,
    principal: &Principal,
    req: pb::GetOrganizationRequest,
) -> ApiResult<pb::GetOrganizationResponse> {
    let (db, caller) = app.context(principal).await?;
    let id = fields::parent("name", &req.name)?;
    caller.in_org(&id, &req.name)?;
    caller.require(ANYONE, "read the organization")?;
    let m = so::get(db, &id)
        .await?
        .ok_or_else(|| ApiError::NotFound(req.name.clone()))?;
    Ok(pb::GetOrganizationResponse {
        organization: Some(org_to_pb(&m)),
    })
}

pub async fn list_organizations(
    app: &ConfigApp,
    principal: &Principal,
    req: pb::ListOrganizationsRequest,
) -> ApiResult<pb::ListOrganizationsResponse> {
    let (db, caller) = app.context(principal).await?;
    fields::no_filter_expression(&req.filter)?;
    let fp = paging::fingerprint(&["organizations", caller.org]);
    let after = paging::decode(&req.page_token, fp)?;
    let only = (!caller.service).then_some(caller.org);
    let found = so::list(
        db,
        only,
        after.as_deref(),
        paging::page_size(req.page_size)?,
    )
    .await?;
    Ok(pb::ListOrganizationsResponse {
        organizations: found.items.iter().map(org_to_pb).collect(),
        next_page_token: found.next_token(fp),
        total_size: 0,
    })
}

pub async fn update_organization(
    app: &ConfigApp,
    principal: &Principal,
    req: pb::UpdateOrganizationRequest,
) -> ApiResult<pb::UpdateOrganizationResponse> {
    let (db, caller) = app.context(principal).await?;
    let patch = fields::required("organization", req.organization)?;
    let id = fields::parent("organization.name", &patch.name)?;
    caller.in_org(&id, &patch.name)?;
    caller.require(ADMIN, "update the organization")?;
    const UPDATABLE: &[&str] = &[
        "display_name",
        "settings",
        "settings.leaderboard_visible_to_trainees",
        "settings.default_llm_credential",
        "settings.default_voice_credential",
    ];
    let mut paths = fields::mask("update_mask", req.update_mask.as_ref(), UPDATABLE)?;
    // "*" expands to every path; the sub-paths of settings are then covered by "settings".
    if paths.contains(&"settings") {
        paths.retain(|p| !p.starts_with("settings."));
    }
    let current = so::get(db, &id)
        .await?
        .ok_or_else(|| ApiError::NotFound(patch.name.clone()))?;
    if !domain::etag_matches(&patch.etag, &current.etag) {
        return Err(fields::etag_aborted(&patch.name));
    }
    let mut org = org_to_pb(&current);
    let mut settings = org.settings.clone().unwrap_or_default();
    let new_settings = patch.settings.clone().unwrap_or_default();
    for p in &paths {
        match *p {
            "display_name" => org.display_name = patch.display_name.clone(),
            "settings" => settings = new_settings.clone(),
            "settings.leaderboard_visible_to_trainees" => {
                settings.leaderboard_visible_to_trainees =
                    new_settings.leaderboard_visible_to_trainees
            }
            "settings.default_llm_credential" => {
                settings.default_llm_credential = new_settings.default_llm_credential.clone()
            }
            "settings.default_voice_credential" => {
                settings.default_voice_credential = new_settings.default_voice_credential.clone()
            }
            _ => {}
        }
    }
    org.settings = Some(settings.clone());
    let mut v = Violations::new();
    validate::organization(&org, &mut v);
    check_settings_org(&id, Some(&settings), &mut v);
    for (field, value) in [
        (
            "organization.settings.default_llm_credential",
            &settings.default_llm_credential,
        ),
        (
            "organization.settings.default_voice_credential",
            &settings.default_voice_credential,
        ),
    ] {
        if let Some((o, cid)) = names::parse_child(value, "credentials")
            && o == id
            && store::credentials::get(db, &id, cid).await?.is_none()
        {
            v.add(field, format!("{value} does not exist"));
        }
    }
    v.into_result()?;
    let model = organization::Model {
        display_name: org.display_name.clone(),
        settings: settings_to_json(&settings),
        etag: domain::new_etag(),
        update_us: time::now_us(),
        ..current.clone()
    };
    let txn = salestrainer_runtime::db::begin_write(db).await?;
    if !store::compare_and_swap(
        &txn,
        organization::ActiveModel::from(model.clone()),
        so::organization_key(&id, &current.etag),
    )
    .await?
    {
        return Err(fields::etag_aborted(&patch.name));
    }
    store::record_change(
        &txn,
        Change {
            organization: &id,
            resource: &patch.name,
            resource_type: ORG_TYPE,
            kind: ChangeKind::Updated,
            display_name: &model.display_name,
            etag: &model.etag,
        },
    )
    .await?;
    txn.commit().await?;
    app.committed();
    Ok(pb::UpdateOrganizationResponse {
        organization: Some(org_to_pb(&model)),
    })
}

pub async fn create_member(
    app: &ConfigApp,
    principal: &Principal,
    req: pb::CreateMemberRequest,
) -> ApiResult<pb::CreateMemberResponse> {
    let (db, caller) = app.context(principal).await?;
    let org = fields::parent("parent", &req.parent)?;
    caller.in_org(&org, &req.parent)?;
    caller.require(ADMIN, "add members")?;
    let m = fields::required("member", req.member)?;
    let mut v = Violations::new();
    validate::client_id(&mut v, "member_id", &req.member_id);
    validate::member(&m, &mut v);
    v.into_result()?;
    if so::get(db, &org).await?.is_none() {
        return Err(ApiError::NotFound(req.parent.clone()));
    }
    let id = if req.member_id.is_empty() {
        names::generate_id("member")
    } else {
        req.member_id.clone()
    };
    let name = names::child_name(&org, MEMBERS, &id);
    let now = time::now_us();
    let model = member::Model {
        id: id.clone(),
        organization_id: org.clone(),
        subject: m.subject.clone(),
        display_name: m.display_name.clone(),
        email: m.email.clone(),
        role: values::role_key(pb::Role::try_from(m.role).unwrap_or_default())
            .unwrap_or("trainee")
            .to_owned(),
        etag: domain::new_etag(),
        create_us: now,
        update_us: now,
    };
    let txn = salestrainer_runtime::db::begin_write(db).await?;
    if so::get_member(&txn, &org, &id).await?.is_some() {
        return Err(ApiError::AlreadyExists(name));
    }
    if so::member_by_subject(&txn, &org, &m.subject)
        .await?
        .is_some()
    {
        return Err(ApiError::AlreadyExists(format!(
            "a member bound to subject {:?}",
            m.subject
        )));
    }
    use sea_orm::ActiveModelTrait;
    match member::ActiveModel::from(model.clone())
        .reset_all()
        .insert(&txn)
        .await
    {
        Err(e) if store::is_unique_violation(&e) => return Err(ApiError::AlreadyExists(name)),
        other => other?,
    };
    store::record_change(
        &txn,
        Change {
            organization: &org,
            resource: &name,
            resource_type: MEMBER_TYPE,
            kind: ChangeKind::Created,
            display_name: &model.display_name,
            etag: &model.etag,
        },
    )
    .await?;
    txn.commit().await?;
    app.cache.members_changed(&org);
    app.committed();
    Ok(pb::CreateMemberResponse {
        member: Some(member_to_pb(&model)),
    })
}

pub async fn get_member(
    app: &ConfigApp,
    principal: &Principal,
    req: pb::GetMemberRequest,
) -> ApiResult<pb::GetMemberResponse> {
    let (db, caller) = app.context(principal).await?;
    let (org, id) = fields::child("name", &req.name, MEMBERS)?;
    caller.in_org(&org, &req.name)?;
    if caller.is_trainee() && *caller.member_id != *id {
        return Err(ApiError::PermissionDenied(
            "trainees read only their own member record".into(),
        ));
    }
    let m = so::get_member(db, &org, &id)
        .await?
        .ok_or_else(|| ApiError::NotFound(req.name.clone()))?;
    Ok(pb::GetMemberResponse {
        member: Some(member_to_pb(&m)),
    })
}

pub async fn list_members(
    app: &ConfigApp,
    principal: &Principal,
    req: pb::ListMembersRequest,
) -> ApiResult<pb::ListMembersResponse> {
    let (db, caller) = app.context(principal).await?;
    let org = fields::parent("parent", &req.parent)?;
    caller.in_org(&org, &req.parent)?;
    fields::no_filter_expression(&req.filter)?;
    let role =
        pb::Role::try_from(req.role).map_err(|_| ApiError::invalid("role", "unknown role"))?;
    let role_s = values::role_key(role).unwrap_or_default();
    let fp = paging::fingerprint(&[&req.parent, "members", role_s, &req.subject]);
    let after = paging::decode(&req.page_token, fp)?;
    let mut filter = so::MemberFilter {
        role: values::role_key(role).map(str::to_owned),
        subject: (!req.subject.is_empty()).then(|| req.subject.clone()),
    };
    let limit = paging::page_size(req.page_size)?;
    let found = if caller.is_trainee() {
        // A trainee sees only their own record.
        let own = so::get_member(db, &org, &caller.member_id).await?;
        filter.subject = None;
        let items: Vec<member::Model> = own
            .into_iter()
            .filter(|m| after.as_deref().is_none_or(|a| m.id.as_str() > a))
            .filter(|m| filter.role.as_deref().is_none_or(|r| m.role == r))
            .filter(|m| req.subject.is_empty() || m.subject == req.subject)
            .collect();
        store::Page {
            items,
            next_after: None,
        }
    } else {
        so::list_members(db, &org, &filter, after.as_deref(), limit).await?
    };
    Ok(pb::ListMembersResponse {
        members: found.items.iter().map(member_to_pb).collect(),
        next_page_token: found.next_token(fp),
        total_size: 0,
    })
}

pub async fn update_member(
    app: &ConfigApp,
    principal: &Principal,
    req: pb::UpdateMemberRequest,
) -> ApiResult<pb::UpdateMemberResponse> {
    let (db, caller) = app.context(principal).await?;
    let patch = fields::required("member", req.member)?;
    let (org, id) = fields::child("member.name", &patch.name, MEMBERS)?;
    caller.in_org(&org, &patch.name)?;
    caller.require(ADMIN, "change members or roles")?;
    let paths = fields::mask(
        "update_mask",
        req.update_mask.as_ref(),
        &["display_name", "email", "role"],
    )?;
    let current = so::get_member(db, &org, &id)
        .await?
        .ok_or_else(|| ApiError::NotFound(patch.name.clone()))?;
    if !domain::etag_matches(&patch.etag, &current.etag) {
        return Err(fields::etag_aborted(&patch.name));
    }
    let mut m = member_to_pb(&current);
    for p in &paths {
        match *p {
            "display_name" => m.display_name = patch.display_name.clone(),
            "email" => m.email = patch.email.clone(),
            "role" => m.role = patch.role,
            _ => {}
        }
    }
    let mut v = Violations::new();
    validate::member(&m, &mut v);
    v.into_result()?;
    let role =
        values::role_key(pb::Role::try_from(m.role).unwrap_or_default()).unwrap_or("trainee");
    let txn = salestrainer_runtime::db::begin_write(db).await?;
    if current.role == "admin" && role != "admin" && so::other_admins(&txn, &org, &id).await? == 0 {
        return Err(ApiError::FailedPrecondition {
            reason: "LAST_ADMIN",
            message: format!("{} is the organization's last admin", patch.name),
        });
    }
    let model = member::Model {
        display_name: m.display_name.clone(),
        email: m.email.clone(),
        role: role.to_owned(),
        etag: domain::new_etag(),
        update_us: time::now_us(),
        ..current.clone()
    };
    if !store::compare_and_swap(
        &txn,
        member::ActiveModel::from(model.clone()),
        so::member_key(&org, &id, &current.etag),
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
            resource_type: MEMBER_TYPE,
            kind: ChangeKind::Updated,
            display_name: &model.display_name,
            etag: &model.etag,
        },
    )
    .await?;
    txn.commit().await?;
    app.cache.members_changed(&org);
    app.committed();
    Ok(pb::UpdateMemberResponse {
        member: Some(member_to_pb(&model)),
    })
}

pub async fn delete_member(
    app: &ConfigApp,
    principal: &Principal,
    req: pb::DeleteMemberRequest,
) -> ApiResult<pb::DeleteMemberResponse> {
    let (db, caller) = app.context(principal).await?;
    let (org, id) = fields::child("name", &req.name, MEMBERS)?;
    caller.in_org(&org, &req.name)?;
    caller.require(ADMIN, "remove members")?;
    let txn = salestrainer_runtime::db::begin_write(db).await?;
    let current = so::get_member(&txn, &org, &id)
        .await?
        .ok_or_else(|| ApiError::NotFound(req.name.clone()))?;
    if !domain::etag_matches(&req.etag, &current.etag) {
        return Err(fields::etag_aborted(&req.name));
    }
    if current.role == "admin" && so::other_admins(&txn, &org, &id).await? == 0 {
        return Err(ApiError::FailedPrecondition {
            reason: "LAST_ADMIN",
            message: format!("{} is the organization's last admin", req.name),
        });
    }
    if let Some(a) = store::content::open_assignment_of(&txn, &org, &id).await? {
        return Err(ApiError::FailedPrecondition {
            reason: "RESOURCE_IN_USE",
            message: format!(
                "{} is an assignee of open assignment {}",
                req.name,
                names::child_name(&org, "assignments", &a)
            ),
        });
    }
    if !so::delete_member(&txn, &org, &id, &current.etag).await? {
        return Err(fields::etag_aborted(&req.name));
    }
    store::record_change(
        &txn,
        Change {
            organization: &org,
            resource: &req.name,
            resource_type: MEMBER_TYPE,
            kind: ChangeKind::Deleted,
            display_name: &current.display_name,
            etag: "",
        },
    )
    .await?;
    txn.commit().await?;
    app.cache.members_changed(&org);
    app.committed();
    Ok(pb::DeleteMemberResponse {})
}
