//! The analytics service's gRPC API: each method takes the caller and the message out of the
//! request, calls one use case in [`crate::app`] and wraps its answer; errors become statuses
//! by the runtime's `api` edges. Checks, authorization and caching live in the use cases.

use std::sync::Arc;

use salestrainer_proto::analytics as pb;
use salestrainer_runtime::api as edge;
use tonic::{Request, Response, Status};

use crate::app::{
    AnalyticsApp, certifications, coaching, drills, ingest, progress, summaries, usage,
};

pub struct AnalyticsServiceApi {
    app: Arc<AnalyticsApp>,
}

impl AnalyticsServiceApi {
    pub fn new(app: Arc<AnalyticsApp>) -> Self {
        Self { app }
    }
}

#[tonic::async_trait]
impl pb::analytics_service_server::AnalyticsService for AnalyticsServiceApi {
    async fn get_organization_summary(
        &self,
        request: Request<pb::GetOrganizationSummaryRequest>,
    ) -> Result<Response<pb::GetOrganizationSummaryResponse>, Status> {
        let (principal, req) = edge::request(request)?;
        edge::reply(summaries::get_organization_summary(&self.app, &principal, req).await)
    }

    async fn get_trainee_summary(
        &self,
        request: Request<pb::GetTraineeSummaryRequest>,
    ) -> Result<Response<pb::GetTraineeSummaryResponse>, Status> {
        let (principal, req) = edge::request(request)?;
        edge::reply(summaries::get_trainee_summary(&self.app, &principal, req).await)
    }

    async fn get_drill_impact(
        &self,
        request: Request<pb::GetDrillImpactRequest>,
    ) -> Result<Response<pb::GetDrillImpactResponse>, Status> {
        let (principal, req) = edge::request(request)?;
        edge::reply(drills::get_drill_impact(&self.app, &principal, req).await)
    }

    async fn get_coaching_activity(
        &self,
        request: Request<pb::GetCoachingActivityRequest>,
    ) -> Result<Response<pb::GetCoachingActivityResponse>, Status> {
        let (principal, req) = edge::request(request)?;
        edge::reply(coaching::get_coaching_activity(&self.app, &principal, req).await)
    }

    async fn get_leaderboard(
        &self,
        request: Request<pb::GetLeaderboardRequest>,
    ) -> Result<Response<pb::GetLeaderboardResponse>, Status> {
        let (principal, req) = edge::request(request)?;
        edge::reply(summaries::get_leaderboard(&self.app, &principal, req).await)
    }

    async fn get_assignment_progress(
        &self,
        request: Request<pb::GetAssignmentProgressRequest>,
    ) -> Result<Response<pb::GetAssignmentProgressResponse>, Status> {
        let (principal, req) = edge::request(request)?;
        edge::reply(progress::get_assignment_progress(&self.app, &principal, req).await)
    }

    async fn get_usage(
        &self,
        request: Request<pb::GetUsageRequest>,
    ) -> Result<Response<pb::GetUsageResponse>, Status> {
        let (principal, req) = edge::request(request)?;
        edge::reply(usage::get_usage(&self.app, &principal, req).await)
    }

    async fn ingest_events(
        &self,
        request: Request<pb::IngestEventsRequest>,
    ) -> Result<Response<pb::IngestEventsResponse>, Status> {
        let (principal, req) = edge::request(request)?;
        edge::reply(ingest::ingest_events(&self.app, &principal, req).await)
    }

    async fn get_certification_progress(
        &self,
        request: Request<pb::GetCertificationProgressRequest>,
    ) -> Result<Response<pb::GetCertificationProgressResponse>, Status> {
        let (principal, req) = edge::request(request)?;
        edge::reply(certifications::get_certification_progress(&self.app, &principal, req).await)
    }

    async fn list_trainee_certifications(
        &self,
        request: Request<pb::ListTraineeCertificationsRequest>,
    ) -> Result<Response<pb::ListTraineeCertificationsResponse>, Status> {
        let (principal, req) = edge::request(request)?;
        edge::reply(certifications::list_trainee_certifications(&self.app, &principal, req).await)
    }

    async fn revoke_certification_award(
        &self,
        request: Request<pb::RevokeCertificationAwardRequest>,
    ) -> Result<Response<pb::RevokeCertificationAwardResponse>, Status> {
        let (principal, req) = edge::request(request)?;
        edge::reply(certifications::revoke_certification_award(&self.app, &principal, req).await)
    }
}
