//! Converse: the text roleplay stream, and the cap on concurrent streams per trainee. The
//! same [`Conversation`] serves SendTurn (`send_turn`), one turn per server stream.
//!
//! The conversation speaks the contract's stream messages directly (each turn interleaves
//! reads, writes and streamed chunks); its only protobuf encoding is `api::convert`'s.
//!
//! Transcript consistency when a persona reply fails: the trainee turn is stored when it is
//! accepted; the persona reply is stored only once complete. A reply that fails mid-stream
//! leaves no persona segment (the trainee saw a clear UNAVAILABLE status with the partial text
//! discarded), and the conversation thread is not advanced. Resending the turn with the same
//! `client_turn_id` (on a new stream) answers it without storing it twice.

use std::{
    collections::HashMap,
    pin::pin,
    sync::{Arc, Mutex},
};

use futures::future::maybe_done;

use salestrainer_proto::call as pb;
use salestrainer_runtime::{ApiError, ApiResult, Principal, app::BoxStream, time::now_us};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};

use super::{
    CallApp,
    llm_persona::{ChatMessage, ChatStream, Delta, Endpoint, LlmError},
    load_visible, member_name,
    persona_engine::{PersonaSetup, Thread},
    write_error,
};
use crate::{
    api::convert::session_to_pb,
    domain::{Speaker, persona::chunks},
    store::{self, Ending, NewTurn, TurnUsage, segment, session},
};

/// The longest `client_turn_id` a turn may carry (Converse and SendTurn).
pub(super) const MAX_CLIENT_TURN_ID: usize = 128;

pub(super) type Tx = mpsc::Sender<Result<pb::ConverseResponse, Status>>;

/// The client went away; stop quietly.
struct Gone;

async fn next_message(
    inbound: &mut Option<&mut Streaming<pb::ConverseRequest>>,
) -> Result<Option<pb::ConverseRequest>, Status> {
    match inbound {
        Some(s) => s.message().await,
        None => std::future::pending().await,
    }
}

pub async fn open(
    core: Arc<CallApp>,
    p: Principal,
    mut inbound: Streaming<pb::ConverseRequest>,
) -> ApiResult<BoxStream<pb::ConverseResponse>> {
    let first = inbound
        .message()
        .await
        .map_err(|s| ApiError::invalid("start", format!("stream failed: {}", s.message())))?
        .ok_or_else(|| ApiError::invalid("start", "the stream closed before start"))?;
    let Some(pb::converse_request::Payload::Start(start)) = first.payload else {
        return Err(ApiError::invalid(
            "start",
            "the first message must be start",
        ));
    };
    let (tx, rx) = mpsc::channel(64);
    let conv = Conversation::prepare(core, &p, &start.session, "start.session", tx).await?;
    tokio::spawn(conv.run(inbound));
    Ok(Box::pin(ReceiverStream::new(rx)))
}

pub(super) struct Conversation {
    core: Arc<CallApp>,
    session: session::Model,
    setup: PersonaSetup,
    endpoint: Option<Endpoint>,
    tx: Tx,
    _permit: StreamPermit,
}

/// The end_reason_detail of a drill that reached its turn cap.
const DRILL_DONE: &str = "drill_max_turns";

enum Next {
    Continue,
    End,
    /// A drill reached its turn cap (`drill_max_turns`): the persona ends the call.
    DrillDone,
}

impl Conversation {
    /// Checks that the caller may converse in `session` now and gathers its persona setup.
    /// Shared with SendTurn, so both hold the same checks and the same per-trainee limit.
    pub(super) async fn prepare(
        core: Arc<CallApp>,
        p: &Principal,
        session: &str,
        field: &str,
        tx: Tx,
    ) -> ApiResult<Self> {
        let m = load_visible(&core, p, session, field).await?;
        if p.is_service() || m.trainee != member_name(p) {
            return Err(ApiError::PermissionDenied(
                "only the session's trainee can converse in it".into(),
            ));
        }
        if m.mode != pb::SessionMode::Text as i32 {
            return Err(ApiError::FailedPrecondition {
                reason: "NOT_A_TEXT_SESSION",
                message: "Converse is for TEXT sessions; voice sessions use the voice provider"
                    .into(),
            });
        }
        if !store::state_of(m.state).is_some_and(|s| s.accepts_transcript()) {
            return Err(write_error(store::WriteError::NotActive(m.state)));
        }
        let permit = core.streams.acquire(&m.trainee)?;
        let setup = core
            .persona_setup(&m.organization, &m.scenario)
            .await?
            .for_drill(&m.drill_objection);
        let endpoint = core.llm_endpoint(&m.organization).await?;
        Ok(Self {
            core,
            session: m,
            setup,
            endpoint,
            tx,
            _permit: permit,
        })
    }

