//! gRPC layer of the call service.

use salestrainer_proto::call as pb;
use salestrainer_runtime::{ApiError, Ready, app::BoxStream};
use sea_orm::DatabaseConnection;
use tonic::Status;

pub struct CallServiceApi {
    #[allow(dead_code)]
    db: Ready<DatabaseConnection>,
}

impl CallServiceApi {
    pub fn new(db: Ready<DatabaseConnection>) -> Self {
        Self { db }
    }
}

#[tonic::async_trait]
impl pb::call_service_server::CallService for CallServiceApi {
    type ConverseStream = BoxStream<pb::ConverseResponse>;
    type WatchSessionStream = BoxStream<pb::WatchSessionResponse>;

    async fn start_session(
        &self,
        _request: tonic::Request<pb::StartSessionRequest>,
    ) -> Result<tonic::Response<pb::StartSessionResponse>, Status> {
        Err(ApiError::Unimplemented("CallService.StartSession").into())
    }

    async fn get_session(
        &self,
        _request: tonic::Request<pb::GetSessionRequest>,
    ) -> Result<tonic::Response<pb::GetSessionResponse>, Status> {
        Err(ApiError::Unimplemented("CallService.GetSession").into())
    }

    async fn list_sessions(
        &self,
        _request: tonic::Request<pb::ListSessionsRequest>,
    ) -> Result<tonic::Response<pb::ListSessionsResponse>, Status> {
        Err(ApiError::Unimplemented("CallService.ListSessions").into())
    }

    async fn end_session(
        &self,
        _request: tonic::Request<pb::EndSessionRequest>,
    ) -> Result<tonic::Response<pb::EndSessionResponse>, Status> {
        Err(ApiError::Unimplemented("CallService.EndSession").into())
    }

    async fn cancel_session(
        &self,
        _request: tonic::Request<pb::CancelSessionRequest>,
    ) -> Result<tonic::Response<pb::CancelSessionResponse>, Status> {
        Err(ApiError::Unimplemented("CallService.CancelSession").into())
    }

    async fn converse(
        &self,
        _request: tonic::Request<tonic::Streaming<pb::ConverseRequest>>,
    ) -> Result<tonic::Response<Self::ConverseStream>, Status> {
        Err(ApiError::Unimplemented("CallService.Converse").into())
    }

    async fn append_transcript(
        &self,
        _request: tonic::Request<tonic::Streaming<pb::AppendTranscriptRequest>>,
    ) -> Result<tonic::Response<pb::AppendTranscriptResponse>, Status> {
        Err(ApiError::Unimplemented("CallService.AppendTranscript").into())
    }

    async fn get_transcript(
        &self,
        _request: tonic::Request<pb::GetTranscriptRequest>,
    ) -> Result<tonic::Response<pb::GetTranscriptResponse>, Status> {
        Err(ApiError::Unimplemented("CallService.GetTranscript").into())
    }

    async fn watch_session(
        &self,
        _request: tonic::Request<pb::WatchSessionRequest>,
    ) -> Result<tonic::Response<Self::WatchSessionStream>, Status> {
        Err(ApiError::Unimplemented("CallService.WatchSession").into())
    }
}
