//! Personas, scenarios, rubrics and assignments: one generic implementation of the standard
//! methods, with what differs per kind in [`ContentKind`].

use prost::Message;
use salestrainer_proto::{config as pb, events::ChangeKind};
use salestrainer_runtime::{ApiError, ApiResult, Principal, Violations, names, paging, time};
use sea_orm::DatabaseConnection;

use super::{
    ConfigApp,
    access::{ADMIN, ANYONE, Caller, STAFF},
};
use crate::{
    domain::{self, fields, validate},
    store::{
        self, Change,
        content::{self as sc, Filter},
        entities::resource,
    },
};

/// Columns the store filters and joins on, derived from the resource.
#[derive(Default)]
pub struct Columns {
    pub persona_id: Option<String>,
    pub rubric_id: Option<String>,
    pub scenario_id: Option<String>,
    pub open_to_all: bool,
    pub difficulty: Option<String>,
    pub state: Option<String>,
}

/// A reference from one resource to another that must exist in the same organization.
pub struct Reference {
    pub field: String,
    pub collection: &'static str,
    pub name: String,
}

pub trait ContentKind: Message + Default + Clone + Send + Sync + 'static {
    const COLLECTION: &'static str;
    /// The request field holding the resource, e.g. "persona".
    const FIELD: &'static str;
    const TYPE: &'static str;
    const UPDATABLE: &'static [&'static str];
    /// Who may create, update and delete.
    const WRITERS: &'static [salestrainer_runtime::Role];

    fn name(&self) -> &str;
    fn etag(&self) -> &str;
    fn display_name(&self) -> &str;
    fn set_meta(
        &mut self,
        name: String,
        etag: String,
        create: Option<prost_types::Timestamp>,
        update: Option<prost_types::Timestamp>,
    );
    /// Copies the field at `path` from `patch`.
    fn merge_path(&mut self, patch: &Self, path: &str);
    /// Validates (and normalises) the resource; `creating` enables create-only rules.
    fn validate(&mut self, creating: bool, paths: &[&str], v: &mut Violations);
    fn references(&self) -> Vec<Reference>;
    fn columns(&self) -> Columns;
    /// What may refer to this kind: (collection, column) pairs that block deletion.
    fn referrers() -> &'static [(&'static str, resource::Column)] {
        &[]
    }
}

fn row_to<K: ContentKind>(row: &resource::Model) -> ApiResult<K> {
    let mut msg = K::decode(row.spec.as_slice()).map_err(ApiError::internal)?;
    msg.set_meta(
        names::child_name(&row.organization_id, K::COLLECTION, &row.id),
        row.etag.clone(),
        Some(time::timestamp(row.create_us)),
        Some(time::timestamp(row.update_us)),
    );
    Ok(msg)
}

fn to_row<K: ContentKind>(
    org: &str,
    id: &str,
    msg: &K,
    etag: &str,
    create_us: i64,
    update_us: i64,
) -> resource::Model {
    let mut spec = msg.clone();
    spec.set_meta(String::new(), String::new(), None, None);
    let c = msg.columns();
    resource::Model {
        organization_id: org.to_owned(),
        collection: K::COLLECTION.to_owned(),
        id: id.to_owned(),
        display_name: msg.display_name().to_owned(),
        spec: spec.encode_to_vec(),
        persona_id: c.persona_id,
        rubric_id: c.rubric_id,
        scenario_id: c.scenario_id,
        open_to_all: c.open_to_all,
        difficulty: c.difficulty,
        state: c.state,
        etag: etag.to_owned(),
        create_us,
        update_us,
    }
}

