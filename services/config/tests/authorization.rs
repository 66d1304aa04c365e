//! Every RPC of the config service × every kind of caller, over a real connection: who may
//! call what. Requests name resources that do not exist (or lack their body), so an allowed
//! caller gets past authorization (a read answers, a write is NOT_FOUND or INVALID_ARGUMENT
//! and changes nothing); a refused caller gets PERMISSION_DENIED. Another organization's admin gets
//! NOT_FOUND or PERMISSION_DENIED, and a token whose subject is not a member PERMISSION_DENIED.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::future::Future;
use std::pin::Pin;

use common::{App, code, req};
use salestrainer_proto::config::{self as pb, config_service_client::ConfigServiceClient};
use tonic::{Code, transport::Channel};

type Client = ConfigServiceClient<Channel>;
type Call = Box<dyn Fn(Client, String) -> Pin<Box<dyn Future<Output = Code> + Send>>>;

/// Who the policy lets through.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Who {
    /// Admins of the organization.
    Admin,
    /// Admins and managers.
    Staff,
    /// Every member (what a trainee then sees of it may be narrowed per resource).
    Member,
    /// Service identities only: every user token is refused.
    Service,
    /// Every member, about their own organization only (the request names none).
    Own,
}

struct Case {
    rpc: &'static str,
    who: Who,
    call: Call,
}

macro_rules! case {
    ($rpc:literal, $who:expr, $method:ident, $msg:expr) => {
        Case {
            rpc: $rpc,
            who: $who,
            call: Box::new(|mut c: Client, token: String| {
                Box::pin(async move { code(c.$method(req($msg, &token)).await) })
            }),
        }
    };
}

const ORG: &str = "organizations/acme";

fn child(collection: &str) -> String {
    format!("{ORG}/{collection}/matrix-missing")
}