    /// The session's id.
    pub(super) fn session_id(&self) -> &str {
        &self.session.id
    }

    /// SendTurn's whole conversation: the opening message if the persona has not spoken yet,
    /// then the answer to `turn` (if any). A status ends the stream; a gone client just stops.
    pub(super) async fn one_turn(self, turn: Option<pb::TraineeTurn>) {
        let result: Result<(), Result<Status, Gone>> = async {
            let mut thread = self.load_thread().await.map_err(|e| Ok(e.into()))?;
            if thread.answered() == 0 {
                thread = self.greet().await?;
            }
            if let Some(turn) = turn
                && let Next::DrillDone = self.turn(&mut thread, turn, None).await?
            {
                self.end(pb::EndReason::PersonaEnded, DRILL_DONE).await?;
            }
            Ok(())
        }
        .await;
        if let Err(Ok(status)) = result {
            let _ = self.tx.send(Err(status)).await;
        }
    }

    async fn run(self, mut inbound: Streaming<pb::ConverseRequest>) {
        let result = self.run_inner(&mut inbound).await;
        match result {
            Ok(()) | Err(Err(Gone)) => {}
            Err(Ok(status)) => {
                let _ = self.tx.send(Err(status)).await;
            }
        }
    }

    /// Err(Ok(status)) ends the stream with that status; Err(Err(Gone)) just stops.
    async fn run_inner(
        &self,
        inbound: &mut Streaming<pb::ConverseRequest>,
    ) -> Result<(), Result<Status, Gone>> {
        self.send(pb::converse_response::Payload::Started(
            pb::ConverseStarted {
                session: Some(session_to_pb(&self.session)),
            },
        ))
        .await
        .map_err(Err)?;
        let mut thread = self.load_thread().await.map_err(|e| Ok(e.into()))?;
        if thread.answered() == 0 {
            thread = self.greet().await?;
        }
        let idle = self.core.settings.idle_timeout();
        loop {
            let msg = tokio::select! {
                () = self.core.shutdown.cancelled() => {
                    return Err(Ok(Status::unavailable("the server is shutting down; reconnect to continue")));
                }
                m = tokio::time::timeout(idle, inbound.message()) => m,
            };
            let msg = match msg {
                // Nothing from the trainee for the idle timeout: the call is over.
                Err(_) => {
                    return self.end(pb::EndReason::Error, "idle timeout").await;
                }
                Ok(Err(_)) => return Err(Err(Gone)),
                // The client closed its side: that ends the session.
                Ok(Ok(None)) => return self.end(pb::EndReason::TraineeEnded, "").await,
                Ok(Ok(Some(m))) => m,
            };
            match msg.payload {
                Some(pb::converse_request::Payload::Turn(turn)) => {
                    match self.turn(&mut thread, turn, Some(&mut *inbound)).await? {
                        Next::Continue => {}
                        Next::End => return self.end(pb::EndReason::TraineeEnded, "").await,
                        Next::DrillDone => {
                            return self.end(pb::EndReason::PersonaEnded, DRILL_DONE).await;
                        }
                    }
                }
                Some(pb::converse_request::Payload::End(_)) => {
                    return self.end(pb::EndReason::TraineeEnded, "").await;
                }
                Some(pb::converse_request::Payload::Start(_)) => {
                    return Err(Ok(ApiError::invalid(
                        "start",
                        "start is only the first message",
                    )
                    .into()));
                }
                None => return Err(Ok(ApiError::invalid("payload", "empty message").into())),
            }
        }
    }

    async fn send(&self, payload: pb::converse_response::Payload) -> Result<(), Gone> {
        self.tx
            .send(Ok(pb::ConverseResponse {
                payload: Some(payload),
            }))
            .await
            .map_err(|_| Gone)
    }

    fn offset_ms(&self) -> i64 {
        ((now_us() - self.session.start_us) / 1000).max(0)
    }

