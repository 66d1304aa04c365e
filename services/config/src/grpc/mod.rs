//! gRPC layer of the config service: protobuf in and out, errors to statuses. Each RPC's
//! handler lives in the module named after its resource (`organizations`, `credentials`,
//! `templates`; personas, scenarios, rubrics and assignments share `content`).

mod access;
mod content;
mod convert;
mod credentials;
mod organizations;
mod templates;

use std::sync::Arc;

use salestrainer_bus::RelayNotifier;
use salestrainer_proto::config as pb;
use salestrainer_runtime::{ApiResult, Principal, Ready};
use sea_orm::DatabaseConnection;
use tonic::{Request, Response, Status};

use crate::{cache::ReadCache, domain::crypto::Kek, store::content::Filter};
use access::Caller;

pub use credentials::TEST_TIMEOUT;

pub struct ConfigServiceApi {
    db: Ready<DatabaseConnection>,
    /// `None` when no key-encryption key could be loaded: credential RPCs then answer
    /// UNAVAILABLE, everything else works.
    kek: Option<Arc<Kek>>,
    http: Option<reqwest::Client>,
    /// Wakes the outbox relay after a write, so ConfigChanged reaches caches at once.
    notifier: RelayNotifier,
    /// Memberships and content rows read per request; every write path invalidates it.
    cache: Arc<ReadCache>,
}

impl ConfigServiceApi {
    pub fn new(
        db: Ready<DatabaseConnection>,
        kek: Option<Kek>,
        notifier: RelayNotifier,
        cache: Arc<ReadCache>,
    ) -> Self {
        salestrainer_runtime::install_crypto_provider();
        let http = reqwest::Client::builder()
            // A probe must not follow the provider elsewhere with the key.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(TEST_TIMEOUT)
            .build()
            .map_err(|e| tracing::error!(error = %e, "cannot build the HTTP client; provider tests will fail"))
            .ok();
        Self {
            db,
            kek: kek.map(Arc::new),
            http,
            notifier,
            cache,
        }
    }

    /// Passes a write's reply through, waking the relay (a failed write wakes it for nothing,
    /// which costs one empty outbox read).
    fn committed<T>(&self, reply: T) -> T {
        self.notifier.notify();
        reply
    }

    /// The database, the checked caller and the request message.
    async fn context<T>(&self, req: Request<T>) -> ApiResult<(&DatabaseConnection, Caller, T)> {
        let db = self.db.get()?;
        let principal = Principal::of(&req)?.clone();
        let caller = Caller::resolve(db, &self.cache, &principal).await?;
        Ok((db, caller, req.into_inner()))
    }
}

fn reply<T>(r: ApiResult<T>) -> Result<Response<T>, Status> {
    r.map(Response::new).map_err(Status::from)
}

#[tonic::async_trait]
impl pb::config_service_server::ConfigService for ConfigServiceApi {
    async fn create_organization(
        &self,
        request: Request<pb::CreateOrganizationRequest>,
    ) -> Result<Response<pb::CreateOrganizationResponse>, Status> {
        self.committed(reply(
            organizations::create_organization(self, request).await,
        ))
    }

    async fn get_organization(
        &self,
        request: Request<pb::GetOrganizationRequest>,
    ) -> Result<Response<pb::GetOrganizationResponse>, Status> {
        reply(organizations::get_organization(self, request).await)
    }

    async fn list_organizations(
        &self,
        request: Request<pb::ListOrganizationsRequest>,
    ) -> Result<Response<pb::ListOrganizationsResponse>, Status> {
        reply(organizations::list_organizations(self, request).await)
    }

    async fn update_organization(
        &self,
        request: Request<pb::UpdateOrganizationRequest>,
    ) -> Result<Response<pb::UpdateOrganizationResponse>, Status> {
        self.committed(reply(
            organizations::update_organization(self, request).await,
        ))
    }

    async fn create_member(
        &self,
        request: Request<pb::CreateMemberRequest>,
    ) -> Result<Response<pb::CreateMemberResponse>, Status> {
        self.committed(reply(organizations::create_member(self, request).await))
    }

    async fn get_member(
        &self,
        request: Request<pb::GetMemberRequest>,
    ) -> Result<Response<pb::GetMemberResponse>, Status> {
        reply(organizations::get_member(self, request).await)
    }

    async fn list_members(
        &self,
        request: Request<pb::ListMembersRequest>,
    ) -> Result<Response<pb::ListMembersResponse>, Status> {
        reply(organizations::list_members(self, request).await)
    }

    async fn update_member(
        &self,
        request: Request<pb::UpdateMemberRequest>,
    ) -> Result<Response<pb::UpdateMemberResponse>, Status> {
        self.committed(reply(organizations::update_member(self, request).await))
    }

