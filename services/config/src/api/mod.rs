//! The config service's gRPC API: each method takes the caller and the message out of the
//! request, calls one use case in [`crate::app`] and wraps its answer; errors become statuses
//! by the runtime's `api` edges. Checks, transactions and events live in the use cases.

use std::sync::Arc;

use salestrainer_proto::config as pb;
use salestrainer_runtime::api as edge;
use tonic::{Request, Response, Status};

use crate::app::{ConfigApp, certifications, content, credentials, organizations, templates};

pub struct ConfigServiceApi {
    app: Arc<ConfigApp>,
}

impl ConfigServiceApi {
    pub fn new(app: Arc<ConfigApp>) -> Self {
        Self { app }
    }
}

#[tonic::async_trait]
impl pb::config_service_server::ConfigService for ConfigServiceApi {
    async fn create_organization(
        &self,
        request: Request<pb::CreateOrganizationRequest>,
    ) -> Result<Response<pb::CreateOrganizationResponse>, Status> {
        let (principal, req) = edge::request(request)?;
        edge::reply(organizations::create_organization(&self.app, &principal, req).await)
    }

    async fn get_organization(
        &self,
        request: Request<pb::GetOrganizationRequest>,
    ) -> Result<Response<pb::GetOrganizationResponse>, Status> {
        let (principal, req) = edge::request(request)?;
        edge::reply(organizations::get_organization(&self.app, &principal, req).await)
    }

    async fn list_organizations(
        &self,
        request: Request<pb::ListOrganizationsRequest>,
    ) -> Result<Response<pb::ListOrganizationsResponse>, Status> {
        let (principal, req) = edge::request(request)?;
        edge::reply(organizations::list_organizations(&self.app, &principal, req).await)
    }

    async fn update_organization(
        &self,
        request: Request<pb::UpdateOrganizationRequest>,
    ) -> Result<Response<pb::UpdateOrganizationResponse>, Status> {
        let (principal, req) = edge::request(request)?;
        edge::reply(organizations::update_organization(&self.app, &principal, req).await)
    }

    async fn create_member(
        &self,
        request: Request<pb::CreateMemberRequest>,
    ) -> Result<Response<pb::CreateMemberResponse>, Status> {
        let (principal, req) = edge::request(request)?;
        edge::reply(organizations::create_member(&self.app, &principal, req).await)
    }

    async fn get_member(
        &self,
        request: Request<pb::GetMemberRequest>,
    ) -> Result<Response<pb::GetMemberResponse>, Status> {
        let (principal, req) = edge::request(request)?;
        edge::reply(organizations::get_member(&self.app, &principal, req).await)
    }

    async fn list_members(
        &self,
        request: Request<pb::ListMembersRequest>,
    ) -> Result<Response<pb::ListMembersResponse>, Status> {
        let (principal, req) = edge::request(request)?;
        edge::reply(organizations::list_members(&self.app, &principal, req).await)
    }

    async fn update_member(
        &self,
        request: Request<pb::UpdateMemberRequest>,
    ) -> Result<Response<pb::UpdateMemberResponse>, Status> {
        let (principal, req) = edge::request(request)?;
        edge::reply(organizations::update_member(&self.app, &principal, req).await)
    }

    async fn delete_member(
        &self,
        request: Request<pb::DeleteMemberRequest>,
    ) -> Result<Response<pb::DeleteMemberResponse>, Status> {
        let (principal, req) = edge::request(request)?;
        edge::reply(organizations::delete_member(&self.app, &principal, req).await)
    }

    async fn create_provider_credential(
        &self,
        request: Request<pb::CreateProviderCredentialRequest>,
    ) -> Result<Response<pb::CreateProviderCredentialResponse>, Status> {
        let (principal, req) = edge::request(request)?;
        edge::reply(credentials::create(&self.app, &principal, req).await)
    }

    async fn get_provider_credential(
        &self,
        request: Request<pb::GetProviderCredentialRequest>,
    ) -> Result<Response<pb::GetProviderCredentialResponse>, Status> {
        let (principal, req) = edge::request(request)?;
        edge::reply(credentials::get(&self.app, &principal, req).await)
    }

    async fn list_provider_credentials(
        &self,
        request: Request<pb::ListProviderCredentialsRequest>,
    ) -> Result<Response<pb::ListProviderCredentialsResponse>, Status> {
        let (principal, req) = edge::request(request)?;
        edge::reply(credentials::list(&self.app, &principal, req).await)
    }

