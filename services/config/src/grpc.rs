//! gRPC layer of the config service.

use salestrainer_proto::config as pb;
use salestrainer_runtime::{ApiError, Ready};
use sea_orm::DatabaseConnection;
use tonic::Status;

pub struct ConfigServiceApi {
    #[allow(dead_code)]
    db: Ready<DatabaseConnection>,
}

impl ConfigServiceApi {
    pub fn new(db: Ready<DatabaseConnection>) -> Self {
        Self { db }
    }
}

#[tonic::async_trait]
impl pb::config_service_server::ConfigService for ConfigServiceApi {
    async fn create_organization(
        &self,
        _request: tonic::Request<pb::CreateOrganizationRequest>,
    ) -> Result<tonic::Response<pb::CreateOrganizationResponse>, Status> {
        Err(ApiError::Unimplemented("ConfigService.CreateOrganization").into())
    }

    async fn get_organization(
        &self,
        _request: tonic::Request<pb::GetOrganizationRequest>,
    ) -> Result<tonic::Response<pb::GetOrganizationResponse>, Status> {
        Err(ApiError::Unimplemented("ConfigService.GetOrganization").into())
    }

    async fn list_organizations(
        &self,
        _request: tonic::Request<pb::ListOrganizationsRequest>,
    ) -> Result<tonic::Response<pb::ListOrganizationsResponse>, Status> {
        Err(ApiError::Unimplemented("ConfigService.ListOrganizations").into())
    }

    async fn update_organization(
        &self,
        _request: tonic::Request<pb::UpdateOrganizationRequest>,
    ) -> Result<tonic::Response<pb::UpdateOrganizationResponse>, Status> {
        Err(ApiError::Unimplemented("ConfigService.UpdateOrganization").into())
    }

    async fn create_member(
        &self,
        _request: tonic::Request<pb::CreateMemberRequest>,
    ) -> Result<tonic::Response<pb::CreateMemberResponse>, Status> {
        Err(ApiError::Unimplemented("ConfigService.CreateMember").into())
    }

    async fn get_member(
        &self,
        _request: tonic::Request<pb::GetMemberRequest>,
    ) -> Result<tonic::Response<pb::GetMemberResponse>, Status> {
        Err(ApiError::Unimplemented("ConfigService.GetMember").into())
    }

    async fn list_members(
        &self,
        _request: tonic::Request<pb::ListMembersRequest>,
    ) -> Result<tonic::Response<pb::ListMembersResponse>, Status> {
        Err(ApiError::Unimplemented("ConfigService.ListMembers").into())
    }

    async fn update_member(
        &self,
        _request: tonic::Request<pb::UpdateMemberRequest>,
    ) -> Result<tonic::Response<pb::UpdateMemberResponse>, Status> {
        Err(ApiError::Unimplemented("ConfigService.UpdateMember").into())
    }

    async fn delete_member(
        &self,
        _request: tonic::Request<pb::DeleteMemberRequest>,
    ) -> Result<tonic::Response<pb::DeleteMemberResponse>, Status> {
        Err(ApiError::Unimplemented("ConfigService.DeleteMember").into())
    }

    async fn create_provider_credential(
        &self,
        _request: tonic::Request<pb::CreateProviderCredentialRequest>,
    ) -> Result<tonic::Response<pb::CreateProviderCredentialResponse>, Status> {
        Err(ApiError::Unimplemented("ConfigService.CreateProviderCredential").into())
    }

    async fn get_provider_credential(
        &self,
        _request: tonic::Request<pb::GetProviderCredentialRequest>,
    ) -> Result<tonic::Response<pb::GetProviderCredentialResponse>, Status> {
        Err(ApiError::Unimplemented("ConfigService.GetProviderCredential").into())
    }

    async fn list_provider_credentials(
        &self,
        _request: tonic::Request<pb::ListProviderCredentialsRequest>,
    ) -> Result<tonic::Response<pb::ListProviderCredentialsResponse>, Status> {
        Err(ApiError::Unimplemented("ConfigService.ListProviderCredentials").into())
    }

    async fn update_provider_credential(
        &self,
        _request: tonic::Request<pb::UpdateProviderCredentialRequest>,
    ) -> Result<tonic::Response<pb::UpdateProviderCredentialResponse>, Status> {
        Err(ApiError::Unimplemented("ConfigService.UpdateProviderCredential").into())
    }