/// Adds a violation for every reference that is not an existing resource of `org`.
async fn check_references<K: ContentKind>(
    db: &DatabaseConnection,
    org: &str,
    msg: &K,
    v: &mut Violations,
) -> ApiResult<()> {
    let mut members = Vec::new();
    for r in msg.references() {
        let Some((ref_org, id)) = names::parse_child(&r.name, r.collection) else {
            continue; // shape errors are reported by validation
        };
        if ref_org != org {
            v.add(r.field, "must be in the same organization");
            continue;
        }
        if r.collection == "members" {
            members.push((r.field, id.to_owned()));
        } else if sc::get(db, org, r.collection, id).await?.is_none() {
            v.add(r.field, format!("{} does not exist", r.name));
        }
    }
    if !members.is_empty() {
        let ids: Vec<String> = members.iter().map(|(_, id)| id.clone()).collect();
        let existing = store::organizations::existing_members(db, org, &ids).await?;
        for (field, id) in members {
            if !existing.contains(&id) {
                v.add(field, "is not a member of the organization");
            }
        }
    }
    Ok(())
}

/// Whether a trainee may read this resource.
async fn trainee_may_read<K: ContentKind>(
    db: &DatabaseConnection,
    caller: &Caller<'_>,
    org: &str,
    id: &str,
) -> ApiResult<bool> {
    if K::COLLECTION == sc::CERTIFICATIONS {
        // What there is to earn is no secret within the organization.
        return Ok(true);
    }
    if K::COLLECTION == sc::ASSIGNMENTS {
        return Ok(sc::assignments_of(db, org, &caller.member_id)
            .await?
            .iter()
            .any(|a| a == id));
    }
    let visible = sc::visible_to(db, org, &caller.member_id).await?;
    let set = match K::COLLECTION {
        sc::PERSONAS => &visible.personas,
        sc::RUBRICS => &visible.rubrics,
        _ => &visible.scenarios,
    };
    Ok(set.contains(id))
}

fn event<'a>(
    org: &'a str,
    name: &'a str,
    kind: ChangeKind,
    display: &'a str,
    etag: &'a str,
    ty: &'a str,
) -> Change<'a> {
    Change {
        organization: org,
        resource: name,
        resource_type: ty,
        kind,
        display_name: display,
        etag,
    }
}

/// Keeps the join table of assignees in step with an assignment.
async fn sync_assignees<K: ContentKind, C: sea_orm::ConnectionTrait>(
    conn: &C,
    org: &str,
    id: &str,
    msg: &K,
) -> ApiResult<()> {
    if K::COLLECTION != sc::ASSIGNMENTS {
        return Ok(());
    }
    let members: Vec<String> = msg
        .references()
        .into_iter()
        .filter(|r| r.collection == "members")
        .filter_map(|r| names::parse_child(&r.name, "members").map(|(_, id)| id.to_owned()))
        .collect();
    sc::set_assignees(conn, org, id, &members).await?;
    Ok(())
}

pub async fn create<K: ContentKind>(
    app: &ConfigApp,
    principal: &Principal,
    parent: &str,
    msg: Option<K>,
    client_id: &str,
) -> ApiResult<K> {
    let (db, caller) = app.context(principal).await?;
    let org = fields::parent("parent", parent)?;
    caller.in_org(&org, parent)?;
    caller.require(K::WRITERS, format_args!("create {}", K::COLLECTION))?;
    let mut msg = fields::required(K::FIELD, msg)?;
    let mut v = Violations::new();
    validate::client_id(&mut v, &format!("{}_id", K::FIELD), client_id);
    msg.validate(true, K::UPDATABLE, &mut v);
    check_references(db, &org, &msg, &mut v).await?;
    v.into_result()?;

    let id = if client_id.is_empty() {
        names::generate_id(K::FIELD)
    } else {
        client_id.to_owned()
    };
    let name = names::child_name(&org, K::COLLECTION, &id);
    let etag = domain::new_etag();
    let now = time::now_us();
    let row = to_row(&org, &id, &msg, &etag, now, now);
    let txn = salestrainer_runtime::db::begin_write(db).await?;
    if sc::get(&txn, &org, K::COLLECTION, &id).await?.is_some() {
        return Err(ApiError::AlreadyExists(name));
    }
    match sc::insert(&txn, row.clone()).await {
        Err(e) if store::is_unique_violation(&e) => return Err(ApiError::AlreadyExists(name)),
        other => other?,
    }
    sync_assignees(&txn, &org, &id, &msg).await?;
    store::record_change(
        &txn,
        event(
            &org,
            &name,
            ChangeKind::Created,
            msg.display_name(),
            &etag,
            K::TYPE,
        ),
    )
    .await?;
    txn.commit().await?;
    app.cache.resource_changed(&org, K::COLLECTION, &id);
    app.committed();
    row_to(&row)
}

