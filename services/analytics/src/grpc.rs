//! gRPC layer of the analytics service.

use salestrainer_proto::analytics as pb;
use salestrainer_runtime::{ApiError, Ready};
use sea_orm::DatabaseConnection;
use tonic::Status;

pub struct AnalyticsServiceApi {
    #[allow(dead_code)]
    db: Ready<DatabaseConnection>,
}

impl AnalyticsServiceApi {
    pub fn new(db: Ready<DatabaseConnection>) -> Self {
        Self { db }
    }
}

#[tonic::async_trait]
impl pb::analytics_service_server::AnalyticsService for AnalyticsServiceApi {
    async fn get_organization_summary(
        &self,
        _request: tonic::Request<pb::GetOrganizationSummaryRequest>,
    ) -> Result<tonic::Response<pb::GetOrganizationSummaryResponse>, Status> {
        Err(ApiError::Unimplemented("AnalyticsService.GetOrganizationSummary").into())
    }

    async fn get_trainee_summary(
        &self,
        _request: tonic::Request<pb::GetTraineeSummaryRequest>,
    ) -> Result<tonic::Response<pb::GetTraineeSummaryResponse>, Status> {
        Err(ApiError::Unimplemented("AnalyticsService.GetTraineeSummary").into())
    }

    async fn get_leaderboard(
        &self,
        _request: tonic::Request<pb::GetLeaderboardRequest>,
    ) -> Result<tonic::Response<pb::GetLeaderboardResponse>, Status> {
        Err(ApiError::Unimplemented("AnalyticsService.GetLeaderboard").into())
    }

    async fn get_assignment_progress(
        &self,
        _request: tonic::Request<pb::GetAssignmentProgressRequest>,
    ) -> Result<tonic::Response<pb::GetAssignmentProgressResponse>, Status> {
        Err(ApiError::Unimplemented("AnalyticsService.GetAssignmentProgress").into())
    }

    async fn get_usage(
        &self,
        _request: tonic::Request<pb::GetUsageRequest>,
    ) -> Result<tonic::Response<pb::GetUsageResponse>, Status> {
        Err(ApiError::Unimplemented("AnalyticsService.GetUsage").into())
    }

    async fn ingest_events(
        &self,
        _request: tonic::Request<pb::IngestEventsRequest>,
    ) -> Result<tonic::Response<pb::IngestEventsResponse>, Status> {
        Err(ApiError::Unimplemented("AnalyticsService.IngestEvents").into())
    }
}
