//! The authorization matrix of the whole contract: every RPC of the four services (config,
//! call, grading, analytics; streams opened and read to their first message) × seven callers
//! — admin, manager, trainee, another organization's admin, a non-member (valid token, no
//! member row), a demoted member (was manager, now trainee; the token still says manager) and
//! a removed member (the token still valid) — over a real connection, on SQLite and
//! PostgreSQL. The list of rows is checked against the descriptor set, so a new RPC fails
//! here until it has its rows.
//!
//! The rows name real resources where one exists to name (tom's graded TEXT session, its
//! grading job and evaluation, tom's member record): an allowed caller must then get past
//! authorization *and* find it (any code but PERMISSION_DENIED, UNAUTHENTICATED or
//! NOT_FOUND; FAILED_PRECONDITION on a graded session is fine). Rows naming a missing
//! resource (most config rows, writes whose body is empty) accept NOT_FOUND or
//! INVALID_ARGUMENT from an allowed caller: what matters is that it got past authorization
//! and changed nothing. A refused caller gets PERMISSION_DENIED; another organization's
//! caller gets NOT_FOUND (its data does not exist for them).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{future::Future, pin::Pin};

use salestrainer_proto::{analytics as an, call, config as pb, events as ev, grading as gr};
use salestrainer_tests::{Backend, authed};
use support::{ORG, World, code, first, member};
use tonic::Code;

type Call = Box<dyn Fn(String) -> Pin<Box<dyn Future<Output = Code> + Send>>>;

/// Who the policy lets through.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Who {
    /// Admins of the organization.
    Admin,
    /// Admins and managers.
    Staff,
    /// Every member (what a trainee then sees of it may be narrowed to their own).
    Member,
    /// Every member, about their own organization only (the request names none).
    Own,
    /// Staff, and the trainee the resource belongs to (tom).
    Owner,
    /// As `Owner`, for a missing child of tom's existing session (a comment): another
    /// trainee does not find the session, so NOT_FOUND is a refusal too.
    OwnerChild,
    /// Only the trainee the session belongs to (tom), not even staff.
    SessionTrainee,
    /// Service identities only: every user token is refused.
    Service,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Caller {
    Admin,
    Manager,
    Trainee,
    OtherAdmin,
    NonMember,
    Demoted,
    Removed,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    Allowed,
    /// PERMISSION_DENIED.
    Refused,
    /// Refused, or hidden as NOT_FOUND (another trainee's resource).
    RefusedOrHidden,
    /// NOT_FOUND: another organization's data does not exist for the caller.
    Hidden,
}

struct Row {
    service: &'static str,
    rpc: &'static str,
    who: Who,
    /// The request names an existing resource: an allowed caller must find it.
    found: bool,
    call: Call,
}

fn expect(caller: Caller, row: &Row) -> Expect {
    use Caller as C;
    use Expect::*;
    match (caller, row.who) {
        (C::NonMember | C::Removed, _) | (_, Who::Service) => Refused,
        (C::OtherAdmin, Who::Own) => Allowed,
        (C::OtherAdmin, _) => Hidden,
        (C::Admin, Who::SessionTrainee) => Refused,
        (C::Admin, _) => Allowed,
        (C::Manager, Who::Admin | Who::SessionTrainee) => Refused,
        (C::Manager, _) => Allowed,
        (C::Trainee, Who::Admin | Who::Staff) => Refused,
        (C::Trainee, _) => Allowed,
        (C::Demoted, Who::Member | Who::Own) => Allowed,
        (C::Demoted, Who::OwnerChild) => RefusedOrHidden,
        // tom's resource: another trainee's, for dan.
        (C::Demoted, _) if row.found => RefusedOrHidden,
        (C::Demoted, _) => Refused,
    }
}

fn meets(expect: Expect, got: Code, row: &Row) -> bool {
    match expect {
        Expect::Allowed => {
            let refused = matches!(got, Code::PermissionDenied | Code::Unauthenticated);
            let missing = row.found && got == Code::NotFound;
            !refused && !missing
        }
        Expect::Refused => got == Code::PermissionDenied,
        Expect::RefusedOrHidden => matches!(got, Code::PermissionDenied | Code::NotFound),
        // The config service's model has always accepted either for another organization's
        // names (it never tells them apart from missing ones, and never lets them through).
        Expect::Hidden if row.service == "config" => {
            matches!(got, Code::NotFound | Code::PermissionDenied)
        }
        Expect::Hidden => got == Code::NotFound,
    }
}