    async fn update_provider_credential(
        &self,
        request: Request<pb::UpdateProviderCredentialRequest>,
    ) -> Result<Response<pb::UpdateProviderCredentialResponse>, Status> {
        let (principal, req) = edge::request(request)?;
        edge::reply(credentials::update(&self.app, &principal, req).await)
    }

    async fn delete_provider_credential(
        &self,
        request: Request<pb::DeleteProviderCredentialRequest>,
    ) -> Result<Response<pb::DeleteProviderCredentialResponse>, Status> {
        let (principal, req) = edge::request(request)?;
        edge::reply(credentials::delete(&self.app, &principal, req).await)
    }

    async fn test_provider_credential(
        &self,
        request: Request<pb::TestProviderCredentialRequest>,
    ) -> Result<Response<pb::TestProviderCredentialResponse>, Status> {
        let (principal, req) = edge::request(request)?;
        edge::reply(credentials::test(&self.app, &principal, req).await)
    }

    async fn resolve_provider_credential(
        &self,
        request: Request<pb::ResolveProviderCredentialRequest>,
    ) -> Result<Response<pb::ResolveProviderCredentialResponse>, Status> {
        let (principal, req) = edge::request(request)?;
        edge::reply(credentials::resolve(&self.app, &principal, req).await)
    }

    async fn create_prompt_template(
        &self,
        request: Request<pb::CreatePromptTemplateRequest>,
    ) -> Result<Response<pb::CreatePromptTemplateResponse>, Status> {
        let (principal, req) = edge::request(request)?;
        edge::reply(templates::create(&self.app, &principal, req).await)
    }

    async fn get_prompt_template(
        &self,
        request: Request<pb::GetPromptTemplateRequest>,
    ) -> Result<Response<pb::GetPromptTemplateResponse>, Status> {
        let (principal, req) = edge::request(request)?;
        edge::reply(templates::get(&self.app, &principal, req).await)
    }

    async fn list_prompt_templates(
        &self,
        request: Request<pb::ListPromptTemplatesRequest>,
    ) -> Result<Response<pb::ListPromptTemplatesResponse>, Status> {
        let (principal, req) = edge::request(request)?;
        edge::reply(templates::list(&self.app, &principal, req).await)
    }

    async fn update_prompt_template(
        &self,
        request: Request<pb::UpdatePromptTemplateRequest>,
    ) -> Result<Response<pb::UpdatePromptTemplateResponse>, Status> {
        let (principal, req) = edge::request(request)?;
        edge::reply(templates::update(&self.app, &principal, req).await)
    }

    async fn delete_prompt_template(
        &self,
        request: Request<pb::DeletePromptTemplateRequest>,
    ) -> Result<Response<pb::DeletePromptTemplateResponse>, Status> {
        let (principal, req) = edge::request(request)?;
        edge::reply(templates::delete(&self.app, &principal, req).await)
    }

    async fn list_prompt_template_revisions(
        &self,
        request: Request<pb::ListPromptTemplateRevisionsRequest>,
    ) -> Result<Response<pb::ListPromptTemplateRevisionsResponse>, Status> {
        let (principal, req) = edge::request(request)?;
        edge::reply(templates::list_revisions(&self.app, &principal, req).await)
    }

    async fn create_persona(
        &self,
        request: Request<pb::CreatePersonaRequest>,
    ) -> Result<Response<pb::CreatePersonaResponse>, Status> {
        let (principal, req) = edge::request(request)?;
        let created = content::create(
            &self.app,
            &principal,
            &req.parent,
            req.persona,
            &req.persona_id,
        )
        .await;
        edge::reply(created.map(|persona| pb::CreatePersonaResponse {
            persona: Some(persona),
        }))
    }

    async fn get_persona(
        &self,
        request: Request<pb::GetPersonaRequest>,
    ) -> Result<Response<pb::GetPersonaResponse>, Status> {
        let (principal, req) = edge::request(request)?;
        let found = content::get(&self.app, &principal, &req.name).await;
        edge::reply(found.map(|persona| pb::GetPersonaResponse {
            persona: Some(persona),
        }))
    }

    async fn list_personas(
        &self,
        request: Request<pb::ListPersonasRequest>,
    ) -> Result<Response<pb::ListPersonasResponse>, Status> {
        let (principal, req) = edge::request(request)?;
        edge::reply(content::list_personas(&self.app, &principal, req).await)
    }

    async fn update_persona(
        &self,
        request: Request<pb::UpdatePersonaRequest>,
    ) -> Result<Response<pb::UpdatePersonaResponse>, Status> {
        let (principal, req) = edge::request(request)?;
        let updated =
            content::update(&self.app, &principal, req.persona, req.update_mask.as_ref()).await;
        edge::reply(updated.map(|persona| pb::UpdatePersonaResponse {
            persona: Some(persona),
        }))
    }

