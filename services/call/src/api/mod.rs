//! The gRPC adapter of the call service: decodes a request, calls one use case in `app`, and
//! encodes its answer (`convert`); `ApiError` becomes a `Status` through the runtime. No
//! database access and no state rules here. `webhooks` is the plain-HTTP adapter of the voice
//! providers.

pub mod convert;
pub mod webhooks;

use std::sync::Arc;

use salestrainer_proto::call as pb;
use salestrainer_runtime::{
    api::{reply, request},
    app::BoxStream,
};
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status};

use crate::app::{self, CallApp};

#[derive(Clone)]
pub struct CallServiceApi {
    core: Arc<CallApp>,
}

impl CallServiceApi {
    pub fn new(core: Arc<CallApp>) -> Self {
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
        req: Request<pb::StartSessionRequest>,
    ) -> Result<Response<pb::StartSessionResponse>, Status> {
        let (p, r) = request(req)?;
        reply(
            app::sessions::start(&self.core, &p, r)
                .await
                .map(|started| pb::StartSessionResponse {
                    voice_assistant: started
                        .voice
                        .as_ref()
                        .map(|v| convert::voice_to_pb(&started.session, v)),
                    session: Some(convert::session_to_pb(&started.session)),
                }),
        )
    }

    async fn import_call(
        &self,
        req: Request<pb::ImportCallRequest>,
    ) -> Result<Response<pb::ImportCallResponse>, Status> {
        let (p, r) = request(req)?;
        reply(
            app::import::import_call(&self.core, &p, r)
                .await
                .map(|i| pb::ImportCallResponse {
                    session: Some(convert::session_to_pb(&i.session)),
                    format: app::import::format_to_pb(i.format) as i32,
                    segment_count: i32::try_from(i.segment_count).unwrap_or(i32::MAX),
                }),
        )
    }

    async fn get_session(
        &self,
        req: Request<pb::GetSessionRequest>,
    ) -> Result<Response<pb::GetSessionResponse>, Status> {
        let (p, r) = request(req)?;
        reply(
            app::sessions::get(&self.core, &p, &r.name)
                .await
                .map(|m| pb::GetSessionResponse {
                    session: Some(convert::session_to_pb(&m)),
                }),
        )
    }

    async fn list_sessions(
        &self,
        req: Request<pb::ListSessionsRequest>,
    ) -> Result<Response<pb::ListSessionsResponse>, Status> {
        let (p, r) = request(req)?;
        reply(
            app::sessions::list(&self.core, &p, r)
                .await
                .map(|page| pb::ListSessionsResponse {
                    sessions: page.sessions.iter().map(convert::session_to_pb).collect(),
                    next_page_token: page.next_page_token,
                    total_size: i32::try_from(page.total_size).unwrap_or(i32::MAX),
                }),
        )
    }

    async fn end_session(
        &self,
        req: Request<pb::EndSessionRequest>,
    ) -> Result<Response<pb::EndSessionResponse>, Status> {
        let (p, r) = request(req)?;
        reply(
            app::sessions::end(&self.core, &p, r)
                .await
                .map(|m| pb::EndSessionResponse {
                    session: Some(convert::session_to_pb(&m)),
                }),
        )
    }

    async fn cancel_session(
        &self,
        req: Request<pb::CancelSessionRequest>,
    ) -> Result<Response<pb::CancelSessionResponse>, Status> {
        let (p, r) = request(req)?;
        reply(
            app::sessions::cancel(&self.core, &p, r)
                .await
                .map(|m| pb::CancelSessionResponse {
                    session: Some(convert::session_to_pb(&m)),
                }),
        )
    }

    async fn converse(
        &self,
        req: Request<tonic::Streaming<pb::ConverseRequest>>,
    ) -> Result<Response<Self::ConverseStream>, Status> {
        let (p, inbound) = request(req)?;
        Ok(Response::new(
            app::roleplay::open(self.core.clone(), p, inbound).await?,
        ))
    }

