//! gRPC layer of the call service: translates protobuf to store/domain calls and errors to
//! statuses. One file per group of RPCs:
//! - `sessions`: StartSession, GetSession, ListSessions, EndSession, CancelSession;
//! - `converse`: the text roleplay stream, and SendTurn (one turn per server stream);
//! - `transcript`: AppendTranscript, GetTranscript;
//! - `watch`: WatchSession.

mod converse;
mod sessions;
mod transcript;
mod watch;

use std::sync::Arc;

use salestrainer_proto::call as pb;
use salestrainer_runtime::app::BoxStream;
use tonic::{Request, Response, Status};

use crate::core::Core;

#[derive(Clone)]
pub struct CallServiceApi {
    core: Arc<Core>,
}

impl CallServiceApi {
    pub fn new(core: Arc<Core>) -> Self {
        Self { core }
    }
}

#[tonic::async_trait]
impl pb::call_service_server::CallService for CallServiceApi {
    type ConverseStream = BoxStream<pb::ConverseResponse>;
    type WatchSessionStream = BoxStream<pb::WatchSessionResponse>;
    type SendTurnStream = BoxStream<pb::SendTurnResponse>;

    async fn start_session(
        &self,
        request: Request<pb::StartSessionRequest>,
    ) -> Result<Response<pb::StartSessionResponse>, Status> {
        Ok(Response::new(sessions::start(&self.core, request).await?))
    }

    async fn get_session(
        &self,
        request: Request<pb::GetSessionRequest>,
    ) -> Result<Response<pb::GetSessionResponse>, Status> {
        Ok(Response::new(sessions::get(&self.core, request).await?))
    }

    async fn list_sessions(
        &self,
        request: Request<pb::ListSessionsRequest>,
    ) -> Result<Response<pb::ListSessionsResponse>, Status> {
        Ok(Response::new(sessions::list(&self.core, request).await?))
    }

    async fn end_session(
        &self,
        request: Request<pb::EndSessionRequest>,
    ) -> Result<Response<pb::EndSessionResponse>, Status> {
        Ok(Response::new(sessions::end(&self.core, request).await?))
    }

    async fn cancel_session(
        &self,
        request: Request<pb::CancelSessionRequest>,
    ) -> Result<Response<pb::CancelSessionResponse>, Status> {
        Ok(Response::new(sessions::cancel(&self.core, request).await?))
    }

    async fn converse(
        &self,
        request: Request<tonic::Streaming<pb::ConverseRequest>>,
    ) -> Result<Response<Self::ConverseStream>, Status> {
        Ok(Response::new(
            converse::open(self.core.clone(), request).await?,
        ))
    }

    async fn send_turn(
        &self,
        request: Request<pb::SendTurnRequest>,
    ) -> Result<Response<Self::SendTurnStream>, Status> {
        Ok(Response::new(
            converse::send_turn(self.core.clone(), request).await?,
        ))
    }

    async fn append_transcript(
        &self,
        request: Request<tonic::Streaming<pb::AppendTranscriptRequest>>,
    ) -> Result<Response<pb::AppendTranscriptResponse>, Status> {
        Ok(Response::new(
            transcript::append(&self.core, request).await?,
        ))
    }

    async fn get_transcript(
        &self,
        request: Request<pb::GetTranscriptRequest>,
    ) -> Result<Response<pb::GetTranscriptResponse>, Status> {
        Ok(Response::new(transcript::get(&self.core, request).await?))
    }

    async fn watch_session(
        &self,
        request: Request<pb::WatchSessionRequest>,
    ) -> Result<Response<Self::WatchSessionStream>, Status> {
        Ok(Response::new(
            watch::open(self.core.clone(), request).await?,
        ))
    }
}