pub async fn get<K: ContentKind>(
    app: &ConfigApp,
    principal: &Principal,
    name: &str,
) -> ApiResult<K> {
    let (db, caller) = app.context(principal).await?;
    let (org, id) = fields::child_ref("name", name, K::COLLECTION)?;
    caller.in_org(org, name)?;
    caller.require(ANYONE, format_args!("read {}", K::COLLECTION))?;
    let cached = app
        .cache
        .resource(db, org, K::COLLECTION, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(name.to_owned()))?;
    if caller.is_trainee() && !trainee_may_read::<K>(db, &caller, org, id).await? {
        return Err(ApiError::PermissionDenied(format!(
            "trainees read only the {} of their own assignments or of scenarios open to all",
            K::COLLECTION
        )));
    }
    cached.message(row_to::<K>)
}

pub(super) struct Listed<K> {
    pub(super) items: Vec<K>,
    pub(super) next_page_token: String,
}

/// `query` names the typed filters so a page token only works with the same ones.
pub(super) async fn list<K: ContentKind>(
    app: &ConfigApp,
    principal: &Principal,
    parent: &str,
    mut filter: Filter,
    query: &[&str],
    filter_expr: &str,
    (page_size, page_token): (i32, &str),
) -> ApiResult<Listed<K>> {
    let (db, caller) = app.context(principal).await?;
    let org = fields::parent("parent", parent)?;
    caller.in_org(&org, parent)?;
    caller.require(ANYONE, format_args!("list {}", K::COLLECTION))?;
    fields::no_filter_expression(filter_expr)?;
    let mut parts = vec![parent, K::COLLECTION];
    parts.extend_from_slice(query);
    let fp = paging::fingerprint(&parts);
    let after = paging::decode(page_token, fp)?;
    if caller.is_trainee() && K::COLLECTION != sc::CERTIFICATIONS {
        if K::COLLECTION == sc::ASSIGNMENTS {
            filter.assignee = Some(caller.member_id.to_string());
        } else {
            let visible = sc::visible_to(db, &org, &caller.member_id).await?;
            filter.ids = Some(match K::COLLECTION {
                sc::PERSONAS => visible.personas,
                sc::RUBRICS => visible.rubrics,
                _ => visible.scenarios,
            });
        }
    }
    let limit = paging::page_size(page_size)?;
    let found = sc::list(db, &org, K::COLLECTION, &filter, after.as_deref(), limit).await?;
    let items = found
        .items
        .iter()
        .map(row_to)
        .collect::<ApiResult<Vec<K>>>()?;
    Ok(Listed {
        items,
        next_page_token: found.next_token(fp),
    })
}

pub async fn list_personas(
    app: &ConfigApp,
    principal: &Principal,
    req: pb::ListPersonasRequest,
) -> ApiResult<pb::ListPersonasResponse> {
    let filter = Filter {
        difficulty: difficulty_filter(req.difficulty),
        ..Filter::default()
    };
    let listed = list::<pb::Persona>(
        app,
        principal,
        &req.parent,
        filter,
        &[&req.difficulty.to_string()],
        &req.filter,
        (req.page_size, &req.page_token),
    )
    .await?;
    Ok(pb::ListPersonasResponse {
        personas: listed.items,
        next_page_token: listed.next_page_token,
        total_size: 0,
    })
}