    async fn send_turn(
        &self,
        req: Request<pb::SendTurnRequest>,
    ) -> Result<Response<Self::SendTurnStream>, Status> {
        let (p, r) = request(req)?;
        Ok(Response::new(
            app::send_turn::open(self.core.clone(), p, r).await?,
        ))
    }

    async fn append_transcript(
        &self,
        req: Request<tonic::Streaming<pb::AppendTranscriptRequest>>,
    ) -> Result<Response<pb::AppendTranscriptResponse>, Status> {
        let (p, mut inbound) = request(req)?;
        let mut append = app::transcripts::Append::new(&self.core, &p);
        while let Some(msg) = inbound.message().await.map_err(|s| {
            salestrainer_runtime::ApiError::invalid(
                "segment",
                format!("stream failed: {}", s.message()),
            )
        })? {
            append.open(&msg.session).await?;
            append
                .segment(convert::segment_from_pb(msg.segment)?)
                .await?;
        }
        let done = append.finish()?;
        Ok(Response::new(pb::AppendTranscriptResponse {
            segments_accepted: done.accepted,
            duplicates: done.duplicates,
            transcript: done.transcript,
        }))
    }

    async fn get_voice_config(
        &self,
        req: Request<pb::GetVoiceConfigRequest>,
    ) -> Result<Response<pb::GetVoiceConfigResponse>, Status> {
        let (p, r) = request(req)?;
        reply(app::voice::config(&self.core, &p, &r.name).await.map(|v| {
            pb::GetVoiceConfigResponse {
                voice_config: Some(convert::voice_config_to_pb(v)),
            }
        }))
    }

    async fn get_voice_setup(
        &self,
        req: Request<pb::GetVoiceSetupRequest>,
    ) -> Result<Response<pb::GetVoiceSetupResponse>, Status> {
        let (p, r) = request(req)?;
        reply(
            app::voice::get(&self.core, &p, &r.name)
                .await
                .map(|v| pb::GetVoiceSetupResponse {
                    voice_setup: Some(convert::voice_setup_to_pb(v)),
                }),
        )
    }

    async fn get_transcript(
        &self,
        req: Request<pb::GetTranscriptRequest>,
    ) -> Result<Response<pb::GetTranscriptResponse>, Status> {
        let (p, r) = request(req)?;
        let (m, segments) = app::transcripts::get(&self.core, &p, &r.name).await?;
        Ok(Response::new(pb::GetTranscriptResponse {
            transcript: Some(convert::transcript_to_pb(&m, &segments)),
        }))
    }

    async fn watch_session(
        &self,
        req: Request<pb::WatchSessionRequest>,
    ) -> Result<Response<Self::WatchSessionStream>, Status> {
        let (p, r) = request(req)?;
        let changes = app::watch::open(self.core.clone(), &p, &r.name, r.include_comments).await?;
        Ok(Response::new(Box::pin(
            changes.map(|m| Ok(convert::watch_message(&m))),
        )))
    }

    async fn create_comment(
        &self,
        req: Request<pb::CreateCommentRequest>,
    ) -> Result<Response<pb::CreateCommentResponse>, Status> {
        let (p, r) = request(req)?;
        reply(
            app::comments::create(&self.core, &p, r)
                .await
                .map(|c| pb::CreateCommentResponse {
                    comment: Some(convert::comment_to_pb(&c)),
                }),
        )
    }

    async fn list_comments(
        &self,
        req: Request<pb::ListCommentsRequest>,
    ) -> Result<Response<pb::ListCommentsResponse>, Status> {
        let (p, r) = request(req)?;
        reply(
            app::comments::list(&self.core, &p, r)
                .await
                .map(|page| pb::ListCommentsResponse {
                    comments: page.comments.iter().map(convert::comment_to_pb).collect(),
                    next_page_token: page.next_page_token,
                }),
        )
    }

    async fn delete_comment(
        &self,
        req: Request<pb::DeleteCommentRequest>,
    ) -> Result<Response<pb::DeleteCommentResponse>, Status> {
        let (p, r) = request(req)?;
        reply(
            app::comments::delete(&self.core, &p, r)
                .await
                .map(|()| pb::DeleteCommentResponse {}),
        )
    }
}