    async fn load_thread(&self) -> ApiResult<Thread> {
        let llm = self.endpoint.is_some();
        // A session with nothing said yet (its counter, read by `prepare`, moves with every
        // stored segment) needs neither its transcript nor a cached thread: the greeting of a
        // new session waits on no read but its own row's.
        if self.session.segment_count == 0 {
            return Ok(Thread::rebuild(&self.setup, llm, &[]));
        }
        let segs = store::segments(self.core.db()?, &self.session.id).await?;
        let persona_turns = segs
            .iter()
            .filter(|s| store::speaker_from_i32(s.speaker) == Speaker::Persona)
            .count();
        if let Some(t) = self.core.threads.get(&self.session.id).await
            && t.answered() == persona_turns
            && t.is_llm() == llm
        {
            return Ok(t);
        }
        Ok(Thread::rebuild(&self.setup, llm, &segs))
    }

    async fn greet(&self) -> Result<Thread, Result<Status, Gone>> {
        let greeting = self.setup.first_message();
        let turn_id = format!("persona-{}", uuid::Uuid::now_v7());
        self.stream_text(&turn_id, &greeting).await.map_err(Err)?;
        let at = self.offset_ms();
        self.store_turn(NewTurn {
            segment_id: turn_id.clone(),
            speaker: Speaker::Persona,
            text: greeting.clone(),
            start_ms: at,
            end_ms: at,
            reply_to: None,
            usage: None,
        })
        .await?;
        let thread = Thread::after_greeting(&self.setup, self.endpoint.is_some(), &greeting);
        self.core.threads.put(&self.session.id, &thread).await;
        self.send(pb::converse_response::Payload::Done(pb::PersonaReplyDone {
            turn_id,
            full_text: greeting,
            client_turn_id: String::new(),
            agreed_next_step: false,
        }))
        .await
        .map_err(Err)?;
        Ok(thread)
    }

    async fn store_turn(&self, turn: NewTurn) -> Result<bool, Result<Status, Gone>> {
        self.store_turns(vec![turn]).await
    }

    async fn store_turns(&self, turns: Vec<NewTurn>) -> Result<bool, Result<Status, Gone>> {
        let db = self.core.db().map_err(|e| Ok(e.into()))?;
        store::append_turns(
            db,
            turns,
            &self.session.id,
            &self.core.settings.transcript_limits(),
        )
        .await
        .map_err(|e| Ok(write_error(e).into()))
    }

    async fn stream_text(&self, turn_id: &str, text: &str) -> Result<(), Gone> {
        for (i, c) in chunks(text).into_iter().enumerate() {
            self.send(pb::converse_response::Payload::Chunk(
                pb::PersonaReplyChunk {
                    turn_id: turn_id.to_owned(),
                    text: c,
                    index: i as i32,
                },
            ))
            .await?;
        }
        Ok(())
    }