pub async fn list_scenarios(
    app: &ConfigApp,
    principal: &Principal,
    req: pb::ListScenariosRequest,
) -> ApiResult<pb::ListScenariosResponse> {
    let filter = Filter {
        persona_id: id_of(&req.persona, "personas"),
        rubric_id: id_of(&req.rubric, "rubrics"),
        ..Filter::default()
    };
    let listed = list::<pb::Scenario>(
        app,
        principal,
        &req.parent,
        filter,
        &[&req.persona, &req.rubric],
        &req.filter,
        (req.page_size, &req.page_token),
    )
    .await?;
    Ok(pb::ListScenariosResponse {
        scenarios: listed.items,
        next_page_token: listed.next_page_token,
        total_size: 0,
    })
}

pub async fn list_rubrics(
    app: &ConfigApp,
    principal: &Principal,
    req: pb::ListRubricsRequest,
) -> ApiResult<pb::ListRubricsResponse> {
    let listed = list::<pb::Rubric>(
        app,
        principal,
        &req.parent,
        Filter::default(),
        &[],
        &req.filter,
        (req.page_size, &req.page_token),
    )
    .await?;
    Ok(pb::ListRubricsResponse {
        rubrics: listed.items,
        next_page_token: listed.next_page_token,
        total_size: 0,
    })
}

pub async fn list_assignments(
    app: &ConfigApp,
    principal: &Principal,
    req: pb::ListAssignmentsRequest,
) -> ApiResult<pb::ListAssignmentsResponse> {
    let filter = Filter {
        scenario_id: id_of(&req.scenario, "scenarios"),
        assignee: id_of(&req.assignee, "members"),
        state: state_filter(req.state),
        ..Filter::default()
    };
    let listed = list::<pb::Assignment>(
        app,
        principal,
        &req.parent,
        filter,
        &[&req.scenario, &req.assignee, &req.state.to_string()],
        &req.filter,
        (req.page_size, &req.page_token),
    )
    .await?;
    Ok(pb::ListAssignmentsResponse {
        assignments: listed.items,
        next_page_token: listed.next_page_token,
        total_size: 0,
    })
}

/// The id in a typed reference filter; a malformed or empty name matches nothing / no constraint.
fn id_of(name: &str, collection: &str) -> Option<String> {
    if name.is_empty() {
        return None;
    }
    Some(
        names::parse_child(name, collection)
            .map(|(_, id)| id.to_owned())
            // Never matches a real id, so a bad filter returns nothing rather than everything.
            .unwrap_or_else(|| "-".to_owned()),
    )
}

pub async fn update<K: ContentKind>(
    app: &ConfigApp,
    principal: &Principal,
    patch: Option<K>,
    mask: Option<&prost_types::FieldMask>,
) -> ApiResult<K> {
    let (db, caller) = app.context(principal).await?;
    let patch = fields::required(K::FIELD, patch)?;
    let name = patch.name().to_owned();
    let (org, id) = fields::child(&format!("{}.name", K::FIELD), &name, K::COLLECTION)?;
    caller.in_org(&org, &name)?;
    caller.require(K::WRITERS, format_args!("update {}", K::COLLECTION))?;
    let paths = fields::mask("update_mask", mask, K::UPDATABLE)?;

    let row = sc::get(db, &org, K::COLLECTION, &id)
        .await?
        .ok_or_else(|| ApiError::NotFound(name.clone()))?;
    if !domain::etag_matches(patch.etag(), &row.etag) {
        return Err(fields::etag_aborted(&name));
    }
    let mut msg: K = row_to(&row)?;
    for p in &paths {
        msg.merge_path(&patch, p);
    }
    let mut v = Violations::new();
    msg.validate(false, &paths, &mut v);
    check_references(db, &org, &msg, &mut v).await?;
    v.into_result()?;

    let etag = domain::new_etag();
    let updated = to_row(&org, &id, &msg, &etag, row.create_us, time::now_us());
    let txn = salestrainer_runtime::db::begin_write(db).await?;
    // Compare-and-swap on the etag read above: a concurrent writer makes this fail.
    if !store::compare_and_swap(
        &txn,
        resource::ActiveModel::from(updated.clone()),
        sc::key(&org, K::COLLECTION, &id, &row.etag),
    )
    .await?
    {
        return Err(fields::etag_aborted(&name));
    }
    sync_assignees(&txn, &org, &id, &msg).await?;
    store::record_change(
        &txn,
        event(
            &org,
            &name,
            ChangeKind::Updated,
            msg.display_name(),
            &etag,
            K::TYPE,
        ),
    )
    .await?;
    txn.commit().await?;
    app.cache.resource_changed(&org, K::COLLECTION, &id);
    app.committed();
    row_to(&updated)
}