    async fn delete_provider_credential(
        &self,
        _request: tonic::Request<pb::DeleteProviderCredentialRequest>,
    ) -> Result<tonic::Response<pb::DeleteProviderCredentialResponse>, Status> {
        Err(ApiError::Unimplemented("ConfigService.DeleteProviderCredential").into())
    }

    async fn create_persona(
        &self,
        _request: tonic::Request<pb::CreatePersonaRequest>,
    ) -> Result<tonic::Response<pb::CreatePersonaResponse>, Status> {
        Err(ApiError::Unimplemented("ConfigService.CreatePersona").into())
    }

    async fn get_persona(
        &self,
        _request: tonic::Request<pb::GetPersonaRequest>,
    ) -> Result<tonic::Response<pb::GetPersonaResponse>, Status> {
        Err(ApiError::Unimplemented("ConfigService.GetPersona").into())
    }

    async fn list_personas(
        &self,
        _request: tonic::Request<pb::ListPersonasRequest>,
    ) -> Result<tonic::Response<pb::ListPersonasResponse>, Status> {
        Err(ApiError::Unimplemented("ConfigService.ListPersonas").into())
    }

    async fn update_persona(
        &self,
        _request: tonic::Request<pb::UpdatePersonaRequest>,
    ) -> Result<tonic::Response<pb::UpdatePersonaResponse>, Status> {
        Err(ApiError::Unimplemented("ConfigService.UpdatePersona").into())
    }

    async fn delete_persona(
        &self,
        _request: tonic::Request<pb::DeletePersonaRequest>,
    ) -> Result<tonic::Response<pb::DeletePersonaResponse>, Status> {
        Err(ApiError::Unimplemented("ConfigService.DeletePersona").into())
    }

    async fn create_scenario(
        &self,
        _request: tonic::Request<pb::CreateScenarioRequest>,
    ) -> Result<tonic::Response<pb::CreateScenarioResponse>, Status> {
        Err(ApiError::Unimplemented("ConfigService.CreateScenario").into())
    }

    async fn get_scenario(
        &self,
        _request: tonic::Request<pb::GetScenarioRequest>,
    ) -> Result<tonic::Response<pb::GetScenarioResponse>, Status> {
        Err(ApiError::Unimplemented("ConfigService.GetScenario").into())
    }

    async fn list_scenarios(
        &self,
        _request: tonic::Request<pb::ListScenariosRequest>,
    ) -> Result<tonic::Response<pb::ListScenariosResponse>, Status> {
        Err(ApiError::Unimplemented("ConfigService.ListScenarios").into())
    }

    async fn update_scenario(
        &self,
        _request: tonic::Request<pb::UpdateScenarioRequest>,
    ) -> Result<tonic::Response<pb::UpdateScenarioResponse>, Status> {
        Err(ApiError::Unimplemented("ConfigService.UpdateScenario").into())
    }

    async fn delete_scenario(
        &self,
        _request: tonic::Request<pb::DeleteScenarioRequest>,
    ) -> Result<tonic::Response<pb::DeleteScenarioResponse>, Status> {
        Err(ApiError::Unimplemented("ConfigService.DeleteScenario").into())
    }

    async fn create_rubric(
        &self,
        _request: tonic::Request<pb::CreateRubricRequest>,
    ) -> Result<tonic::Response<pb::CreateRubricResponse>, Status> {
        Err(ApiError::Unimplemented("ConfigService.CreateRubric").into())
    }

    async fn get_rubric(
        &self,
        _request: tonic::Request<pb::GetRubricRequest>,
    ) -> Result<tonic::Response<pb::GetRubricResponse>, Status> {
        Err(ApiError::Unimplemented("ConfigService.GetRubric").into())
    }

    async fn list_rubrics(
        &self,
        _request: tonic::Request<pb::ListRubricsRequest>,
    ) -> Result<tonic::Response<pb::ListRubricsResponse>, Status> {
        Err(ApiError::Unimplemented("ConfigService.ListRubrics").into())
    }

    async fn update_rubric(
        &self,
        _request: tonic::Request<pb::UpdateRubricRequest>,
    ) -> Result<tonic::Response<pb::UpdateRubricResponse>, Status> {
        Err(ApiError::Unimplemented("ConfigService.UpdateRubric").into())
    }