    async fn turn(
        &self,
        thread: &mut Thread,
        turn: pb::TraineeTurn,
        inbound: Option<&mut Streaming<pb::ConverseRequest>>,
    ) -> Result<Next, Result<Status, Gone>> {
        let text = turn.text.trim().to_owned();
        let max = self.core.settings.max_turn_chars;
        if text.is_empty() {
            return Err(Ok(
                ApiError::invalid("turn.text", "must not be empty").into()
            ));
        }
        if turn.text.chars().count() > max {
            return Err(Ok(ApiError::invalid(
                "turn.text",
                format!("at most {max} characters"),
            )
            .into()));
        }
        if turn.client_turn_id.len() > MAX_CLIENT_TURN_ID {
            return Err(Ok(ApiError::invalid(
                "turn.client_turn_id",
                "at most 128 characters",
            )
            .into()));
        }
        let segment_id = if turn.client_turn_id.is_empty() {
            format!("trainee-{}", uuid::Uuid::now_v7())
        } else {
            format!("trainee-{}", turn.client_turn_id)
        };
        let at = self.offset_ms();
        let trainee_turn = NewTurn {
            segment_id: segment_id.clone(),
            speaker: Speaker::Trainee,
            text: text.clone(),
            start_ms: at,
            end_ms: at,
            reply_to: None,
            usage: None,
        };
        let reply_id = format!("persona-{}", uuid::Uuid::now_v7());
        // The scripted reply is known at once: the turn and its reply go in one transaction
        // (one write per turn), and the reply is streamed after it is stored.
        let scripted = match &*thread {
            Thread::Scripted { persona, answered } => {
                let mut persona = persona.clone();
                let r = persona.reply(&text);
                Some((r, persona, *answered))
            }
            Thread::Llm { .. } => None,
        };
        let persona_turn = |reply: &str, usage: Option<TurnUsage>, start_ms: i64| NewTurn {
            segment_id: reply_id.clone(),
            speaker: Speaker::Persona,
            text: reply.to_owned(),
            start_ms,
            end_ms: self.offset_ms(),
            reply_to: Some(segment_id.clone()),
            usage,
        };
        let mut turns = vec![trainee_turn];
        if let Some((r, _, _)) = &scripted {
            turns.push(persona_turn(&r.text, None, at));
        }
        // An LLM reply is requested while the turn is being stored: the trainee waits for the
        // slower of the write and the provider, not for both one after the other. A refused
        // or already answered turn drops the request unread.
        let llm_request = match (&*thread, &self.endpoint) {
            (Thread::Llm { messages, .. }, Some(endpoint)) if scripted.is_none() => {
                let mut messages = messages.clone();
                messages.push(ChatMessage::new("user", text.clone()));
                Some((endpoint, messages))
            }
            _ => None,
        };
        let llm = &self.core.llm;
        let mut opening = pin!(maybe_done(async move {
            let (endpoint, messages) = llm_request?;
            let opened = llm.stream_chat(endpoint, &messages).await;
            Some((endpoint, messages, opened))
        }));
        let fresh = {
            let mut store = pin!(self.store_turns(turns));
            let mut opened = false;
            loop {
                tokio::select! {
                    stored = &mut store => break stored,
                    () = &mut opening, if !opened => opened = true,
                }
            }
        }?;
        self.send(pb::converse_response::Payload::Accepted(pb::TurnAccepted {
            client_turn_id: turn.client_turn_id.clone(),
            segment_id: segment_id.clone(),
        }))
        .await
        .map_err(Err)?;
        if !fresh {
            // A resent turn: if it was answered, repeat the stored answer; else answer it now.
            if let Some(reply) = self.stored_reply(&segment_id).await? {
                self.send(pb::converse_response::Payload::Done(pb::PersonaReplyDone {
                    turn_id: reply.segment_id,
                    full_text: reply.text,
                    client_turn_id: turn.client_turn_id,
                    agreed_next_step: false,
                }))
                .await
                .map_err(Err)?;
                return Ok(Next::Continue);
            }
            if let Some((r, _, _)) = &scripted {
                self.store_turn(persona_turn(&r.text, None, at)).await?;
            }
        }
        let (reply, next_thread, agreed, next) = match scripted {
            Some((r, persona, answered)) => {
                self.stream_text(&reply_id, &r.text).await.map_err(Err)?;
                let next = Thread::Scripted {
                    persona,
                    answered: answered + 1,
                };
                (r.text, next, r.agreed_next_step, Next::Continue)
            }
            None => {
                let reply_start = self.offset_ms();
                opening.as_mut().await;
                let Some((endpoint, mut messages, opened)) =
                    opening.as_mut().take_output().flatten()
                else {
                    return Err(Ok(Status::internal(
                        "conversation thread does not match its engine",
                    )));
                };
                let (reply, usage, next) = self
                    .stream_llm(endpoint, opened, &reply_id, inbound)
                    .await?;
                // Stored only once complete: a failed stream leaves no half reply.
                self.store_turn(persona_turn(&reply, Some(usage), reply_start))
                    .await?;
                messages.push(ChatMessage::new("assistant", reply.clone()));
                let next_thread = Thread::Llm {
                    messages,
                    answered: thread.answered() + 1,
                };
                (reply, next_thread, false, next)
            }
        };
        *thread = next_thread;
        self.core.threads.put(&self.session.id, thread).await;
        self.send(pb::converse_response::Payload::Done(pb::PersonaReplyDone {
            turn_id: reply_id,
            full_text: reply,
            client_turn_id: turn.client_turn_id,
            agreed_next_step: agreed,
        }))
        .await
        .map_err(Err)?;
        if matches!(next, Next::Continue) && self.drill_over(thread) {
            return Ok(Next::DrillDone);
        }
        Ok(next)
    }

    /// A drill is short: over once the persona answered `drill_max_turns` trainee turns
    /// (its persona turns count the opening too).
    fn drill_over(&self, thread: &Thread) -> bool {
        !self.session.drill_evaluation.is_empty()
            && thread.answered().saturating_sub(1) as u64 >= self.core.settings.drill_max_turns()
    }

    async fn stored_reply(
        &self,
        trainee_segment: &str,
    ) -> Result<Option<segment::Model>, Result<Status, Gone>> {
        let db = self.core.db().map_err(|e| Ok(e.into()))?;
        store::reply_to(db, &self.session.id, trainee_segment)
            .await
            .map_err(|e| Ok(ApiError::from(e).into()))
    }

