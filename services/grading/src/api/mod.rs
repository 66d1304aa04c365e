//! The gRPC adapter of the grading service: decodes a request, calls one use case of
//! `app::jobs::Grading`, and encodes its answer (`convert`). No database access, no rules.

pub mod convert;

use salestrainer_proto::grading as pb;
use salestrainer_runtime::{Principal, app::BoxStream};
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status};

use crate::app::jobs::Grading;

pub struct GradingServiceApi {
    app: Grading,
}

impl GradingServiceApi {
    pub fn new(app: Grading) -> Self {
        Self { app }
    }
}

#[tonic::async_trait]
impl pb::grading_service_server::GradingService for GradingServiceApi {
    type WatchGradingJobStream = BoxStream<pb::WatchGradingJobResponse>;

    async fn submit_session(
        &self,
        request: Request<pb::SubmitSessionRequest>,
    ) -> Result<Response<pb::SubmitSessionResponse>, Status> {
        let p = Principal::of(&request)?;
        let (j, created) = self.app.submit(p, request.get_ref()).await?;
        Ok(Response::new(pb::SubmitSessionResponse {
            grading_job: Some(convert::job_pb(&j)),
            already_submitted: !created,
        }))
    }

    async fn batch_get_session_outcomes(
        &self,
        request: Request<pb::BatchGetSessionOutcomesRequest>,
    ) -> Result<Response<pb::BatchGetSessionOutcomesResponse>, Status> {
        let p = Principal::of(&request)?;
        let outcomes = self.app.session_outcomes(p, request.get_ref()).await?;
        Ok(Response::new(pb::BatchGetSessionOutcomesResponse {
            outcomes,
        }))
    }

    async fn get_grading_job(
        &self,
        request: Request<pb::GetGradingJobRequest>,
    ) -> Result<Response<pb::GetGradingJobResponse>, Status> {
        let p = Principal::of(&request)?;
        let j = self.app.get_job(p, &request.get_ref().name).await?;
        Ok(Response::new(pb::GetGradingJobResponse {
            grading_job: Some(convert::job_pb(&j)),
        }))
    }

    async fn list_grading_jobs(
        &self,
        request: Request<pb::ListGradingJobsRequest>,
    ) -> Result<Response<pb::ListGradingJobsResponse>, Status> {
        let p = Principal::of(&request)?;
        let page = self.app.list_jobs(p, request.get_ref()).await?;
        Ok(Response::new(pb::ListGradingJobsResponse {
            grading_jobs: page.items.iter().map(convert::job_pb).collect(),
            next_page_token: page.next_page_token,
            total_size: i32::try_from(page.total_size).unwrap_or(i32::MAX),
        }))
    }

    async fn retry_grading_job(
        &self,
        request: Request<pb::RetryGradingJobRequest>,
    ) -> Result<Response<pb::RetryGradingJobResponse>, Status> {
        let p = Principal::of(&request)?;
        let j = self.app.retry_job(p, request.get_ref()).await?;
        Ok(Response::new(pb::RetryGradingJobResponse {
            grading_job: Some(convert::job_pb(&j)),
        }))
    }

    async fn get_evaluation(
        &self,
        request: Request<pb::GetEvaluationRequest>,
    ) -> Result<Response<pb::GetEvaluationResponse>, Status> {
        let p = Principal::of(&request)?;
        let e = self.app.get_evaluation(p, &request.get_ref().name).await?;
        Ok(Response::new(pb::GetEvaluationResponse {
            evaluation: Some(convert::evaluation_pb(&e)),
        }))
    }

    async fn list_evaluations(
        &self,
        request: Request<pb::ListEvaluationsRequest>,
    ) -> Result<Response<pb::ListEvaluationsResponse>, Status> {
        let p = Principal::of(&request)?;
        let page = self.app.list_evaluations(p, request.get_ref()).await?;
        Ok(Response::new(pb::ListEvaluationsResponse {
            evaluations: page.items.iter().map(convert::evaluation_pb).collect(),
            next_page_token: page.next_page_token,
            total_size: i32::try_from(page.total_size).unwrap_or(i32::MAX),
        }))
    }

    async fn regrade_session(
        &self,
        request: Request<pb::RegradeSessionRequest>,
    ) -> Result<Response<pb::RegradeSessionResponse>, Status> {
        let p = Principal::of(&request)?;
        let j = self.app.regrade(p, request.get_ref()).await?;
        Ok(Response::new(pb::RegradeSessionResponse {
            grading_job: Some(convert::job_pb(&j)),
        }))
    }

    async fn override_evaluation(
        &self,
        request: Request<pb::OverrideEvaluationRequest>,
    ) -> Result<Response<pb::OverrideEvaluationResponse>, Status> {
        let p = Principal::of(&request)?;
        let e = self.app.override_evaluation(p, request.get_ref()).await?;
        Ok(Response::new(pb::OverrideEvaluationResponse {
            evaluation: Some(convert::evaluation_pb(&e)),
        }))
    }

    async fn clear_evaluation_override(
        &self,
        request: Request<pb::ClearEvaluationOverrideRequest>,
    ) -> Result<Response<pb::ClearEvaluationOverrideResponse>, Status> {
        let p = Principal::of(&request)?;
        let e = self.app.clear_override(p, request.get_ref()).await?;
        Ok(Response::new(pb::ClearEvaluationOverrideResponse {
            evaluation: Some(convert::evaluation_pb(&e)),
        }))
    }

    async fn list_evaluation_overrides(
        &self,
        request: Request<pb::ListEvaluationOverridesRequest>,
    ) -> Result<Response<pb::ListEvaluationOverridesResponse>, Status> {
        let p = Principal::of(&request)?;
        let page = self.app.list_overrides(p, request.get_ref()).await?;
        Ok(Response::new(pb::ListEvaluationOverridesResponse {
            evaluation_overrides: page.items.iter().map(convert::override_pb).collect(),
            next_page_token: page.next_page_token,
            total_size: i32::try_from(page.total_size).unwrap_or(i32::MAX),
        }))
    }

    async fn watch_grading_job(
        &self,
        request: Request<pb::WatchGradingJobRequest>,
    ) -> Result<Response<Self::WatchGradingJobStream>, Status> {
        let p = Principal::of(&request)?;
        let changes = self.app.watch_job(p, &request.get_ref().name).await?;
        Ok(Response::new(Box::pin(
            changes.map(|j| Ok(convert::watch_pb(&j))),
        )))
    }
}