    async fn delete_persona(
        &self,
        request: Request<pb::DeletePersonaRequest>,
    ) -> Result<Response<pb::DeletePersonaResponse>, Status> {
        let (principal, req) = edge::request(request)?;
        let deleted =
            content::delete::<pb::Persona>(&self.app, &principal, &req.name, &req.etag).await;
        edge::reply(deleted.map(|()| pb::DeletePersonaResponse {}))
    }

    async fn create_scenario(
        &self,
        request: Request<pb::CreateScenarioRequest>,
    ) -> Result<Response<pb::CreateScenarioResponse>, Status> {
        let (principal, req) = edge::request(request)?;
        let created = content::create(
            &self.app,
            &principal,
            &req.parent,
            req.scenario,
            &req.scenario_id,
        )
        .await;
        edge::reply(created.map(|scenario| pb::CreateScenarioResponse {
            scenario: Some(scenario),
        }))
    }

    async fn get_scenario(
        &self,
        request: Request<pb::GetScenarioRequest>,
    ) -> Result<Response<pb::GetScenarioResponse>, Status> {
        let (principal, req) = edge::request(request)?;
        let found = content::get(&self.app, &principal, &req.name).await;
        edge::reply(found.map(|scenario| pb::GetScenarioResponse {
            scenario: Some(scenario),
        }))
    }

    async fn list_scenarios(
        &self,
        request: Request<pb::ListScenariosRequest>,
    ) -> Result<Response<pb::ListScenariosResponse>, Status> {
        let (principal, req) = edge::request(request)?;
        edge::reply(content::list_scenarios(&self.app, &principal, req).await)
    }

    async fn update_scenario(
        &self,
        request: Request<pb::UpdateScenarioRequest>,
    ) -> Result<Response<pb::UpdateScenarioResponse>, Status> {
        let (principal, req) = edge::request(request)?;
        let updated = content::update(
            &self.app,
            &principal,
            req.scenario,
            req.update_mask.as_ref(),
        )
        .await;
        edge::reply(updated.map(|scenario| pb::UpdateScenarioResponse {
            scenario: Some(scenario),
        }))
    }

    async fn delete_scenario(
        &self,
        request: Request<pb::DeleteScenarioRequest>,
    ) -> Result<Response<pb::DeleteScenarioResponse>, Status> {
        let (principal, req) = edge::request(request)?;
        let deleted =
            content::delete::<pb::Scenario>(&self.app, &principal, &req.name, &req.etag).await;
        edge::reply(deleted.map(|()| pb::DeleteScenarioResponse {}))
    }

    async fn create_rubric(
        &self,
        request: Request<pb::CreateRubricRequest>,
    ) -> Result<Response<pb::CreateRubricResponse>, Status> {
        let (principal, req) = edge::request(request)?;
        let created = content::create(
            &self.app,
            &principal,
            &req.parent,
            req.rubric,
            &req.rubric_id,
        )
        .await;
        edge::reply(created.map(|rubric| pb::CreateRubricResponse {
            rubric: Some(rubric),
        }))
    }

    async fn get_rubric(
        &self,
        request: Request<pb::GetRubricRequest>,
    ) -> Result<Response<pb::GetRubricResponse>, Status> {
        let (principal, req) = edge::request(request)?;
        let found = content::get(&self.app, &principal, &req.name).await;
        edge::reply(found.map(|rubric| pb::GetRubricResponse {
            rubric: Some(rubric),
        }))
    }

    async fn list_rubrics(
        &self,
        request: Request<pb::ListRubricsRequest>,
    ) -> Result<Response<pb::ListRubricsResponse>, Status> {
        let (principal, req) = edge::request(request)?;
        edge::reply(content::list_rubrics(&self.app, &principal, req).await)
    }

    async fn update_rubric(
        &self,
        request: Request<pb::UpdateRubricRequest>,
    ) -> Result<Response<pb::UpdateRubricResponse>, Status> {
        let (principal, req) = edge::request(request)?;
        let updated =
            content::update(&self.app, &principal, req.rubric, req.update_mask.as_ref()).await;
        edge::reply(updated.map(|rubric| pb::UpdateRubricResponse {
            rubric: Some(rubric),
        }))
    }