    async fn delete_member(
        &self,
        request: Request<pb::DeleteMemberRequest>,
    ) -> Result<Response<pb::DeleteMemberResponse>, Status> {
        self.committed(reply(organizations::delete_member(self, request).await))
    }

    async fn create_provider_credential(
        &self,
        request: Request<pb::CreateProviderCredentialRequest>,
    ) -> Result<Response<pb::CreateProviderCredentialResponse>, Status> {
        self.committed(reply(credentials::create(self, request).await))
    }

    async fn get_provider_credential(
        &self,
        request: Request<pb::GetProviderCredentialRequest>,
    ) -> Result<Response<pb::GetProviderCredentialResponse>, Status> {
        reply(credentials::get(self, request).await)
    }

    async fn list_provider_credentials(
        &self,
        request: Request<pb::ListProviderCredentialsRequest>,
    ) -> Result<Response<pb::ListProviderCredentialsResponse>, Status> {
        reply(credentials::list(self, request).await)
    }

    async fn update_provider_credential(
        &self,
        request: Request<pb::UpdateProviderCredentialRequest>,
    ) -> Result<Response<pb::UpdateProviderCredentialResponse>, Status> {
        self.committed(reply(credentials::update(self, request).await))
    }

    async fn delete_provider_credential(
        &self,
        request: Request<pb::DeleteProviderCredentialRequest>,
    ) -> Result<Response<pb::DeleteProviderCredentialResponse>, Status> {
        self.committed(reply(credentials::delete(self, request).await))
    }

    async fn test_provider_credential(
        &self,
        request: Request<pb::TestProviderCredentialRequest>,
    ) -> Result<Response<pb::TestProviderCredentialResponse>, Status> {
        reply(credentials::test(self, request).await)
    }

    async fn resolve_provider_credential(
        &self,
        request: Request<pb::ResolveProviderCredentialRequest>,
    ) -> Result<Response<pb::ResolveProviderCredentialResponse>, Status> {
        reply(credentials::resolve(self, request).await)
    }

    async fn create_prompt_template(
        &self,
        request: Request<pb::CreatePromptTemplateRequest>,
    ) -> Result<Response<pb::CreatePromptTemplateResponse>, Status> {
        self.committed(reply(templates::create(self, request).await))
    }

    async fn get_prompt_template(
        &self,
        request: Request<pb::GetPromptTemplateRequest>,
    ) -> Result<Response<pb::GetPromptTemplateResponse>, Status> {
        reply(templates::get(self, request).await)
    }

    async fn list_prompt_templates(
        &self,
        request: Request<pb::ListPromptTemplatesRequest>,
    ) -> Result<Response<pb::ListPromptTemplatesResponse>, Status> {
        reply(templates::list(self, request).await)
    }

    async fn update_prompt_template(
        &self,
        request: Request<pb::UpdatePromptTemplateRequest>,
    ) -> Result<Response<pb::UpdatePromptTemplateResponse>, Status> {
        self.committed(reply(templates::update(self, request).await))
    }

    async fn delete_prompt_template(
        &self,
        request: Request<pb::DeletePromptTemplateRequest>,
    ) -> Result<Response<pb::DeletePromptTemplateResponse>, Status> {
        self.committed(reply(templates::delete(self, request).await))
    }

    async fn list_prompt_template_revisions(
        &self,
        request: Request<pb::ListPromptTemplateRevisionsRequest>,
    ) -> Result<Response<pb::ListPromptTemplateRevisionsResponse>, Status> {
        reply(templates::list_revisions(self, request).await)
    }

    async fn create_persona(
        &self,
        request: Request<pb::CreatePersonaRequest>,
    ) -> Result<Response<pb::CreatePersonaResponse>, Status> {
        self.committed(reply(
            async {
                let (db, caller, req) = self.context(request).await?;
                let persona = content::create(
                    db,
                    &self.cache,
                    &caller,
                    &req.parent,
                    req.persona,
                    &req.persona_id,
                )
                .await?;
                Ok(pb::CreatePersonaResponse {
                    persona: Some(persona),
                })
            }
            .await,
        ))
    }

    async fn get_persona(
        &self,
        request: Request<pb::GetPersonaRequest>,
    ) -> Result<Response<pb::GetPersonaResponse>, Status> {
        reply(
            async {
                let (db, caller, req) = self.context(request).await?;
                let persona = content::get(db, &self.cache, &caller, &req.name).await?;
                Ok(pb::GetPersonaResponse {
                    persona: Some(persona),
                })
            }
            .await,
        )
    }