fn cases() -> Vec<Case> {
    use Who::*;
    vec![
        case!(
            "CreateOrganization",
            Service,
            create_organization,
            pb::CreateOrganizationRequest::default()
        ),
        case!(
            "ListOrganizations",
            Own,
            list_organizations,
            pb::ListOrganizationsRequest::default()
        ),
        case!(
            "GetOrganization",
            Member,
            get_organization,
            pb::GetOrganizationRequest { name: ORG.into() }
        ),
        case!(
            "UpdateOrganization",
            Admin,
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
        case!(
            "CreateMember",
            Admin,
            create_member,
            pb::CreateMemberRequest {
                parent: ORG.into(),
                ..Default::default()
            }
        ),
        // Someone else's record: a trainee reads only their own.
        case!(
            "GetMember",
            Staff,
            get_member,
            pb::GetMemberRequest {
                name: child("members")
            }
        ),
        // A trainee's list holds only their own record.
        case!(
            "ListMembers",
            Member,
            list_members,
            pb::ListMembersRequest {
                parent: ORG.into(),
                ..Default::default()
            }
        ),
        case!(
            "UpdateMember",
            Admin,
            update_member,
            pb::UpdateMemberRequest {
                member: Some(pb::Member {
                    name: child("members"),
                    ..Default::default()
                }),
                ..Default::default()
            }
        ),
        case!(
            "DeleteMember",
            Admin,
            delete_member,
            pb::DeleteMemberRequest {
                name: child("members"),
                ..Default::default()
            }
        ),
        case!(
            "CreateProviderCredential",
            Admin,
            create_provider_credential,
            pb::CreateProviderCredentialRequest {
                parent: ORG.into(),
                ..Default::default()
            }
        ),
        case!(
            "GetProviderCredential",
            Admin,
            get_provider_credential,
            pb::GetProviderCredentialRequest {
                name: child("credentials")
            }
        ),
        case!(
            "ListProviderCredentials",
            Admin,
            list_provider_credentials,
            pb::ListProviderCredentialsRequest {
                parent: ORG.into(),
                ..Default::default()
            }
        ),
        case!(
            "UpdateProviderCredential",
            Admin,
            update_provider_credential,
            pb::UpdateProviderCredentialRequest {
                provider_credential: Some(pb::ProviderCredential {
                    name: child("credentials"),
                    ..Default::default()
                }),
                ..Default::default()
            }
        ),
        case!(
            "DeleteProviderCredential",
            Admin,
            delete_provider_credential,
            pb::DeleteProviderCredentialRequest {
                name: child("credentials"),
                ..Default::default()
            }
        ),
        case!(
            "TestProviderCredential",
            Admin,
            test_provider_credential,
            pb::TestProviderCredentialRequest {
                name: child("credentials"),
                ..Default::default()
            }
        ),
        case!(
            "ResolveProviderCredential",
            Service,
            resolve_provider_credential,
            pb::ResolveProviderCredentialRequest::default()
        ),
        case!(
            "CreatePersona",
            Admin,
            create_persona,
            pb::CreatePersonaRequest {
                parent: ORG.into(),
                ..Default::default()
            }
        ),
        case!(
            "GetPersona",
            Member,
            get_persona,
            pb::GetPersonaRequest {
                name: child("personas")
            }
        ),
        case!(
            "ListPersonas",
            Member,
            list_personas,
            pb::ListPersonasRequest {
                parent: ORG.into(),
                ..Default::default()
            }
        ),
        case!(
            "UpdatePersona",
            Admin,
            update_persona,
            pb::UpdatePersonaRequest {
                persona: Some(pb::Persona {
                    name: child("personas"),
                    ..Default::default()
                }),
                ..Default::default()
            }
        ),
        case!(
            "DeletePersona",
            Admin,
            delete_persona,
            pb::DeletePersonaRequest {
                name: child("personas"),
                ..Default::default()
            }
        ),
        case!(
            "CreateScenario",
            Admin,
            create_scenario,
            pb::CreateScenarioRequest {
                parent: ORG.into(),
                ..Default::default()
            }
        ),
        case!(
            "GetScenario",
            Member,
            get_scenario,
            pb::GetScenarioRequest {
                name: child("scenarios")
            }
        ),
        case!(
            "ListScenarios",
            Member,
            list_scenarios,
            pb::ListScenariosRequest {
                parent: ORG.into(),
                ..Default::default()
            }
        ),
        case!(
            "UpdateScenario",
            Admin,
            update_scenario,
            pb::UpdateScenarioRequest {
                scenario: Some(pb::Scenario {
                    name: child("scenarios"),
                    ..Default::default()
                }),
                ..Default::default()
            }
        ),
        case!(
            "DeleteScenario",
            Admin,
            delete_scenario,
            pb::DeleteScenarioRequest {
                name: child("scenarios"),
                ..Default::default()
            }
        ),
        case!(
            "CreateRubric",
            Admin,
            create_rubric,
            pb::CreateRubricRequest {
                parent: ORG.into(),
                ..Default::default()
            }
        ),
        case!(
            "GetRubric",
            Member,
            get_rubric,
            pb::GetRubricRequest {
                name: child("rubrics")
            }
        ),
        case!(
            "ListRubrics",
            Member,
            list_rubrics,
            pb::ListRubricsRequest {
                parent: ORG.into(),
                ..Default::default()
            }
        ),
        case!(
            "UpdateRubric",
            Admin,
            update_rubric,
            pb::UpdateRubricRequest {
                rubric: Some(pb::Rubric {
                    name: child("rubrics"),
                    ..Default::default()
                }),
                ..Default::default()
            }
        ),
        case!(
            "DeleteRubric",
            Admin,
            delete_rubric,
            pb::DeleteRubricRequest {
                name: child("rubrics"),
                ..Default::default()
            }
        ),
        case!(
            "CreatePromptTemplate",
            Admin,
            create_prompt_template,
            pb::CreatePromptTemplateRequest {
                parent: ORG.into(),
                ..Default::default()
            }
        ),
        case!(
            "GetPromptTemplate",
            Member,
            get_prompt_template,
            pb::GetPromptTemplateRequest {
                name: child("promptTemplates"),
                ..Default::default()
            }
        ),
        case!(
            "ListPromptTemplates",
            Member,
            list_prompt_templates,
            pb::ListPromptTemplatesRequest {
                parent: ORG.into(),
                ..Default::default()
            }
        ),
        case!(
            "ListPromptTemplateRevisions",
            Member,
            list_prompt_template_revisions,
            pb::ListPromptTemplateRevisionsRequest {
                name: child("promptTemplates"),
                ..Default::default()
            }
        ),
        case!(
            "UpdatePromptTemplate",
            Admin,
            update_prompt_template,
            pb::UpdatePromptTemplateRequest {
                prompt_template: Some(pb::PromptTemplate {
                    name: child("promptTemplates"),
                    ..Default::default()
                }),
                ..Default::default()
            }
        ),
        case!(
            "DeletePromptTemplate",
            Admin,
            delete_prompt_template,
            pb::DeletePromptTemplateRequest {
                name: child("promptTemplates"),
                ..Default::default()
            }
        ),
        case!(
            "CreateAssignment",
            Staff,
            create_assignment,
            pb::CreateAssignmentRequest {
                parent: ORG.into(),
                ..Default::default()
            }
        ),
        case!(
            "GetAssignment",
            Member,
            get_assignment,
            pb::GetAssignmentRequest {
                name: child("assignments")
            }
        ),
        case!(
            "ListAssignments",
            Member,
            list_assignments,
            pb::ListAssignmentsRequest {
                parent: ORG.into(),
                ..Default::default()
            }
        ),
        case!(
            "UpdateAssignment",
            Staff,
            update_assignment,
            pb::UpdateAssignmentRequest {
                assignment: Some(pb::Assignment {
                    name: child("assignments"),
                    ..Default::default()
                }),
                ..Default::default()
            }
        ),
        case!(
            "DeleteAssignment",
            Staff,
            delete_assignment,
            pb::DeleteAssignmentRequest {
                name: child("assignments"),
                ..Default::default()
            }
        ),
    ]
}

async fn every_rpc_for_every_caller(app: App) {
    let callers = [
        ("admin", app.admin.clone()),
        ("manager", app.manager.clone()),
        ("trainee", app.trainee.clone()),
        ("other organization's admin", app.other_admin.clone()),
        ("non-member", app.stranger.clone()),
    ];
    let mut wrong = Vec::new();
    let all = cases();
    for case in &all {
        for (caller, token) in &callers {
            let got = (case.call)(app.client.clone(), token.clone()).await;
            let allowed = match (*caller, case.who) {
                (_, Who::Service) | ("non-member", _) => false,
                (_, Who::Own) | ("admin", _) => true,
                ("manager", w) => w != Who::Admin,
                ("trainee", w) => w == Who::Member,
                _ => false,
            };
            let ok = match *caller {
                "other organization's admin" if case.who == Who::Own => got == Code::Ok,
                // Never told apart from a missing resource, never let through.
                "other organization's admin" => {
                    matches!(got, Code::NotFound | Code::PermissionDenied)
                }
                _ if allowed => !matches!(got, Code::PermissionDenied | Code::Unauthenticated),
                _ => got == Code::PermissionDenied,
            };
            if !ok {
                wrong.push(format!(
                    "{} as {caller}: {got:?} ({})",
                    case.rpc,
                    if allowed { "allowed" } else { "refused" }
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "policy broken:\n{}", wrong.join("\n"));
    // Each caller's list of organizations holds their own only.
    for (token, only) in [
        (&app.trainee, "organizations/acme"),
        (&app.other_admin, "organizations/globex"),
    ] {
        let orgs = app
            .client
            .clone()
            .list_organizations(req(pb::ListOrganizationsRequest::default(), token))
            .await
            .unwrap()
            .into_inner()
            .organizations;
        let names: Vec<&str> = orgs.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, [only]);
    }
    // Every RPC the contract declares has its row (a new RPC fails here until it gets one).
    use prost::Message;
    let fds =
        prost_types::FileDescriptorSet::decode(salestrainer_proto::FILE_DESCRIPTOR_SET).unwrap();
    let mut declared: Vec<String> = fds
        .file
        .iter()
        .filter(|f| f.package() == "salestrainer.config.v1")
        .flat_map(|f| f.service.iter())
        .filter(|s| s.name() == "ConfigService")
        .flat_map(|s| s.method.iter().map(|m| m.name().to_owned()))
        .collect();
    declared.sort();
    let mut covered: Vec<String> = all.iter().map(|c| c.rpc.to_owned()).collect();
    covered.sort();
    assert_eq!(covered, declared);
}

both_backends!(every_rpc_for_every_caller);