pub async fn delete<K: ContentKind>(
    app: &ConfigApp,
    principal: &Principal,
    name: &str,
    etag: &str,
) -> ApiResult<()> {
    let (db, caller) = app.context(principal).await?;
    let (org, id) = fields::child("name", name, K::COLLECTION)?;
    caller.in_org(&org, name)?;
    caller.require(K::WRITERS, format_args!("delete {}", K::COLLECTION))?;
    let txn = salestrainer_runtime::db::begin_write(db).await?;
    let row = sc::get(&txn, &org, K::COLLECTION, &id)
        .await?
        .ok_or_else(|| ApiError::NotFound(name.to_owned()))?;
    if !domain::etag_matches(etag, &row.etag) {
        return Err(fields::etag_aborted(name));
    }
    for (collection, column) in K::referrers() {
        if let Some(by) = sc::first_reference(&txn, &org, collection, *column, &id).await? {
            let what = if *collection == sc::ASSIGNMENTS {
                "open assignment"
            } else {
                collection.trim_end_matches('s')
            };
            return Err(ApiError::FailedPrecondition {
                reason: "RESOURCE_IN_USE",
                message: format!(
                    "{name} is used by {what} {}",
                    names::child_name(&org, collection, &by)
                ),
            });
        }
    }
    if !sc::delete(&txn, &org, K::COLLECTION, &id, &row.etag).await? {
        return Err(fields::etag_aborted(name));
    }
    store::record_change(
        &txn,
        event(
            &org,
            name,
            ChangeKind::Deleted,
            &row.display_name,
            "",
            K::TYPE,
        ),
    )
    .await?;
    txn.commit().await?;
    app.cache.resource_changed(&org, K::COLLECTION, &id);
    app.committed();
    Ok(())
}

// ---- the four kinds ----

/// The `ContentKind` accessors every content message has alike; a kind without a
/// `display_name` field writes its own (`meta!(without_display_name)`).
macro_rules! meta {
    () => {
        meta!(without_display_name);
        fn display_name(&self) -> &str {
            &self.display_name
        }
    };
    (without_display_name) => {
        fn name(&self) -> &str {
            &self.name
        }
        fn etag(&self) -> &str {
            &self.etag
        }
        fn set_meta(
            &mut self,
            name: String,
            etag: String,
            create: Option<prost_types::Timestamp>,
            update: Option<prost_types::Timestamp>,
        ) {
            self.name = name;
            self.etag = etag;
            self.create_time = create;
            self.update_time = update;
        }
    };
}
pub(super) use meta;

fn difficulty_key(d: i32) -> &'static str {
    match pb::Difficulty::try_from(d).unwrap_or_default() {
        pb::Difficulty::Easy => "easy",
        pb::Difficulty::Medium | pb::Difficulty::Unspecified => "medium",
        pb::Difficulty::Hard => "hard",
    }
}