    async fn delete_rubric(
        &self,
        _request: tonic::Request<pb::DeleteRubricRequest>,
    ) -> Result<tonic::Response<pb::DeleteRubricResponse>, Status> {
        Err(ApiError::Unimplemented("ConfigService.DeleteRubric").into())
    }

    async fn create_prompt_template(
        &self,
        _request: tonic::Request<pb::CreatePromptTemplateRequest>,
    ) -> Result<tonic::Response<pb::CreatePromptTemplateResponse>, Status> {
        Err(ApiError::Unimplemented("ConfigService.CreatePromptTemplate").into())
    }

    async fn get_prompt_template(
        &self,
        _request: tonic::Request<pb::GetPromptTemplateRequest>,
    ) -> Result<tonic::Response<pb::GetPromptTemplateResponse>, Status> {
        Err(ApiError::Unimplemented("ConfigService.GetPromptTemplate").into())
    }

    async fn list_prompt_templates(
        &self,
        _request: tonic::Request<pb::ListPromptTemplatesRequest>,
    ) -> Result<tonic::Response<pb::ListPromptTemplatesResponse>, Status> {
        Err(ApiError::Unimplemented("ConfigService.ListPromptTemplates").into())
    }

    async fn update_prompt_template(
        &self,
        _request: tonic::Request<pb::UpdatePromptTemplateRequest>,
    ) -> Result<tonic::Response<pb::UpdatePromptTemplateResponse>, Status> {
        Err(ApiError::Unimplemented("ConfigService.UpdatePromptTemplate").into())
    }

    async fn delete_prompt_template(
        &self,
        _request: tonic::Request<pb::DeletePromptTemplateRequest>,
    ) -> Result<tonic::Response<pb::DeletePromptTemplateResponse>, Status> {
        Err(ApiError::Unimplemented("ConfigService.DeletePromptTemplate").into())
    }

    async fn create_assignment(
        &self,
        _request: tonic::Request<pb::CreateAssignmentRequest>,
    ) -> Result<tonic::Response<pb::CreateAssignmentResponse>, Status> {
        Err(ApiError::Unimplemented("ConfigService.CreateAssignment").into())
    }

    async fn get_assignment(
        &self,
        _request: tonic::Request<pb::GetAssignmentRequest>,
    ) -> Result<tonic::Response<pb::GetAssignmentResponse>, Status> {
        Err(ApiError::Unimplemented("ConfigService.GetAssignment").into())
    }

    async fn list_assignments(
        &self,
        _request: tonic::Request<pb::ListAssignmentsRequest>,
    ) -> Result<tonic::Response<pb::ListAssignmentsResponse>, Status> {
        Err(ApiError::Unimplemented("ConfigService.ListAssignments").into())
    }

    async fn update_assignment(
        &self,
        _request: tonic::Request<pb::UpdateAssignmentRequest>,
    ) -> Result<tonic::Response<pb::UpdateAssignmentResponse>, Status> {
        Err(ApiError::Unimplemented("ConfigService.UpdateAssignment").into())
    }

    async fn delete_assignment(
        &self,
        _request: tonic::Request<pb::DeleteAssignmentRequest>,
    ) -> Result<tonic::Response<pb::DeleteAssignmentResponse>, Status> {
        Err(ApiError::Unimplemented("ConfigService.DeleteAssignment").into())
    }

    async fn list_prompt_template_revisions(
        &self,
        _request: tonic::Request<pb::ListPromptTemplateRevisionsRequest>,
    ) -> Result<tonic::Response<pb::ListPromptTemplateRevisionsResponse>, Status> {
        Err(ApiError::Unimplemented("ConfigService.ListPromptTemplateRevisions").into())
    }

    async fn test_provider_credential(
        &self,
        _request: tonic::Request<pb::TestProviderCredentialRequest>,
    ) -> Result<tonic::Response<pb::TestProviderCredentialResponse>, Status> {
        Err(ApiError::Unimplemented("ConfigService.TestProviderCredential").into())
    }

    async fn resolve_provider_credential(
        &self,
        _request: tonic::Request<pb::ResolveProviderCredentialRequest>,
    ) -> Result<tonic::Response<pb::ResolveProviderCredentialResponse>, Status> {
        Err(ApiError::Unimplemented("ConfigService.ResolveProviderCredential").into())
    }
}