    async fn delete_rubric(
        &self,
        request: Request<pb::DeleteRubricRequest>,
    ) -> Result<Response<pb::DeleteRubricResponse>, Status> {
        let (principal, req) = edge::request(request)?;
        let deleted =
            content::delete::<pb::Rubric>(&self.app, &principal, &req.name, &req.etag).await;
        edge::reply(deleted.map(|()| pb::DeleteRubricResponse {}))
    }

    async fn create_assignment(
        &self,
        request: Request<pb::CreateAssignmentRequest>,
    ) -> Result<Response<pb::CreateAssignmentResponse>, Status> {
        let (principal, req) = edge::request(request)?;
        let created = content::create(
            &self.app,
            &principal,
            &req.parent,
            req.assignment,
            &req.assignment_id,
        )
        .await;
        edge::reply(created.map(|assignment| pb::CreateAssignmentResponse {
            assignment: Some(assignment),
        }))
    }

    async fn get_assignment(
        &self,
        request: Request<pb::GetAssignmentRequest>,
    ) -> Result<Response<pb::GetAssignmentResponse>, Status> {
        let (principal, req) = edge::request(request)?;
        let found = content::get(&self.app, &principal, &req.name).await;
        edge::reply(found.map(|assignment| pb::GetAssignmentResponse {
            assignment: Some(assignment),
        }))
    }

    async fn list_assignments(
        &self,
        request: Request<pb::ListAssignmentsRequest>,
    ) -> Result<Response<pb::ListAssignmentsResponse>, Status> {
        let (principal, req) = edge::request(request)?;
        edge::reply(content::list_assignments(&self.app, &principal, req).await)
    }

    async fn update_assignment(
        &self,
        request: Request<pb::UpdateAssignmentRequest>,
    ) -> Result<Response<pb::UpdateAssignmentResponse>, Status> {
        let (principal, req) = edge::request(request)?;
        let updated = content::update(
            &self.app,
            &principal,
            req.assignment,
            req.update_mask.as_ref(),
        )
        .await;
        edge::reply(updated.map(|assignment| pb::UpdateAssignmentResponse {
            assignment: Some(assignment),
        }))
    }

    async fn delete_assignment(
        &self,
        request: Request<pb::DeleteAssignmentRequest>,
    ) -> Result<Response<pb::DeleteAssignmentResponse>, Status> {
        let (principal, req) = edge::request(request)?;
        let deleted =
            content::delete::<pb::Assignment>(&self.app, &principal, &req.name, &req.etag).await;
        edge::reply(deleted.map(|()| pb::DeleteAssignmentResponse {}))
    }

    async fn create_certification(
        &self,
        request: Request<pb::CreateCertificationRequest>,
    ) -> Result<Response<pb::CreateCertificationResponse>, Status> {
        let (principal, req) = edge::request(request)?;
        let created = content::create(
            &self.app,
            &principal,
            &req.parent,
            req.certification,
            &req.certification_id,
        )
        .await;
        edge::reply(
            created.map(|certification| pb::CreateCertificationResponse {
                certification: Some(certification),
            }),
        )
    }

    async fn get_certification(
        &self,
        request: Request<pb::GetCertificationRequest>,
    ) -> Result<Response<pb::GetCertificationResponse>, Status> {
        let (principal, req) = edge::request(request)?;
        let found = content::get(&self.app, &principal, &req.name).await;
        edge::reply(found.map(|certification| pb::GetCertificationResponse {
            certification: Some(certification),
        }))
    }

    async fn list_certifications(
        &self,
        request: Request<pb::ListCertificationsRequest>,
    ) -> Result<Response<pb::ListCertificationsResponse>, Status> {
        let (principal, req) = edge::request(request)?;
        edge::reply(certifications::list_certifications(&self.app, &principal, req).await)
    }

    async fn update_certification(
        &self,
        request: Request<pb::UpdateCertificationRequest>,
    ) -> Result<Response<pb::UpdateCertificationResponse>, Status> {
        let (principal, req) = edge::request(request)?;
        let updated = content::update(
            &self.app,
            &principal,
            req.certification,
            req.update_mask.as_ref(),
        )
        .await;
        edge::reply(
            updated.map(|certification| pb::UpdateCertificationResponse {
                certification: Some(certification),
            }),
        )
    }

    async fn delete_certification(
        &self,
        request: Request<pb::DeleteCertificationRequest>,
    ) -> Result<Response<pb::DeleteCertificationResponse>, Status> {
        let (principal, req) = edge::request(request)?;
        let deleted =
            content::delete::<pb::Certification>(&self.app, &principal, &req.name, &req.etag).await;
        edge::reply(deleted.map(|()| pb::DeleteCertificationResponse {}))
    }
}