fn difficulty_filter(d: i32) -> Option<String> {
    (d != 0).then(|| difficulty_key(d).to_owned())
}

fn state_filter(s: i32) -> Option<String> {
    match pb::AssignmentState::try_from(s).unwrap_or_default() {
        pb::AssignmentState::Unspecified => None,
        pb::AssignmentState::Open => Some("open".into()),
        pb::AssignmentState::Closed => Some("closed".into()),
    }
}

impl ContentKind for pb::Persona {
    const COLLECTION: &'static str = sc::PERSONAS;
    const FIELD: &'static str = "persona";
    const TYPE: &'static str = "salestrainer.io/Persona";
    const UPDATABLE: &'static [&'static str] = &[
        "display_name",
        "role",
        "company",
        "background",
        "personality",
        "objections",
        "difficulty",
        "voice_id",
        "first_message",
    ];
    const WRITERS: &'static [salestrainer_runtime::Role] = ADMIN;
    meta!();

    fn merge_path(&mut self, p: &Self, path: &str) {
        match path {
            "display_name" => self.display_name = p.display_name.clone(),
            "role" => self.role = p.role.clone(),
            "company" => self.company = p.company.clone(),
            "background" => self.background = p.background.clone(),
            "personality" => self.personality = p.personality.clone(),
            "objections" => self.objections = p.objections.clone(),
            "difficulty" => self.difficulty = p.difficulty,
            "voice_id" => self.voice_id = p.voice_id.clone(),
            "first_message" => self.first_message = p.first_message.clone(),
            _ => {}
        }
    }
    fn validate(&mut self, _creating: bool, _paths: &[&str], v: &mut Violations) {
        validate::persona(self, v);
        if self.difficulty == pb::Difficulty::Unspecified as i32 {
            self.difficulty = pb::Difficulty::Medium as i32;
        }
    }
    fn references(&self) -> Vec<Reference> {
        Vec::new()
    }
    fn columns(&self) -> Columns {
        Columns {
            difficulty: Some(difficulty_key(self.difficulty).to_owned()),
            ..Columns::default()
        }
    }
    fn referrers() -> &'static [(&'static str, resource::Column)] {
        &[(sc::SCENARIOS, resource::Column::PersonaId)]
    }
}

impl ContentKind for pb::Scenario {
    const COLLECTION: &'static str = sc::SCENARIOS;
    const FIELD: &'static str = "scenario";
    const TYPE: &'static str = "salestrainer.io/Scenario";
    const UPDATABLE: &'static [&'static str] = &[
        "display_name",
        "persona",
        "product_brief",
        "goal",
        "rubric",
        "time_limit",
        "open_to_all",
    ];
    const WRITERS: &'static [salestrainer_runtime::Role] = ADMIN;
    meta!();

    fn merge_path(&mut self, p: &Self, path: &str) {
        match path {
            "display_name" => self.display_name = p.display_name.clone(),
            "persona" => self.persona = p.persona.clone(),
            "product_brief" => self.product_brief = p.product_brief.clone(),
            "goal" => self.goal = p.goal.clone(),
            "rubric" => self.rubric = p.rubric.clone(),
            "time_limit" => self.time_limit = p.time_limit,
            "open_to_all" => self.open_to_all = p.open_to_all,
            _ => {}
        }
    }
    fn validate(&mut self, _creating: bool, _paths: &[&str], v: &mut Violations) {
        validate::scenario(self, v);
    }
    fn references(&self) -> Vec<Reference> {
        vec![
            Reference {
                field: "scenario.persona".into(),
                collection: sc::PERSONAS,
                name: self.persona.clone(),
            },
            Reference {
                field: "scenario.rubric".into(),
                collection: sc::RUBRICS,
                name: self.rubric.clone(),
            },
        ]
    }
    fn columns(&self) -> Columns {
        Columns {
            persona_id: names::parse_child(&self.persona, sc::PERSONAS)
                .map(|(_, id)| id.to_owned()),
            rubric_id: names::parse_child(&self.rubric, sc::RUBRICS).map(|(_, id)| id.to_owned()),
            open_to_all: self.open_to_all,
            ..Columns::default()
        }
    }
    fn referrers() -> &'static [(&'static str, resource::Column)] {
        &[(sc::ASSIGNMENTS, resource::Column::ScenarioId)]
    }
}

