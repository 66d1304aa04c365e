//! The config service end to end, on SQLite and on PostgreSQL.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use common::{App, code, req, violations};
use salestrainer_proto::config as pb;
use tonic::Code;

both_backends!(
    organizations_and_members,
    persona_crud_validation_and_etags,
    pagination_is_stable_while_inserting,
    delete_protection,
    trainee_manager_and_cross_org_access,
    prompt_template_revisions,
    every_mutation_writes_an_event,
);

async fn organizations_and_members(mut app: App) {
    let c = &mut app.client;
    let org = c
        .get_organization(req(
            pb::GetOrganizationRequest {
                name: "organizations/acme".into(),
            },
            &app.trainee,
        ))
        .await
        .unwrap()
        .into_inner()
        .organization
        .unwrap();
    assert_eq!(org.display_name, "Acme");
    let listed = c
        .list_organizations(req(pb::ListOrganizationsRequest::default(), &app.admin))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        listed.organizations.len(),
        1,
        "a user sees only their own organization"
    );
    // Another organization does not exist for this caller; a non-member is refused.
    let r = c
        .get_organization(req(
            pb::GetOrganizationRequest {
                name: "organizations/globex".into(),
            },
            &app.admin,
        ))
        .await;
    assert_eq!(code(r), Code::NotFound);
    let r = c
        .get_organization(req(
            pb::GetOrganizationRequest {
                name: "organizations/acme".into(),
            },
            &app.stranger,
        ))
        .await;
    assert_eq!(code(r), Code::PermissionDenied);
    // Tenants are created by the platform only.
    let r = c
        .create_organization(req(
            pb::CreateOrganizationRequest {
                organization: Some(pb::Organization {
                    display_name: "X".into(),
                    ..Default::default()
                }),
                organization_id: "x".into(),
            },
            &app.admin,
        ))
        .await;
    assert_eq!(code(r), Code::PermissionDenied);

    let new_member = || pb::CreateMemberRequest {
        parent: "organizations/acme".into(),
        member: Some(pb::Member {
            subject: "sam".into(),
            role: pb::Role::Trainee as i32,
            email: "sam@acme.test".into(),
            ..Default::default()
        }),
        member_id: "sam".into(),
    };
    assert_eq!(
        code(c.create_member(req(new_member(), &app.manager)).await),
        Code::PermissionDenied
    );
    let sam = c
        .create_member(req(new_member(), &app.admin))
        .await
        .unwrap()
        .into_inner()
        .member
        .unwrap();
    assert_eq!(sam.name, "organizations/acme/members/sam");
    assert_eq!(
        code(c.create_member(req(new_member(), &app.admin)).await),
        Code::AlreadyExists
    );

    // Only admins change roles; a role change applies to the next request at once.
    let promote = |etag: &str| pb::UpdateMemberRequest {
        member: Some(pb::Member {
            name: sam.name.clone(),
            role: pb::Role::Manager as i32,
            etag: etag.into(),
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["role".into()],
        }),
    };
    assert_eq!(
        code(c.update_member(req(promote(""), &app.manager)).await),
        Code::PermissionDenied
    );
    assert_eq!(
        code(c.update_member(req(promote("stale"), &app.admin)).await),
        Code::Aborted
    );
    let sam2 = c
        .update_member(req(promote(&sam.etag), &app.admin))
        .await
        .unwrap()
        .into_inner()
        .member
        .unwrap();
    assert_eq!(sam2.role, pb::Role::Manager as i32);
    assert_ne!(sam2.etag, sam.etag);

    // Bad fields are all reported.
    let err = c
        .create_member(req(
            pb::CreateMemberRequest {
                parent: "organizations/acme".into(),
                member: Some(pb::Member {
                    email: "not-an-email".into(),
                    ..Default::default()
                }),
                member_id: "Bad_Id".into(),
            },
            &app.admin,
        ))
        .await
        .unwrap_err();
    let v = violations(&err);
    for f in ["member_id", "member.subject", "member.email", "member.role"] {
        assert!(v.contains(&f.to_string()), "{f} in {v:?}");
    }

    // The last admin cannot be removed; a removed member's token stops working.
    let r = c
        .delete_member(req(
            pb::DeleteMemberRequest {
                name: "organizations/acme/members/alice".into(),
                etag: String::new(),
            },
            &app.admin,
        ))
        .await;
    assert_eq!(code(r), Code::FailedPrecondition);
    c.delete_member(req(
        pb::DeleteMemberRequest {
            name: sam.name.clone(),
            etag: String::new(),
        },
        &app.admin,
    ))
    .await
    .unwrap();
    let sam_token = app
        .minter
        .mint("sam", "acme", salestrainer_runtime::Role::Manager, 60)
        .unwrap();
    let r = c
        .list_members(req(
            pb::ListMembersRequest {
                parent: "organizations/acme".into(),
                ..Default::default()
            },
            &sam_token,
        ))
        .await;
    assert_eq!(code(r), Code::PermissionDenied);

    // Trainees see only themselves.
    let mine = c
        .list_members(req(
            pb::ListMembersRequest {
                parent: "organizations/acme".into(),
                ..Default::default()
            },
            &app.trainee,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(mine.members.len(), 1);
    let all = c
        .list_members(req(
            pb::ListMembersRequest {
                parent: "organizations/acme".into(),
                ..Default::default()
            },
            &app.manager,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.members.len(), 3);
}

async fn persona_crud_validation_and_etags(mut app: App) {
    let bad = pb::Persona {
        display_name: String::new(),
        role: "x".repeat(500),
        objections: vec![String::new(); 21],
        difficulty: 99,
        ..Default::default()
    };
    let err = app
        .client
        .create_persona(req(
            pb::CreatePersonaRequest {
                parent: "organizations/acme".into(),
                persona: Some(bad),
                persona_id: "9bad".into(),
            },
            &app.admin,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let v = violations(&err);
    for f in [
        "persona_id",
        "persona.display_name",
        "persona.role",
        "persona.objections",
        "persona.difficulty",
    ] {
        assert!(v.contains(&f.to_string()), "{f} in {v:?}");
    }
    let listed = app
        .client
        .list_personas(req(
            pb::ListPersonasRequest {
                parent: "organizations/acme".into(),
                ..Default::default()
            },
            &app.admin,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.personas.is_empty(), "nothing is written on error");

    let p = app.create_persona("bob").await;
    assert_eq!(p.name, "organizations/acme/personas/bob");
    // A server-assigned id when none is given.
    let auto = app
        .client
        .create_persona(req(
            pb::CreatePersonaRequest {
                parent: "organizations/acme".into(),
                persona: Some(common::persona("Auto")),
                persona_id: String::new(),
            },
            &app.admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .persona
        .unwrap();
    assert!(
        auto.name
            .starts_with("organizations/acme/personas/persona-")
    );
    let dup = app
        .client
        .create_persona(req(
            pb::CreatePersonaRequest {
                parent: "organizations/acme".into(),
                persona: Some(common::persona("bob")),
                persona_id: "bob".into(),
            },
            &app.admin,
        ))
        .await;
    assert_eq!(code(dup), Code::AlreadyExists);

    // Update with a mask changes only the named field.
    let patch = pb::Persona {
        name: p.name.clone(),
        company: "Globex".into(),
        display_name: "ignored".into(),
        etag: p.etag.clone(),
        ..Default::default()
    };
    let up = app
        .client
        .update_persona(req(
            pb::UpdatePersonaRequest {
                persona: Some(patch.clone()),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["company".into()],
                }),
            },
            &app.admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .persona
        .unwrap();
    assert_eq!(up.company, "Globex");
    assert_eq!(up.display_name, "bob");
    assert_eq!(up.objections, vec!["too expensive".to_string()]);
    // The old etag is stale now.
    let stale = app
        .client
        .update_persona(req(
            pb::UpdatePersonaRequest {
                persona: Some(patch),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["company".into()],
                }),
            },
            &app.admin,
        ))
        .await;
    assert_eq!(code(stale), Code::Aborted);
    let bad_mask = app
        .client
        .update_persona(req(
            pb::UpdatePersonaRequest {
                persona: Some(pb::Persona {
                    name: p.name.clone(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["name".into()],
                }),
            },
            &app.admin,
        ))
        .await;
    assert_eq!(code(bad_mask), Code::InvalidArgument);
    // An update that would make it invalid changes nothing.
    let r = app
        .client
        .update_persona(req(
            pb::UpdatePersonaRequest {
                persona: Some(pb::Persona {
                    name: p.name.clone(),
                    ..Default::default()
                }),
                update_mask: None,
            },
            &app.admin,
        ))
        .await;
    assert_eq!(code(r), Code::InvalidArgument);
    let got = app
        .client
        .get_persona(req(
            pb::GetPersonaRequest {
                name: p.name.clone(),
            },
            &app.manager,
        ))
        .await
        .unwrap()
        .into_inner()
        .persona
        .unwrap();
    assert_eq!(got, up);

    let del = app
        .client
        .delete_persona(req(
            pb::DeletePersonaRequest {
                name: p.name.clone(),
                etag: "stale".into(),
            },
            &app.admin,
        ))
        .await;
    assert_eq!(code(del), Code::Aborted);
    app.client
        .delete_persona(req(
            pb::DeletePersonaRequest {
                name: p.name.clone(),
                etag: up.etag.clone(),
            },
            &app.admin,
        ))
        .await
        .unwrap();
    let r = app
        .client
        .get_persona(req(
            pb::GetPersonaRequest {
                name: p.name.clone(),
            },
            &app.admin,
        ))
        .await;
    assert_eq!(code(r), Code::NotFound);

    // Rubric weights are normalised.
    let r = app.create_rubric("std").await;
    assert_eq!(r.criteria[0].weight, 0.25);
    assert_eq!(r.criteria[1].weight, 0.75);
    let bad = pb::Rubric {
        criteria: vec![pb::Criterion {
            id: "a".into(),
            skill: "x".into(),
            weight: 0.0,
            ..Default::default()
        }],
        ..common::rubric("bad")
    };
    let err = app
        .client
        .create_rubric(req(
            pb::CreateRubricRequest {
                parent: "organizations/acme".into(),
                rubric: Some(bad),
                rubric_id: String::new(),
            },
            &app.admin,
        ))
        .await
        .unwrap_err();
    assert!(violations(&err).contains(&"rubric.criteria[0].weight".to_string()));
}

async fn pagination_is_stable_while_inserting(mut app: App) {
    for i in 0..5 {
        app.create_persona(&format!("p{i}")).await;
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut inserted = 0;
    loop {
        let page = app
            .client
            .list_personas(req(
                pb::ListPersonasRequest {
                    parent: "organizations/acme".into(),
                    page_size: 2,
                    page_token: token.clone(),
                    ..Default::default()
                },
                &app.admin,
            ))
            .await
            .unwrap()
            .into_inner();
        seen.extend(page.personas.into_iter().map(|p| p.name));
        // Rows inserted between pages, before and after the cursor.
        if inserted < 2 {
            app.create_persona(&format!("a{inserted}")).await;
            app.create_persona(&format!("z{inserted}")).await;
            inserted += 1;
        }
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let mut dedup = seen.clone();
    dedup.dedup();
    assert_eq!(dedup.len(), seen.len(), "no row twice: {seen:?}");
    for i in 0..5 {
        assert!(
            seen.contains(&format!("organizations/acme/personas/p{i}")),
            "p{i} missing from {seen:?}"
        );
    }
    // A token replayed with other filters is refused, so is garbage.
    let page = app
        .client
        .list_personas(req(
            pb::ListPersonasRequest {
                parent: "organizations/acme".into(),
                page_size: 1,
                ..Default::default()
            },
            &app.admin,
        ))
        .await
        .unwrap()
        .into_inner();
    let r = app
        .client
        .list_personas(req(
            pb::ListPersonasRequest {
                parent: "organizations/acme".into(),
                page_size: 1,
                page_token: page.next_page_token,
                difficulty: pb::Difficulty::Easy as i32,
                ..Default::default()
            },
            &app.admin,
        ))
        .await;
    assert_eq!(code(r), Code::InvalidArgument);
    let r = app
        .client
        .list_personas(req(
            pb::ListPersonasRequest {
                parent: "organizations/acme".into(),
                page_token: "garbage".into(),
                ..Default::default()
            },
            &app.admin,
        ))
        .await;
    assert_eq!(code(r), Code::InvalidArgument);
    // Typed filter.
    let hard = app
        .client
        .list_personas(req(
            pb::ListPersonasRequest {
                parent: "organizations/acme".into(),
                difficulty: pb::Difficulty::Hard as i32,
                ..Default::default()
            },
            &app.admin,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(hard.personas.len(), 9, "5 + 4 inserted");
    let easy = app
        .client
        .list_personas(req(
            pb::ListPersonasRequest {
                parent: "organizations/acme".into(),
                difficulty: pb::Difficulty::Easy as i32,
                ..Default::default()
            },
            &app.admin,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(easy.personas.is_empty());
}

async fn delete_protection(mut app: App) {
    let p = app.create_persona("bob").await;
    let r = app.create_rubric("std").await;
    let s = app
        .create_scenario("cold-call", &p.name, &r.name, false)
        .await;
    let err = app
        .client
        .delete_rubric(req(
            pb::DeleteRubricRequest {
                name: r.name.clone(),
                etag: String::new(),
            },
            &app.admin,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains(&s.name), "{}", err.message());
    let err = app
        .client
        .delete_persona(req(
            pb::DeletePersonaRequest {
                name: p.name.clone(),
                etag: String::new(),
            },
            &app.admin,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);

    let a = app
        .create_assignment("q1", &s.name, &app.manager.clone())
        .await
        .unwrap();
    assert_eq!(a.state, pb::AssignmentState::Open as i32);
    assert_eq!(a.required_attempts, 2);
    let err = app
        .client
        .delete_scenario(req(
            pb::DeleteScenarioRequest {
                name: s.name.clone(),
                etag: String::new(),
            },
            &app.admin,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains(&a.name), "{}", err.message());
    // The trainee is an assignee of an open assignment: cannot be removed either.
    let err = app
        .client
        .delete_member(req(
            pb::DeleteMemberRequest {
                name: app.trainee_member.clone(),
                etag: String::new(),
            },
            &app.admin,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);

    // Closing the assignment releases the scenario.
    app.client
        .update_assignment(req(
            pb::UpdateAssignmentRequest {
                assignment: Some(pb::Assignment {
                    name: a.name.clone(),
                    state: pb::AssignmentState::Closed as i32,
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["state".into()],
                }),
            },
            &app.manager,
        ))
        .await
        .unwrap();
    app.client
        .delete_scenario(req(
            pb::DeleteScenarioRequest {
                name: s.name.clone(),
                etag: String::new(),
            },
            &app.admin,
        ))
        .await
        .unwrap();
    app.client
        .delete_rubric(req(
            pb::DeleteRubricRequest {
                name: r.name.clone(),
                etag: String::new(),
            },
            &app.admin,
        ))
        .await
        .unwrap();

    // References must exist, in the same organization.
    let err = app
        .client
        .create_scenario(req(
            pb::CreateScenarioRequest {
                parent: "organizations/acme".into(),
                scenario: Some(pb::Scenario {
                    display_name: "x".into(),
                    persona: "organizations/globex/personas/bob".into(),
                    rubric: r.name.clone(),
                    ..Default::default()
                }),
                scenario_id: String::new(),
            },
            &app.admin,
        ))
        .await
        .unwrap_err();
    let v = violations(&err);
    assert!(
        v.contains(&"scenario.persona".to_string()) && v.contains(&"scenario.rubric".to_string()),
        "{v:?}"
    );
    let err = app
        .client
        .create_assignment(req(
            pb::CreateAssignmentRequest {
                parent: "organizations/acme".into(),
                assignment: Some(pb::Assignment {
                    scenario: "organizations/acme/scenarios/none".into(),
                    assignees: vec!["organizations/acme/members/ghost".into()],
                    due_time: Some(prost_types::Timestamp {
                        seconds: 1,
                        nanos: 0,
                    }),
                    passing_score: 150.0,
                    ..Default::default()
                }),
                assignment_id: String::new(),
            },
            &app.manager,
        ))
        .await
        .unwrap_err();
    let v = violations(&err);
    for f in [
        "assignment.scenario",
        "assignment.assignees[0]",
        "assignment.due_time",
        "assignment.passing_score",
    ] {
        assert!(v.contains(&f.to_string()), "{f} in {v:?}");
    }
}

async fn trainee_manager_and_cross_org_access(mut app: App) {
    let p1 = app.create_persona("assigned-persona").await;
    let p2 = app.create_persona("open-persona").await;
    let p3 = app.create_persona("hidden-persona").await;
    let r = app.create_rubric("std").await;
    let assigned = app
        .create_scenario("assigned", &p1.name, &r.name, false)
        .await;
    let open = app.create_scenario("open", &p2.name, &r.name, true).await;
    let hidden = app
        .create_scenario("hidden", &p3.name, &r.name, false)
        .await;
    // Managers create assignments but not content; trainees neither.
    assert_eq!(
        app.create_assignment("t", &assigned.name, &app.trainee.clone())
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    let a = app
        .create_assignment("a1", &assigned.name, &app.manager.clone())
        .await
        .unwrap();
    let r2 = app
        .client
        .create_persona(req(
            pb::CreatePersonaRequest {
                parent: "organizations/acme".into(),
                persona: Some(common::persona("m")),
                persona_id: String::new(),
            },
            &app.manager,
        ))
        .await;
    assert_eq!(code(r2), Code::PermissionDenied);
    let r2 = app
        .client
        .create_persona(req(
            pb::CreatePersonaRequest {
                parent: "organizations/acme".into(),
                persona: Some(common::persona("t")),
                persona_id: String::new(),
            },
            &app.trainee,
        ))
        .await;
    assert_eq!(code(r2), Code::PermissionDenied);

    // The trainee reads the scenarios of their assignments and the open ones, with their
    // personas and rubric, and nothing else.
    let t = app.trainee.clone();
    for s in [&assigned.name, &open.name] {
        assert_eq!(
            code(
                app.client
                    .get_scenario(req(pb::GetScenarioRequest { name: s.clone() }, &t))
                    .await
            ),
            Code::Ok,
            "{s}"
        );
    }
    assert_eq!(
        code(
            app.client
                .get_scenario(req(
                    pb::GetScenarioRequest {
                        name: hidden.name.clone()
                    },
                    &t
                ))
                .await
        ),
        Code::PermissionDenied
    );
    assert_eq!(
        code(
            app.client
                .get_persona(req(
                    pb::GetPersonaRequest {
                        name: p1.name.clone()
                    },
                    &t
                ))
                .await
        ),
        Code::Ok
    );
    assert_eq!(
        code(
            app.client
                .get_persona(req(
                    pb::GetPersonaRequest {
                        name: p3.name.clone()
                    },
                    &t
                ))
                .await
        ),
        Code::PermissionDenied
    );
    assert_eq!(
        code(
            app.client
                .get_rubric(req(
                    pb::GetRubricRequest {
                        name: r.name.clone()
                    },
                    &t
                ))
                .await
        ),
        Code::Ok
    );
    assert_eq!(
        code(
            app.client
                .get_assignment(req(
                    pb::GetAssignmentRequest {
                        name: a.name.clone()
                    },
                    &t
                ))
                .await
        ),
        Code::Ok
    );
    let scenarios = app
        .client
        .list_scenarios(req(
            pb::ListScenariosRequest {
                parent: "organizations/acme".into(),
                ..Default::default()
            },
            &t,
        ))
        .await
        .unwrap()
        .into_inner()
        .scenarios;
    let names: Vec<_> = scenarios.iter().map(|s| s.name.clone()).collect();
    assert_eq!(names, vec![assigned.name.clone(), open.name.clone()]);
    let personas = app
        .client
        .list_personas(req(
            pb::ListPersonasRequest {
                parent: "organizations/acme".into(),
                ..Default::default()
            },
            &t,
        ))
        .await
        .unwrap()
        .into_inner()
        .personas;
    assert_eq!(personas.len(), 2);
    let all = app
        .client
        .list_scenarios(req(
            pb::ListScenariosRequest {
                parent: "organizations/acme".into(),
                ..Default::default()
            },
            &app.manager,
        ))
        .await
        .unwrap()
        .into_inner()
        .scenarios;
    assert_eq!(all.len(), 3);
    let by_persona = app
        .client
        .list_scenarios(req(
            pb::ListScenariosRequest {
                parent: "organizations/acme".into(),
                persona: p2.name.clone(),
                ..Default::default()
            },
            &app.manager,
        ))
        .await
        .unwrap()
        .into_inner()
        .scenarios;
    assert_eq!(by_persona.len(), 1);

    // Another organization's resources do not exist; a non-member is refused.
    let o = app.other_admin.clone();
    assert_eq!(
        code(
            app.client
                .get_persona(req(
                    pb::GetPersonaRequest {
                        name: p1.name.clone()
                    },
                    &o
                ))
                .await
        ),
        Code::NotFound
    );
    assert_eq!(
        code(
            app.client
                .list_personas(req(
                    pb::ListPersonasRequest {
                        parent: "organizations/acme".into(),
                        ..Default::default()
                    },
                    &o
                ))
                .await
        ),
        Code::NotFound
    );
    assert_eq!(
        code(
            app.client
                .delete_persona(req(
                    pb::DeletePersonaRequest {
                        name: p3.name.clone(),
                        etag: String::new()
                    },
                    &o
                ))
                .await
        ),
        Code::NotFound
    );
    assert_eq!(
        code(
            app.client
                .get_assignment(req(
                    pb::GetAssignmentRequest {
                        name: a.name.clone()
                    },
                    &o
                ))
                .await
        ),
        Code::NotFound
    );
    let s = app.stranger.clone();
    assert_eq!(
        code(
            app.client
                .get_persona(req(
                    pb::GetPersonaRequest {
                        name: p1.name.clone()
                    },
                    &s
                ))
                .await
        ),
        Code::PermissionDenied
    );

    // Credentials are admin-only; Resolve is for services only.
    let m = app.manager.clone();
    assert_eq!(
        code(
            app.client
                .list_provider_credentials(req(
                    pb::ListProviderCredentialsRequest {
                        parent: "organizations/acme".into(),
                        ..Default::default()
                    },
                    &m
                ))
                .await
        ),
        Code::PermissionDenied
    );
    let admin = app.admin.clone();
    let r = app
        .client
        .resolve_provider_credential(req(
            pb::ResolveProviderCredentialRequest {
                parent: "organizations/acme".into(),
                kind: pb::ProviderKind::OpenaiCompatible as i32,
                ..Default::default()
            },
            &admin,
        ))
        .await;
    assert_eq!(code(r), Code::PermissionDenied);
    let svc = app.service.clone();
    let r = app
        .client
        .resolve_provider_credential(req(
            pb::ResolveProviderCredentialRequest {
                parent: "organizations/acme".into(),
                kind: pb::ProviderKind::OpenaiCompatible as i32,
                ..Default::default()
            },
            &svc,
        ))
        .await;
    assert_eq!(code(r), Code::NotFound, "no credential of the kind yet");
}

async fn prompt_template_revisions(mut app: App) {
    let builtin = "organizations/acme/promptTemplates/builtin-grading".to_string();
    let t = app
        .client
        .get_prompt_template(req(
            pb::GetPromptTemplateRequest {
                name: builtin.clone(),
                revision: 0,
            },
            &app.trainee,
        ))
        .await
        .unwrap()
        .into_inner()
        .prompt_template
        .unwrap();
    assert!(t.builtin && t.revision == 1 && t.variables.contains(&"transcript".to_string()));
    let listed = app
        .client
        .list_prompt_templates(req(
            pb::ListPromptTemplatesRequest {
                parent: "organizations/acme".into(),
                ..Default::default()
            },
            &app.trainee,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.prompt_templates.len(), 4);

    let unknown = app
        .client
        .update_prompt_template(req(
            pb::UpdatePromptTemplateRequest {
                prompt_template: Some(pb::PromptTemplate {
                    name: builtin.clone(),
                    body: "Grade {{transcript}} by {{favourite_colour}}".into(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["body".into()],
                }),
            },
            &app.admin,
        ))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::InvalidArgument);
    assert!(violations(&unknown).contains(&"prompt_template.body".to_string()));

    let v2 = app
        .client
        .update_prompt_template(req(
            pb::UpdatePromptTemplateRequest {
                prompt_template: Some(pb::PromptTemplate {
                    name: builtin.clone(),
                    body: "Grade {{ transcript }} against {{criteria}}".into(),
                    etag: t.etag.clone(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["body".into()],
                }),
            },
            &app.admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .prompt_template
        .unwrap();
    assert_eq!(v2.revision, 2);
    assert_eq!(
        v2.variables,
        vec!["transcript".to_string(), "criteria".to_string()]
    );
    let stale = app
        .client
        .update_prompt_template(req(
            pb::UpdatePromptTemplateRequest {
                prompt_template: Some(pb::PromptTemplate {
                    name: builtin.clone(),
                    body: "{{transcript}}".into(),
                    etag: t.etag.clone(),
                    ..Default::default()
                }),
                update_mask: None,
            },
            &app.admin,
        ))
        .await;
    assert_eq!(code(stale), Code::Aborted);
    let old = app
        .client
        .get_prompt_template(req(
            pb::GetPromptTemplateRequest {
                name: builtin.clone(),
                revision: 1,
            },
            &app.manager,
        ))
        .await
        .unwrap()
        .into_inner()
        .prompt_template
        .unwrap();
    assert_eq!(old.body, t.body);
    let revs = app
        .client
        .list_prompt_template_revisions(req(
            pb::ListPromptTemplateRevisionsRequest {
                name: builtin.clone(),
                page_size: 1,
                page_token: String::new(),
            },
            &app.manager,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(revs.prompt_templates[0].revision, 2);
    let revs2 = app
        .client
        .list_prompt_template_revisions(req(
            pb::ListPromptTemplateRevisionsRequest {
                name: builtin.clone(),
                page_size: 1,
                page_token: revs.next_page_token,
            },
            &app.manager,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(revs2.prompt_templates[0].revision, 1);
    assert!(revs2.next_page_token.is_empty());

    let del = app
        .client
        .delete_prompt_template(req(
            pb::DeletePromptTemplateRequest {
                name: builtin.clone(),
                etag: String::new(),
            },
            &app.admin,
        ))
        .await;
    assert_eq!(code(del), Code::FailedPrecondition);
    let custom = app
        .client
        .create_prompt_template(req(
            pb::CreatePromptTemplateRequest {
                parent: "organizations/acme".into(),
                prompt_template: Some(pb::PromptTemplate {
                    purpose: pb::PromptPurpose::Summary as i32,
                    body: "Summarise {{transcript}}".into(),
                    ..Default::default()
                }),
                prompt_template_id: "short-summary".into(),
            },
            &app.admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .prompt_template
        .unwrap();
    // Custom templates are staff material.
    assert_eq!(
        code(
            app.client
                .get_prompt_template(req(
                    pb::GetPromptTemplateRequest {
                        name: custom.name.clone(),
                        revision: 0
                    },
                    &app.trainee
                ))
                .await
        ),
        Code::PermissionDenied
    );
    app.client
        .delete_prompt_template(req(
            pb::DeletePromptTemplateRequest {
                name: custom.name,
                etag: String::new(),
            },
            &app.admin,
        ))
        .await
        .unwrap();
}

async fn every_mutation_writes_an_event(mut app: App) {
    use prost::Message;
    use sea_orm::EntityTrait;
    let db = app.raw_db().await;
    let before = salestrainer_bus::outbox::entity::Entity::find()
        .all(&db)
        .await
        .unwrap()
        .len();
    let p = app.create_persona("bob").await;
    let _ = app
        .client
        .delete_persona(req(
            pb::DeletePersonaRequest {
                name: p.name.clone(),
                etag: String::new(),
            },
            &app.admin,
        ))
        .await
        .unwrap();
    // A failed write writes no event.
    let _ = app
        .client
        .create_persona(req(
            pb::CreatePersonaRequest {
                parent: "organizations/acme".into(),
                persona: Some(pb::Persona::default()),
                persona_id: String::new(),
            },
            &app.admin,
        ))
        .await
        .unwrap_err();
    let rows = salestrainer_bus::outbox::entity::Entity::find()
        .all(&db)
        .await
        .unwrap();
    assert_eq!(rows.len(), before + 2);
    let last = rows.iter().max_by_key(|r| r.id).unwrap();
    assert_eq!(last.topic, salestrainer_runtime::events::TOPIC_CONFIG);
    let ev = salestrainer_proto::events::Event::decode(last.payload.as_slice()).unwrap();
    let Some(salestrainer_proto::events::event::Payload::ConfigChanged(cc)) = ev.payload else {
        panic!("not ConfigChanged")
    };
    assert_eq!(cc.resource, p.name);
    assert_eq!(
        cc.change_kind,
        salestrainer_proto::events::ChangeKind::Deleted as i32
    );
    assert_eq!(ev.organization, "organizations/acme");
}
