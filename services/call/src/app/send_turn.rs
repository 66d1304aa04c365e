//! SendTurn: one trainee turn per server stream, for browsers (gRPC-Web carries no
//! bidirectional stream). It drives the same [`Conversation`] as Converse (`roleplay`) — same
//! checks, per-trainee stream limit, persona engine, transcript writes and client_turn_id
//! idempotence — and forwards only the turn's own messages.

use std::{
    collections::HashSet,
    sync::{Arc, LazyLock, Mutex},
};

use salestrainer_proto::call as pb;
use salestrainer_runtime::{ApiError, ApiResult, Principal, app::BoxStream};
use tokio::sync::mpsc;
use tokio_stream::{StreamExt, wrappers::ReceiverStream};

use super::{
    CallApp,
    roleplay::{Conversation, MAX_CLIENT_TURN_ID},
};

/// Sessions with a SendTurn in flight in this process. Converse serialises turns by reading
/// its stream; separate SendTurn calls need this to keep one turn at a time per session.
static IN_FLIGHT: LazyLock<Mutex<HashSet<String>>> = LazyLock::new(Mutex::default);

struct TurnLock(String);

impl TurnLock {
    fn acquire(session: &str) -> ApiResult<Self> {
        let mut set = IN_FLIGHT.lock().unwrap_or_else(|p| p.into_inner());
        if !set.insert(session.to_owned()) {
            return Err(ApiError::FailedPrecondition {
                reason: "REPLY_IN_PROGRESS",
                message: "one turn at a time: wait for the persona's reply".into(),
            });
        }
        Ok(Self(session.to_owned()))
    }
}

impl Drop for TurnLock {
    fn drop(&mut self) {
        let mut set = IN_FLIGHT.lock().unwrap_or_else(|p| p.into_inner());
        set.remove(&self.0);
    }
}

/// Checks the turn and the caller, then streams the opening message (if the persona has not
/// spoken yet) and the answer to the turn.
pub async fn open(
    core: Arc<CallApp>,
    p: Principal,
    r: pb::SendTurnRequest,
) -> ApiResult<BoxStream<pb::SendTurnResponse>> {
    // Validated here too so that violations name this request's fields.
    let max = core.settings.max_turn_chars;
    if r.text.chars().count() > max {
        return Err(ApiError::invalid(
            "text",
            format!("at most {max} characters"),
        ));
    }
    if r.client_turn_id.len() > MAX_CLIENT_TURN_ID {
        return Err(ApiError::invalid(
            "client_turn_id",
            "at most 128 characters",
        ));
    }
    let text = r.text.trim().to_owned();
    if text.is_empty() && !r.client_turn_id.is_empty() {
        return Err(ApiError::invalid(
            "text",
            "must not be empty for a turn (empty text only opens the conversation)",
        ));
    }
    let (tx, rx) = mpsc::channel(64);
    let conv = Conversation::prepare(core, &p, &r.session, "session", tx).await?;
    let lock = TurnLock::acquire(conv.session_id())?;
    let turn = (!text.is_empty()).then_some(pb::TraineeTurn {
        text,
        client_turn_id: r.client_turn_id,
    });
    tokio::spawn(async move {
        let _lock = lock;
        conv.one_turn(turn).await;
    });
    Ok(Box::pin(ReceiverStream::new(rx).filter_map(|m| {
        use pb::converse_response::Payload as In;
        use pb::send_turn_response::Payload as Out;
        let payload = match m {
            Err(status) => return Some(Err(status)),
            Ok(m) => match m.payload? {
                In::Accepted(a) => Out::Accepted(a),
                In::Chunk(c) => Out::Chunk(c),
                In::Done(d) => Out::Done(d),
                In::Started(_) | In::Ended(_) => return None,
            },
        };
        Some(Ok(pb::SendTurnResponse {
            payload: Some(payload),
        }))
    })))
}