    /// Streams one LLM reply to the trainee. A turn arriving meanwhile is FAILED_PRECONDITION
    /// (one turn at a time); `end` or a half-close ends the session after the reply.
    async fn stream_llm(
        &self,
        endpoint: &Endpoint,
        opened: Result<ChatStream, LlmError>,
        reply_id: &str,
        mut inbound: Option<&mut Streaming<pb::ConverseRequest>>,
    ) -> Result<(String, TurnUsage, Next), Result<Status, Gone>> {
        let failed = |e: LlmError| {
            tracing::warn!(session = %self.session.id, error = %e, "persona reply failed");
            Ok(Status::unavailable(format!(
                "the persona's reply failed ({e}); your turn was recorded and no partial reply \
                 was kept: reconnect and resend it with the same client_turn_id"
            )))
        };
        let mut stream = opened.map_err(failed)?;
        let mut text = String::new();
        let mut usage = TurnUsage {
            model: endpoint.model.clone(),
            ..Default::default()
        };
        let mut index = 0;
        let mut next = Next::Continue;
        // SendTurn has no inbound stream: nothing can arrive while its reply streams.
        let mut inbound_open = inbound.is_some();
        loop {
            tokio::select! {
                d = stream.next() => match d {
                    None => break,
                    Some(Err(e)) => return Err(failed(e)),
                    Some(Ok(Delta::Usage { prompt, completion })) => {
                        usage.prompt_tokens = prompt;
                        usage.completion_tokens = completion;
                    }
                    Some(Ok(Delta::Text(t))) => {
                        text.push_str(&t);
                        self.send(pb::converse_response::Payload::Chunk(pb::PersonaReplyChunk {
                            turn_id: reply_id.to_owned(),
                            text: t,
                            index,
                        }))
                        .await
                        .map_err(Err)?;
                        index += 1;
                    }
                },
                m = next_message(&mut inbound), if inbound_open => match m {
                    Err(_) => return Err(Err(Gone)),
                    Ok(None) => {
                        inbound_open = false;
                        next = Next::End;
                    }
                    Ok(Some(req)) => match req.payload {
                        Some(pb::converse_request::Payload::End(_)) => {
                            inbound_open = false;
                            next = Next::End;
                        }
                        _ => {
                            return Err(Ok(ApiError::FailedPrecondition {
                                reason: "REPLY_IN_PROGRESS",
                                message: "one turn at a time: wait for the persona's reply".into(),
                            }
                            .into()));
                        }
                    },
                },
            }
        }
        if text.trim().is_empty() {
            return Err(failed(LlmError::Interrupted("empty reply".into())));
        }
        Ok((text, usage, next))
    }

    async fn end(&self, reason: pb::EndReason, detail: &str) -> Result<(), Result<Status, Gone>> {
        let ended = self
            .core
            .end(
                &self.session.id,
                Ending {
                    state: pb::SessionState::Ended as i32,
                    reason: reason as i32,
                    detail: detail.to_owned(),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| Ok(e.into()))?;
        let end_reason = ended.session.end_reason;
        let _ = self
            .send(pb::converse_response::Payload::Ended(
                pb::SessionEndedNotice {
                    session: Some(session_to_pb(&ended.session)),
                    end_reason,
                },
            ))
            .await;
        Ok(())
    }
}

/// Caps concurrent streams per key (per process): Converse per trainee, WatchSession per
/// caller.
pub struct StreamLimiter {
    max: usize,
    /// What is counted, for the error, e.g. "concurrent conversations per trainee (...)".
    what: &'static str,
    open: Arc<Mutex<HashMap<String, usize>>>,
}

pub struct StreamPermit {
    key: String,
    open: Arc<Mutex<HashMap<String, usize>>>,
}

impl StreamLimiter {
    pub fn new(max: usize, what: &'static str) -> Self {
        Self {
            max,
            what,
            open: Arc::default(),
        }
    }

    pub fn acquire(&self, trainee: &str) -> ApiResult<StreamPermit> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(trainee.to_owned()).or_insert(0);
        if *n >= self.max {
            return Err(ApiError::ResourceExhausted(format!(
                "at most {} {}",
                self.max, self.what
            )));
        }
        *n += 1;
        Ok(StreamPermit {
            key: trainee.to_owned(),
            open: self.open.clone(),
        })
    }
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                // No entry outlives its last stream.
                open.remove(&self.key);
            }
        }
    }
}
