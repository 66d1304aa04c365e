//! gRPC layer of the grading service.

use salestrainer_proto::grading as pb;
use salestrainer_runtime::{ApiError, Ready, app::BoxStream};
use sea_orm::DatabaseConnection;
use tonic::Status;

pub struct GradingServiceApi {
    #[allow(dead_code)]
    db: Ready<DatabaseConnection>,
}

impl GradingServiceApi {
    pub fn new(db: Ready<DatabaseConnection>) -> Self {
        Self { db }
    }
}

#[tonic::async_trait]
impl pb::grading_service_server::GradingService for GradingServiceApi {
    type WatchGradingJobStream = BoxStream<pb::WatchGradingJobResponse>;

    async fn submit_session(
        &self,
        _request: tonic::Request<pb::SubmitSessionRequest>,
    ) -> Result<tonic::Response<pb::SubmitSessionResponse>, Status> {
        Err(ApiError::Unimplemented("GradingService.SubmitSession").into())
    }

    async fn get_grading_job(
        &self,
        _request: tonic::Request<pb::GetGradingJobRequest>,
    ) -> Result<tonic::Response<pb::GetGradingJobResponse>, Status> {
        Err(ApiError::Unimplemented("GradingService.GetGradingJob").into())
    }

    async fn list_grading_jobs(
        &self,
        _request: tonic::Request<pb::ListGradingJobsRequest>,
    ) -> Result<tonic::Response<pb::ListGradingJobsResponse>, Status> {
        Err(ApiError::Unimplemented("GradingService.ListGradingJobs").into())
    }

    async fn retry_grading_job(
        &self,
        _request: tonic::Request<pb::RetryGradingJobRequest>,
    ) -> Result<tonic::Response<pb::RetryGradingJobResponse>, Status> {
        Err(ApiError::Unimplemented("GradingService.RetryGradingJob").into())
    }

    async fn get_evaluation(
        &self,
        _request: tonic::Request<pb::GetEvaluationRequest>,
    ) -> Result<tonic::Response<pb::GetEvaluationResponse>, Status> {
        Err(ApiError::Unimplemented("GradingService.GetEvaluation").into())
    }

    async fn list_evaluations(
        &self,
        _request: tonic::Request<pb::ListEvaluationsRequest>,
    ) -> Result<tonic::Response<pb::ListEvaluationsResponse>, Status> {
        Err(ApiError::Unimplemented("GradingService.ListEvaluations").into())
    }

    async fn regrade_session(
        &self,
        _request: tonic::Request<pb::RegradeSessionRequest>,
    ) -> Result<tonic::Response<pb::RegradeSessionResponse>, Status> {
        Err(ApiError::Unimplemented("GradingService.RegradeSession").into())
    }

    async fn watch_grading_job(
        &self,
        _request: tonic::Request<pb::WatchGradingJobRequest>,
    ) -> Result<tonic::Response<Self::WatchGradingJobStream>, Status> {
        Err(ApiError::Unimplemented("GradingService.WatchGradingJob").into())
    }
}