    async fn list_personas(
        &self,
        request: Request<pb::ListPersonasRequest>,
    ) -> Result<Response<pb::ListPersonasResponse>, Status> {
        reply(
            async {
                let (db, caller, req) = self.context(request).await?;
                let filter = Filter {
                    difficulty: content::difficulty_filter(req.difficulty),
                    ..Filter::default()
                };
                let listed = content::list::<pb::Persona>(
                    db,
                    &caller,
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
            .await,
        )
    }

    async fn update_persona(
        &self,
        request: Request<pb::UpdatePersonaRequest>,
    ) -> Result<Response<pb::UpdatePersonaResponse>, Status> {
        self.committed(reply(
            async {
                let (db, caller, req) = self.context(request).await?;
                let persona = content::update(
                    db,
                    &self.cache,
                    &caller,
                    req.persona,
                    req.update_mask.as_ref(),
                )
                .await?;
                Ok(pb::UpdatePersonaResponse {
                    persona: Some(persona),
                })
            }
            .await,
        ))
    }

    async fn delete_persona(
        &self,
        request: Request<pb::DeletePersonaRequest>,
    ) -> Result<Response<pb::DeletePersonaResponse>, Status> {
        self.committed(reply(
            async {
                let (db, caller, req) = self.context(request).await?;
                content::delete::<pb::Persona>(db, &self.cache, &caller, &req.name, &req.etag)
                    .await?;
                Ok(pb::DeletePersonaResponse {})
            }
            .await,
        ))
    }

    async fn create_scenario(
        &self,
        request: Request<pb::CreateScenarioRequest>,
    ) -> Result<Response<pb::CreateScenarioResponse>, Status> {
        self.committed(reply(
            async {
                let (db, caller, req) = self.context(request).await?;
                let scenario = content::create(
                    db,
                    &self.cache,
                    &caller,
                    &req.parent,
                    req.scenario,
                    &req.scenario_id,
                )
                .await?;
                Ok(pb::CreateScenarioResponse {
                    scenario: Some(scenario),
                })
            }
            .await,
        ))
    }

    async fn get_scenario(
        &self,
        request: Request<pb::GetScenarioRequest>,
    ) -> Result<Response<pb::GetScenarioResponse>, Status> {
        reply(
            async {
                let (db, caller, req) = self.context(request).await?;
                let scenario = content::get(db, &self.cache, &caller, &req.name).await?;
                Ok(pb::GetScenarioResponse {
                    scenario: Some(scenario),
                })
            }
            .await,
        )
    }

    async fn list_scenarios(
        &self,
        request: Request<pb::ListScenariosRequest>,
    ) -> Result<Response<pb::ListScenariosResponse>, Status> {
        reply(
            async {
                let (db, caller, req) = self.context(request).await?;
                let filter = Filter {
                    persona_id: id_of(&req.persona, "personas"),
                    rubric_id: id_of(&req.rubric, "rubrics"),
                    ..Filter::default()
                };
                let listed = content::list::<pb::Scenario>(
                    db,
                    &caller,
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
            .await,
        )
    }

    async fn update_scenario(
        &self,
        request: Request<pb::UpdateScenarioRequest>,
    ) -> Result<Response<pb::UpdateScenarioResponse>, Status> {
        self.committed(reply(
            async {
                let (db, caller, req) = self.context(request).await?;
                let scenario = content::update(
                    db,
                    &self.cache,
                    &caller,
                    req.scenario,
                    req.update_mask.as_ref(),
                )
                .await?;
                Ok(pb::UpdateScenarioResponse {
                    scenario: Some(scenario),
                })
            }
            .await,
        ))
    }

    async fn delete_scenario(
        &self,
        request: Request<pb::DeleteScenarioRequest>,
    ) -> Result<Response<pb::DeleteScenarioResponse>, Status> {
        self.committed(reply(
            async {
                let (db, caller, req) = self.context(request).await?;
                content::delete::<pb::Scenario>(db, &self.cache, &caller, &req.name, &req.etag)
                    .await?;
                Ok(pb::DeleteScenarioResponse {})
            }
            .await,
        ))
    }

    async fn create_rubric(
        &self,
        request: Request<pb::CreateRubricRequest>,
    ) -> Result<Response<pb::CreateRubricResponse>, Status> {
        self.committed(reply(
            async {
                let (db, caller, req) = self.context(request).await?;
                let rubric = content::create(
                    db,
                    &self.cache,
                    &caller,
                    &req.parent,
                    req.rubric,
                    &req.rubric_id,
                )
                .await?;
                Ok(pb::CreateRubricResponse {
                    rubric: Some(rubric),
                })
            }
            .await,
        ))
    }

    async fn get_rubric(
        &self,
        request: Request<pb::GetRubricRequest>,
    ) -> Result<Response<pb::GetRubricResponse>, Status> {
        reply(
            async {
                let (db, caller, req) = self.context(request).await?;
                let rubric = content::get(db, &self.cache, &caller, &req.name).await?;
                Ok(pb::GetRubricResponse {
                    rubric: Some(rubric),
                })
            }
            .await,
        )
    }

    async fn list_rubrics(
        &self,
        request: Request<pb::ListRubricsRequest>,
    ) -> Result<Response<pb::ListRubricsResponse>, Status> {
        reply(
            async {
                let (db, caller, req) = self.context(request).await?;
                let filter = Filter::default();
                let listed = content::list::<pb::Rubric>(
                    db,
                    &caller,
                    &req.parent,
                    filter,
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
            .await,
        )
    }

    async fn update_rubric(
        &self,
        request: Request<pb::UpdateRubricRequest>,
    ) -> Result<Response<pb::UpdateRubricResponse>, Status> {
        self.committed(reply(
            async {
                let (db, caller, req) = self.context(request).await?;
                let rubric = content::update(
                    db,
                    &self.cache,
                    &caller,
                    req.rubric,
                    req.update_mask.as_ref(),
                )
                .await?;
                Ok(pb::UpdateRubricResponse {
                    rubric: Some(rubric),
                })
            }
            .await,
        ))
    }

    async fn delete_rubric(
        &self,
        request: Request<pb::DeleteRubricRequest>,
    ) -> Result<Response<pb::DeleteRubricResponse>, Status> {
        self.committed(reply(
            async {
                let (db, caller, req) = self.context(request).await?;
                content::delete::<pb::Rubric>(db, &self.cache, &caller, &req.name, &req.etag)
                    .await?;
                Ok(pb::DeleteRubricResponse {})
            }
            .await,
        ))
    }

    async fn create_assignment(
        &self,
        request: Request<pb::CreateAssignmentRequest>,
    ) -> Result<Response<pb::CreateAssignmentResponse>, Status> {
        self.committed(reply(
            async {
                let (db, caller, req) = self.context(request).await?;
                let assignment = content::create(
                    db,
                    &self.cache,
                    &caller,
                    &req.parent,
                    req.assignment,
                    &req.assignment_id,
                )
                .await?;
                Ok(pb::CreateAssignmentResponse {
                    assignment: Some(assignment),
                })
            }
            .await,
        ))
    }

    async fn get_assignment(
        &self,
        request: Request<pb::GetAssignmentRequest>,
    ) -> Result<Response<pb::GetAssignmentResponse>, Status> {
        reply(
            async {
                let (db, caller, req) = self.context(request).await?;
                let assignment = content::get(db, &self.cache, &caller, &req.name).await?;
                Ok(pb::GetAssignmentResponse {
                    assignment: Some(assignment),
                })
            }
            .await,
        )
    }

    async fn list_assignments(
        &self,
        request: Request<pb::ListAssignmentsRequest>,
    ) -> Result<Response<pb::ListAssignmentsResponse>, Status> {
        reply(
            async {
                let (db, caller, req) = self.context(request).await?;
                let filter = Filter {
                    scenario_id: id_of(&req.scenario, "scenarios"),
                    assignee: id_of(&req.assignee, "members"),
                    state: content::state_filter(req.state),
                    ..Filter::default()
                };
                let listed = content::list::<pb::Assignment>(
                    db,
                    &caller,
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
            .await,
        )
    }

    async fn update_assignment(
        &self,
        request: Request<pb::UpdateAssignmentRequest>,
    ) -> Result<Response<pb::UpdateAssignmentResponse>, Status> {
        self.committed(reply(
            async {
                let (db, caller, req) = self.context(request).await?;
                let assignment = content::update(
                    db,
                    &self.cache,
                    &caller,
                    req.assignment,
                    req.update_mask.as_ref(),
                )
                .await?;
                Ok(pb::UpdateAssignmentResponse {
                    assignment: Some(assignment),
                })
            }
            .await,
        ))
    }

    async fn delete_assignment(
        &self,
        request: Request<pb::DeleteAssignmentRequest>,
    ) -> Result<Response<pb::DeleteAssignmentResponse>, Status> {
        self.committed(reply(
            async {
                let (db, caller, req) = self.context(request).await?;
                content::delete::<pb::Assignment>(db, &self.cache, &caller, &req.name, &req.etag)
                    .await?;
                Ok(pb::DeleteAssignmentResponse {})
            }
            .await,
        ))
    }
}

/// The id in a typed reference filter; a malformed or empty name matches nothing / no constraint.
fn id_of(name: &str, collection: &str) -> Option<String> {
    if name.is_empty() {
        return None;
    }
    Some(
        crate::domain::names::parse_child(name, collection)
            .map(|(_, id)| id.to_owned())
            // Never matches a real id, so a bad filter returns nothing rather than everything.
            .unwrap_or_else(|| "-".to_owned()),
    )
}