impl ContentKind for pb::Rubric {
    const COLLECTION: &'static str = sc::RUBRICS;
    const FIELD: &'static str = "rubric";
    const TYPE: &'static str = "salestrainer.io/Rubric";
    const UPDATABLE: &'static [&'static str] = &["display_name", "criteria", "passing_score"];
    const WRITERS: &'static [salestrainer_runtime::Role] = ADMIN;
    meta!();

    fn merge_path(&mut self, p: &Self, path: &str) {
        match path {
            "display_name" => self.display_name = p.display_name.clone(),
            "criteria" => self.criteria = p.criteria.clone(),
            "passing_score" => self.passing_score = p.passing_score,
            _ => {}
        }
    }
    fn validate(&mut self, _creating: bool, _paths: &[&str], v: &mut Violations) {
        validate::rubric(self, v);
    }
    fn references(&self) -> Vec<Reference> {
        Vec::new()
    }
    fn columns(&self) -> Columns {
        Columns::default()
    }
    fn referrers() -> &'static [(&'static str, resource::Column)] {
        &[(sc::SCENARIOS, resource::Column::RubricId)]
    }
}

impl ContentKind for pb::Assignment {
    const COLLECTION: &'static str = sc::ASSIGNMENTS;
    const FIELD: &'static str = "assignment";
    const TYPE: &'static str = "salestrainer.io/Assignment";
    const UPDATABLE: &'static [&'static str] = &[
        "scenario",
        "assignees",
        "due_time",
        "required_attempts",
        "passing_score",
        "state",
    ];
    const WRITERS: &'static [salestrainer_runtime::Role] = STAFF;

    meta!(without_display_name);
    fn display_name(&self) -> &str {
        // Assignments have no display name; events carry the scenario instead.
        &self.scenario
    }
    fn merge_path(&mut self, p: &Self, path: &str) {
        match path {
            "scenario" => self.scenario = p.scenario.clone(),
            "assignees" => self.assignees = p.assignees.clone(),
            "due_time" => self.due_time = p.due_time,
            "required_attempts" => self.required_attempts = p.required_attempts,
            "passing_score" => self.passing_score = p.passing_score,
            "state" => self.state = p.state,
            _ => {}
        }
    }
    fn validate(&mut self, creating: bool, paths: &[&str], v: &mut Violations) {
        // A due time must be in the future when it is set, not every time the assignment
        // is touched afterwards.
        let check_due = creating || paths.contains(&"due_time");
        validate::assignment(self, time::now_us(), check_due, v);
        if self.required_attempts == 0 {
            self.required_attempts = 1;
        }
        if self.state == pb::AssignmentState::Unspecified as i32 {
            self.state = pb::AssignmentState::Open as i32;
        }
    }
    fn references(&self) -> Vec<Reference> {
        let mut refs = vec![Reference {
            field: "assignment.scenario".into(),
            collection: sc::SCENARIOS,
            name: self.scenario.clone(),
        }];
        for (i, m) in self.assignees.iter().enumerate() {
            refs.push(Reference {
                field: format!("assignment.assignees[{i}]"),
                collection: "members",
                name: m.clone(),
            });
        }
        refs
    }
    fn columns(&self) -> Columns {
        Columns {
            scenario_id: names::parse_child(&self.scenario, sc::SCENARIOS)
                .map(|(_, id)| id.to_owned()),
            state: state_filter(self.state).or(Some("open".into())),
            ..Columns::default()
        }
    }
}