macro_rules! unary {
    ($svc:literal, $rpc:literal, $who:expr, $found:expr, $client:expr, $method:ident, $msg:expr) => {{
        let client = $client;
        let msg = $msg;
        Row {
            service: $svc,
            rpc: $rpc,
            who: $who,
            found: $found,
            call: Box::new(move |token: String| {
                let mut c = client.clone();
                let m = msg.clone();
                Box::pin(async move { code(c.$method(authed(m, &token)).await) })
            }),
        }
    }};
}

macro_rules! server_stream {
    ($svc:literal, $rpc:literal, $who:expr, $client:expr, $method:ident, $msg:expr) => {{
        let client = $client;
        let msg = $msg;
        Row {
            service: $svc,
            rpc: $rpc,
            who: $who,
            found: true,
            call: Box::new(move |token: String| {
                let mut c = client.clone();
                let m = msg.clone();
                Box::pin(async move { first(c.$method(authed(m, &token)).await).await })
            }),
        }
    }};
}

fn missing(collection: &str) -> String {
    format!("{ORG}/{collection}/matrix-missing")
}

fn config_rows(w: &World) -> Vec<Row> {
    use Who::*;
    let c = || w.config();
    let child = missing;
    vec![
        unary!(
            "config",
            "CreateOrganization",
            Service,
            false,
            c(),
            create_organization,
            pb::CreateOrganizationRequest::default()
        ),
        unary!(
            "config",
            "ListOrganizations",
            Own,
            true,
            c(),
            list_organizations,
            pb::ListOrganizationsRequest::default()
        ),
        unary!(
            "config",
            "GetOrganization",
            Member,
            true,
            c(),
            get_organization,
            pb::GetOrganizationRequest { name: ORG.into() }
        ),
        unary!(
            "config",
            "UpdateOrganization",
            Admin,
            false,
            c(),
            update_organization,
            pb::UpdateOrganizationRequest {
                organization: Some(pb::Organization {
                    name: ORG.into(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["no_such_field".into()]
                }),
            }
        ),
        unary!(
            "config",
            "CreateMember",
            Admin,
            false,
            c(),
            create_member,
            pb::CreateMemberRequest {
                parent: ORG.into(),
                ..Default::default()
            }
        ),
        // tom's record: staff read it, and tom himself; dan (a trainee now) may not.
        unary!(
            "config",
            "GetMember",
            Owner,
            true,
            c(),
            get_member,
            pb::GetMemberRequest {
                name: member("tom")
            }
        ),
        // A trainee's list holds only their own record.
        unary!(
            "config",
            "ListMembers",
            Member,
            true,
            c(),
            list_members,
            pb::ListMembersRequest {
                parent: ORG.into(),
                ..Default::default()
            }
        ),
        unary!(
            "config",
            "UpdateMember",
            Admin,
            false,
            c(),
            update_member,
            pb::UpdateMemberRequest {
                member: Some(pb::Member {
                    name: child("members"),
                    ..Default::default()
                }),
                ..Default::default()
            }
        ),
        unary!(
            "config",
            "DeleteMember",
            Admin,
            false,
            c(),
            delete_member,
            pb::DeleteMemberRequest {
                name: child("members"),
                ..Default::default()
            }
        ),
        unary!(
            "config",
            "CreateProviderCredential",
            Admin,
            false,
            c(),
            create_provider_credential,
            pb::CreateProviderCredentialRequest {
                parent: ORG.into(),
                ..Default::default()
            }
        ),
        unary!(
            "config",
            "GetProviderCredential",
            Admin,
            false,
            c(),
            get_provider_credential,
            pb::GetProviderCredentialRequest {
                name: child("credentials")
            }
        ),
        unary!(
            "config",
            "ListProviderCredentials",
            Admin,
            true,
            c(),
            list_provider_credentials,
            pb::ListProviderCredentialsRequest {
                parent: ORG.into(),
                ..Default::default()
            }
        ),
        unary!(
            "config",
            "UpdateProviderCredential",
            Admin,
            false,
            c(),
            update_provider_credential,
            pb::UpdateProviderCredentialRequest {
                provider_credential: Some(pb::ProviderCredential {
                    name: child("credentials"),
                    ..Default::default()
                }),
                ..Default::default()
            }
        ),
        unary!(
            "config",
            "DeleteProviderCredential",
            Admin,
            false,
            c(),
            delete_provider_credential,
            pb::DeleteProviderCredentialRequest {
                name: child("credentials"),
                ..Default::default()
            }
        ),
        unary!(
            "config",
            "TestProviderCredential",
            Admin,
            false,
            c(),
            test_provider_credential,
            pb::TestProviderCredentialRequest {
                name: child("credentials"),
                ..Default::default()
            }
        ),
        unary!(
            "config",
            "ResolveProviderCredential",
            Service,
            false,
            c(),
            resolve_provider_credential,
            pb::ResolveProviderCredentialRequest::default()
        ),
        unary!(
            "config",
            "CreatePersona",
            Admin,
            false,
            c(),
            create_persona,
            pb::CreatePersonaRequest {
                parent: ORG.into(),
                ..Default::default()
            }
        ),
        unary!(
            "config",
            "GetPersona",
            Member,
            false,
            c(),
            get_persona,
            pb::GetPersonaRequest {
                name: child("personas")
            }
        ),
        unary!(
            "config",
            "ListPersonas",
            Member,
            true,
            c(),
            list_personas,
            pb::ListPersonasRequest {
                parent: ORG.into(),
                ..Default::default()
            }
        ),
        unary!(
            "config",
            "UpdatePersona",
            Admin,
            false,
            c(),
            update_persona,
            pb::UpdatePersonaRequest {
                persona: Some(pb::Persona {
                    name: child("personas"),
                    ..Default::default()
                }),
                ..Default::default()
            }
        ),
        unary!(
            "config",
            "DeletePersona",
            Admin,
            false,
            c(),
            delete_persona,
            pb::DeletePersonaRequest {
                name: child("personas"),
                ..Default::default()
            }
        ),
        unary!(
            "config",
            "CreateScenario",
            Admin,
            false,
            c(),
            create_scenario,
            pb::CreateScenarioRequest {
                parent: ORG.into(),
                ..Default::default()
            }
        ),
        // The scenario is open to all: every member may read it.
        unary!(
            "config",
            "GetScenario",
            Member,
            true,
            c(),
            get_scenario,
            pb::GetScenarioRequest {
                name: w.scenario.clone()
            }
        ),
        unary!(
            "config",
            "ListScenarios",
            Member,
            true,
            c(),
            list_scenarios,
            pb::ListScenariosRequest {
                parent: ORG.into(),
                ..Default::default()
            }
        ),
        unary!(
            "config",
            "UpdateScenario",
            Admin,
            false,
            c(),
            update_scenario,
            pb::UpdateScenarioRequest {
                scenario: Some(pb::Scenario {
                    name: child("scenarios"),
                    ..Default::default()
                }),
                ..Default::default()
            }
        ),
        unary!(
            "config",
            "DeleteScenario",
            Admin,
            false,
            c(),
            delete_scenario,
            pb::DeleteScenarioRequest {
                name: child("scenarios"),
                ..Default::default()
            }
        ),
        unary!(
            "config",
            "CreateRubric",
            Admin,
            false,
            c(),
            create_rubric,
            pb::CreateRubricRequest {
                parent: ORG.into(),
                ..Default::default()
            }
        ),
        unary!(
            "config",
            "GetRubric",
            Member,
            false,
            c(),
            get_rubric,
            pb::GetRubricRequest {
                name: child("rubrics")
            }
        ),
        unary!(
            "config",
            "ListRubrics",
            Member,
            true,
            c(),
            list_rubrics,
            pb::ListRubricsRequest {
                parent: ORG.into(),
                ..Default::default()
            }
        ),
        unary!(
            "config",
            "UpdateRubric",
            Admin,
            false,
            c(),
            update_rubric,
            pb::UpdateRubricRequest {
                rubric: Some(pb::Rubric {
                    name: child("rubrics"),
                    ..Default::default()
                }),
                ..Default::default()
            }
        ),
        unary!(
            "config",
            "DeleteRubric",
            Admin,
            false,
            c(),
            delete_rubric,
            pb::DeleteRubricRequest {
                name: child("rubrics"),
                ..Default::default()
            }
        ),
        unary!(
            "config",
            "CreatePromptTemplate",
            Admin,
            false,
            c(),
            create_prompt_template,
            pb::CreatePromptTemplateRequest {
                parent: ORG.into(),
                ..Default::default()
            }
        ),
        unary!(
            "config",
            "GetPromptTemplate",
            Member,
            false,
            c(),
            get_prompt_template,
            pb::GetPromptTemplateRequest {
                name: child("promptTemplates"),
                ..Default::default()
            }
        ),
        unary!(
            "config",
            "ListPromptTemplates",
            Member,
            true,
            c(),
            list_prompt_templates,
            pb::ListPromptTemplatesRequest {
                parent: ORG.into(),
                ..Default::default()
            }
        ),
        unary!(
            "config",
            "ListPromptTemplateRevisions",
            Member,
            false,
            c(),
            list_prompt_template_revisions,
            pb::ListPromptTemplateRevisionsRequest {
                name: child("promptTemplates"),
                ..Default::default()
            }
        ),
        unary!(
            "config",
            "UpdatePromptTemplate",
            Admin,
            false,
            c(),
            update_prompt_template,
            pb::UpdatePromptTemplateRequest {
                prompt_template: Some(pb::PromptTemplate {
                    name: child("promptTemplates"),
                    ..Default::default()
                }),
                ..Default::default()
            }
        ),
        unary!(
            "config",
            "DeletePromptTemplate",
            Admin,
            false,
            c(),
            delete_prompt_template,
            pb::DeletePromptTemplateRequest {
                name: child("promptTemplates"),
                ..Default::default()
            }
        ),
        unary!(
            "config",
            "CreateAssignment",
            Staff,
            false,
            c(),
            create_assignment,
            pb::CreateAssignmentRequest {
                parent: ORG.into(),
                ..Default::default()
            }
        ),
        unary!(
            "config",
            "GetAssignment",
            Member,
            false,
            c(),
            get_assignment,
            pb::GetAssignmentRequest {
                name: child("assignments")
            }
        ),
        unary!(
            "config",
            "ListAssignments",
            Member,
            true,
            c(),
            list_assignments,
            pb::ListAssignmentsRequest {
                parent: ORG.into(),
                ..Default::default()
            }
        ),
        unary!(
            "config",
            "UpdateAssignment",
            Staff,
            false,
            c(),
            update_assignment,
            pb::UpdateAssignmentRequest {
                assignment: Some(pb::Assignment {
                    name: child("assignments"),
                    ..Default::default()
                }),
                ..Default::default()
            }
        ),
        unary!(
            "config",
            "DeleteAssignment",
            Staff,
            false,
            c(),
            delete_assignment,
            pb::DeleteAssignmentRequest {
                name: child("assignments"),
                ..Default::default()
            }
        ), // An empty certification: INVALID_ARGUMENT for admins once authorized.
        unary!(
            "config",
            "CreateCertification",
            Admin,
            false,
            c(),
            create_certification,
            pb::CreateCertificationRequest {
                parent: ORG.into(),
                ..Default::default()
            }
        ),
        // Every member reads what there is to earn.
        unary!(
            "config",
            "GetCertification",
            Member,
            false,
            c(),
            get_certification,
            pb::GetCertificationRequest {
                name: child("certifications")
            }
        ),
        unary!(
            "config",
            "ListCertifications",
            Member,
            true,
            c(),
            list_certifications,
            pb::ListCertificationsRequest {
                parent: ORG.into(),
                ..Default::default()
            }
        ),
        unary!(
            "config",
            "UpdateCertification",
            Admin,
            false,
            c(),
            update_certification,
            pb::UpdateCertificationRequest {
                certification: Some(pb::Certification {
                    name: child("certifications"),
                    ..Default::default()
                }),
                ..Default::default()
            }
        ),
        unary!(
            "config",
            "DeleteCertification",
            Admin,
            false,
            c(),
            delete_certification,
            pb::DeleteCertificationRequest {
                name: child("certifications"),
                ..Default::default()
            }
        ),
    ]
}

/// tom's session is GRADED: the writes on it answer FAILED_PRECONDITION (or return it
/// unchanged) to whoever may make them, after authorization.
fn call_rows(w: &World) -> Vec<Row> {
    use Who::*;
    let c = || w.call();
    let session = w.session.clone();
    let converse = {
        let client = w.call();
        let session = session.clone();
        Row {
            service: "call",
            rpc: "Converse",
            who: SessionTrainee,
            found: true,
            call: Box::new(move |token: String| {
                let mut c = client.clone();
                let start = call::ConverseRequest {
                    payload: Some(call::converse_request::Payload::Start(
                        call::ConverseStart {
                            session: session.clone(),
                        },
                    )),
                };
                Box::pin(async move {
                    first(
                        c.converse(authed(tokio_stream::iter(vec![start]), &token))
                            .await,
                    )
                    .await
                })
            }),
        }
    };
    let append = {
        let client = w.call();
        let session = session.clone();
        Row {
            service: "call",
            rpc: "AppendTranscript",
            // The trainee's client writes the trainee's side; staff have no side to write.
            who: SessionTrainee,
            found: true,
            call: Box::new(move |token: String| {
                let mut c = client.clone();
                let msg = call::AppendTranscriptRequest {
                    session: session.clone(),
                    segment: Some(call::TranscriptSegment {
                        segment_id: "matrix-1".into(),
                        speaker: call::Speaker::Trainee as i32,
                        text: "hello".into(),
                        r#final: true,
                        ..Default::default()
                    }),
                };
                Box::pin(async move {
                    code(
                        c.append_transcript(authed(tokio_stream::iter(vec![msg]), &token))
                            .await,
                    )
                })
            }),
        }
    };
    vec![
        // Any member starts their own session in an open scenario.
        unary!(
            "call",
            "StartSession",
            Member,
            true,
            c(),
            start_session,
            call::StartSessionRequest {
                parent: ORG.into(),
                scenario: w.scenario.clone(),
                assignment: String::new(),
                mode: call::SessionMode::Text as i32,
                request_id: String::new(),
                drill: String::new(),
            }
        ),
        // Staff import a real call for any member; a trainee only their own (tom's here).
        unary!(
            "call",
            "ImportCall",
            Owner,
            true,
            c(),
            import_call,
            call::ImportCallRequest {
                parent: ORG.into(),
                trainee: member("tom"),
                scenario: w.scenario.clone(),
                rubric: format!("{ORG}/rubrics/discovery"),
                content: "Tom: Hi, Tom from Acme.\nBuyer: We already have a vendor.\n".into(),
                rep_speaker: "Tom".into(),
                ..Default::default()
            }
        ),
        unary!(
            "call",
            "GetSession",
            Owner,
            true,
            c(),
            get_session,
            call::GetSessionRequest {
                name: session.clone()
            }
        ),
        // A trainee's list holds only their own sessions.
        unary!(
            "call",
            "ListSessions",
            Member,
            true,
            c(),
            list_sessions,
            call::ListSessionsRequest {
                parent: ORG.into(),
                ..Default::default()
            }
        ),
        // Whether the organization's trainees can call from the browser: any member.
        unary!(
            "call",
            "GetVoiceConfig",
            Member,
            true,
            c(),
            get_voice_config,
            call::GetVoiceConfigRequest {
                name: format!("{ORG}/voiceConfig")
            }
        ),
        // The assistant carries the persona's prompt: its own trainee only, not even staff
        // (tom's session is a graded TEXT one, so tom gets FAILED_PRECONDITION, past access).
        unary!(
            "call",
            "GetVoiceSetup",
            SessionTrainee,
            true,
            c(),
            get_voice_setup,
            call::GetVoiceSetupRequest {
                name: format!("{session}/voiceSetup")
            }
        ),
        unary!(
            "call",
            "EndSession",
            Owner,
            true,
            c(),
            end_session,
            call::EndSessionRequest {
                name: session.clone(),
                etag: String::new(),
            }
        ),
        unary!(
            "call",
            "CancelSession",
            Owner,
            true,
            c(),
            cancel_session,
            call::CancelSessionRequest {
                name: session.clone(),
                etag: String::new(),
            }
        ),
        converse,
        // The browser's form of Converse: the session's own trainee only.
        server_stream!(
            "call",
            "SendTurn",
            SessionTrainee,
            c(),
            send_turn,
            call::SendTurnRequest {
                session: session.clone(),
                text: "hello".into(),
                client_turn_id: "matrix-turn-1".into(),
            }
        ),
        append,
        unary!(
            "call",
            "GetTranscript",
            Owner,
            true,
            c(),
            get_transcript,
            call::GetTranscriptRequest {
                name: format!("{session}/transcript")
            }
        ),
        server_stream!(
            "call",
            "WatchSession",
            Owner,
            c(),
            watch_session,
            call::WatchSessionRequest {
                name: session.clone(),
                ..Default::default()
            }
        ),
        // No anchor: an allowed caller gets past authorization to INVALID_ARGUMENT, and
        // nothing is written.
        unary!(
            "call",
            "CreateComment",
            Owner,
            true,
            c(),
            create_comment,
            call::CreateCommentRequest {
                parent: session.clone(),
                comment: Some(call::Comment {
                    body: "matrix".into(),
                    ..Default::default()
                }),
            }
        ),
        unary!(
            "call",
            "ListComments",
            Owner,
            true,
            c(),
            list_comments,
            call::ListCommentsRequest {
                parent: session.clone(),
                ..Default::default()
            }
        ),
        unary!(
            "call",
            "DeleteComment",
            OwnerChild,
            false,
            c(),
            delete_comment,
            call::DeleteCommentRequest {
                name: format!("{session}/comments/matrix-missing"),
            }
        ),
    ]
}

fn grading_rows(w: &World) -> Vec<Row> {
    use Who::*;
    let c = || w.grading();
    vec![
        unary!(
            "grading",
            "SubmitSession",
            Service,
            false,
            c(),
            submit_session,
            gr::SubmitSessionRequest {
                session: w.session.clone(),
                organization: ORG.into(),
                scenario: w.scenario.clone(),
                rubric: String::new(),
                trainee: member("tom"),
                assignment: String::new(),
                request_id: "matrix".into(),
                ..Default::default()
            }
        ),
        unary!(
            "grading",
            "BatchGetSessionOutcomes",
            Service,
            false,
            c(),
            batch_get_session_outcomes,
            gr::BatchGetSessionOutcomesRequest {
                sessions: vec![w.session.clone()],
            }
        ),
        unary!(
            "grading",
            "GetGradingJob",
            Owner,
            true,
            c(),
            get_grading_job,
            gr::GetGradingJobRequest {
                name: w.job.clone()
            }
        ),
        // A trainee's list holds only their own jobs.
        unary!(
            "grading",
            "ListGradingJobs",
            Member,
            true,
            c(),
            list_grading_jobs,
            gr::ListGradingJobsRequest {
                parent: ORG.into(),
                ..Default::default()
            }
        ),
        // A SUCCEEDED job: FAILED_PRECONDITION for staff, after authorization.
        unary!(
            "grading",
            "RetryGradingJob",
            Staff,
            true,
            c(),
            retry_grading_job,
            gr::RetryGradingJobRequest {
                name: w.job.clone(),
                etag: String::new(),
            }
        ),
        unary!(
            "grading",
            "GetEvaluation",
            Owner,
            true,
            c(),
            get_evaluation,
            gr::GetEvaluationRequest {
                name: w.evaluation.clone()
            }
        ),
        // A trainee's list holds only their own evaluations.
        unary!(
            "grading",
            "ListEvaluations",
            Member,
            true,
            c(),
            list_evaluations,
            gr::ListEvaluationsRequest {
                parent: ORG.into(),
                ..Default::default()
            }
        ),
        // A session never graded: NOT_FOUND for staff (nothing is created).
        unary!(
            "grading",
            "RegradeSession",
            Staff,
            false,
            c(),
            regrade_session,
            gr::RegradeSessionRequest {
                session: missing("sessions"),
                rubric: String::new(),
                request_id: "matrix".into(),
            }
        ),
        // No score and no reason: INVALID_ARGUMENT for staff once authorized (nothing changes).
        unary!(
            "grading",
            "OverrideEvaluation",
            Staff,
            true,
            c(),
            override_evaluation,
            gr::OverrideEvaluationRequest {
                name: w.evaluation.clone(),
                ..Default::default()
            }
        ),
        // Nothing named and no reason: INVALID_ARGUMENT for staff once authorized.
        unary!(
            "grading",
            "ClearEvaluationOverride",
            Staff,
            true,
            c(),
            clear_evaluation_override,
            gr::ClearEvaluationOverrideRequest {
                name: w.evaluation.clone(),
                ..Default::default()
            }
        ),
        unary!(
            "grading",
            "ListEvaluationOverrides",
            Owner,
            true,
            c(),
            list_evaluation_overrides,
            gr::ListEvaluationOverridesRequest {
                parent: w.evaluation.clone(),
                ..Default::default()
            }
        ),
        server_stream!(
            "grading",
            "WatchGradingJob",
            Owner,
            c(),
            watch_grading_job,
            gr::WatchGradingJobRequest {
                name: w.job.clone()
            }
        ),
    ]
}

fn analytics_rows(w: &World) -> Vec<Row> {
    use Who::*;
    let c = || w.analytics();
    vec![
        // A trainee's summary is narrowed to their own numbers.
        unary!(
            "analytics",
            "GetOrganizationSummary",
            Member,
            true,
            c(),
            get_organization_summary,
            an::GetOrganizationSummaryRequest {
                name: ORG.into(),
                ..Default::default()
            }
        ),
        unary!(
            "analytics",
            "GetTraineeSummary",
            Owner,
            true,
            c(),
            get_trainee_summary,
            an::GetTraineeSummaryRequest {
                trainee: member("tom"),
                ..Default::default()
            }
        ),
        // The organization does not show the leaderboard to trainees (the default).
        unary!(
            "analytics",
            "GetLeaderboard",
            Staff,
            true,
            c(),
            get_leaderboard,
            an::GetLeaderboardRequest {
                organization: ORG.into(),
                ..Default::default()
            }
        ),
        // A trainee's drill impact is narrowed to their own drills.
        unary!(
            "analytics",
            "GetDrillImpact",
            Member,
            true,
            c(),
            get_drill_impact,
            an::GetDrillImpactRequest {
                organization: ORG.into(),
                ..Default::default()
            }
        ),
        // A trainee's coaching figures are narrowed to their own sessions.
        unary!(
            "analytics",
            "GetCoachingActivity",
            Member,
            true,
            c(),
            get_coaching_activity,
            an::GetCoachingActivityRequest {
                organization: ORG.into(),
                ..Default::default()
            }
        ),
        unary!(
            "analytics",
            "GetAssignmentProgress",
            Member,
            false,
            c(),
            get_assignment_progress,
            an::GetAssignmentProgressRequest {
                assignment: missing("assignments"),
                ..Default::default()
            }
        ),
        // A trainee gets their own standing only; a missing certification is NOT_FOUND.
        unary!(
            "analytics",
            "GetCertificationProgress",
            Member,
            false,
            c(),
            get_certification_progress,
            an::GetCertificationProgressRequest {
                certification: missing("certifications"),
                ..Default::default()
            }
        ),
        unary!(
            "analytics",
            "ListTraineeCertifications",
            Owner,
            true,
            c(),
            list_trainee_certifications,
            an::ListTraineeCertificationsRequest {
                trainee: member("tom"),
            }
        ),
        unary!(
            "analytics",
            "RevokeCertificationAward",
            Staff,
            false,
            c(),
            revoke_certification_award,
            an::RevokeCertificationAwardRequest {
                certification: missing("certifications"),
                trainee: member("tom"),
                reason: "matrix".into(),
            }
        ),
        unary!(
            "analytics",
            "GetUsage",
            Staff,
            true,
            c(),
            get_usage,
            an::GetUsageRequest {
                organization: ORG.into(),
                ..Default::default()
            }
        ),
        unary!(
            "analytics",
            "IngestEvents",
            Service,
            false,
            c(),
            ingest_events,
            an::IngestEventsRequest {
                events: vec![ev::Event::default()]
            }
        ),
    ]
}

/// `(service short name, RPC)` of every method the contract declares.
fn declared() -> Vec<(String, String)> {
    use prost::Message;
    let fds =
        prost_types::FileDescriptorSet::decode(salestrainer_proto::FILE_DESCRIPTOR_SET).unwrap();
    let mut out: Vec<(String, String)> = fds
        .file
        .iter()
        .flat_map(|f| f.service.iter().map(move |s| (f.package(), s)))
        .filter(|(package, _)| package.starts_with("salestrainer."))
        .flat_map(|(package, s)| {
            let short = package
                .trim_start_matches("salestrainer.")
                .split('.')
                .next()
                .unwrap_or_default()
                .to_owned();
            s.method
                .iter()
                .map(move |m| (short.clone(), m.name().to_owned()))
        })
        .collect();
    out.sort();
    out
}

async fn every_rpc_for_every_caller(backend: Backend) {
    let w = World::start(backend, false, true).await;
    w.demote("dan").await;
    w.remove("rex").await;
    let callers = [
        (Caller::Admin, w.admin.clone()),
        (Caller::Manager, w.manager.clone()),
        (Caller::Trainee, w.trainee.clone()),
        (Caller::OtherAdmin, w.other_admin.clone()),
        (Caller::NonMember, w.stranger.clone()),
        (Caller::Demoted, w.dan.clone()),
        (Caller::Removed, w.rex.clone()),
    ];
    let mut rows = config_rows(&w);
    rows.extend(call_rows(&w));
    rows.extend(grading_rows(&w));
    rows.extend(analytics_rows(&w));

    let mut wrong = Vec::new();
    for row in &rows {
        for (caller, token) in &callers {
            let want = expect(*caller, row);
            let got = tokio::time::timeout(
                std::time::Duration::from_secs(15),
                (row.call)(token.clone()),
            )
            .await
            .unwrap_or(Code::DeadlineExceeded);
            if !meets(want, got, row) {
                wrong.push(format!(
                    "{}.{} as {caller:?}: got {got:?}, expected {want:?}",
                    row.service, row.rpc
                ));
            }
        }
    }
    println!(
        "{backend:?}: {} RPCs × {} callers = {} cells checked",
        rows.len(),
        callers.len(),
        rows.len() * callers.len()
    );

    // Each caller's list of organizations holds their own only.
    for (token, only) in [
        (&w.trainee, "organizations/acme"),
        (&w.dan, "organizations/acme"),
        (&w.other_admin, "organizations/globex"),
    ] {
        let orgs = w
            .config()
            .list_organizations(authed(pb::ListOrganizationsRequest::default(), token))
            .await
            .unwrap()
            .into_inner()
            .organizations;
        let names: Vec<&str> = orgs.iter().map(|o| o.name.as_str()).collect();
        if names != [only] {
            wrong.push(format!("ListOrganizations lists {names:?}, not [{only}]"));
        }
    }

    // Every RPC the contract declares has its row (a new RPC fails here until it gets one).
    let mut covered: Vec<(String, String)> = rows
        .iter()
        .map(|r| (r.service.to_owned(), r.rpc.to_owned()))
        .collect();
    covered.sort();
    w.stop().await;
    assert!(wrong.is_empty(), "policy broken:\n{}", wrong.join("\n"));
    assert_eq!(
        covered,
        declared(),
        "every declared RPC has exactly one row"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_every_rpc_of_every_service_for_every_caller() {
    every_rpc_for_every_caller(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_every_rpc_of_every_service_for_every_caller() {
    every_rpc_for_every_caller(Backend::Postgres).await;
}
