//! Streaming chat completions against any OpenAI-compatible endpoint (SSE, `stream: true`).
//!
//! Retries (exponential backoff with jitter, honouring Retry-After) happen only before the
//! first byte of the body: once a reply has started streaming to the trainee, a failure is
//! reported instead of silently restarting the reply.

use std::time::Duration;

use bytes::{Buf, BytesMut};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: &str, content: impl Into<String>) -> Self {
        Self {
            role: role.to_owned(),
            content: content.into(),
        }
    }
}

/// Where and as whom to call. The key is never logged (no Debug).
#[derive(Clone)]
pub struct Endpoint {
    pub base_url: String,
    pub api_key: String,
    pub model: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LlmError {
    /// The provider answered with this HTTP status (after retries, for retryable ones).
    Status(u16),
    /// Connection or protocol failure.
    Transport(String),
    /// No data within the timeout.
    Timeout,
    /// The stream ended before `[DONE]` or reported an error mid-way.
    Interrupted(String),
}

impl std::fmt::Display for LlmError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LlmError::Status(s) => write!(f, "LLM provider answered HTTP {s}"),
            LlmError::Transport(e) => write!(f, "LLM provider unreachable: {e}"),
            LlmError::Timeout => f.write_str("LLM provider timed out"),
            LlmError::Interrupted(e) => write!(f, "LLM reply interrupted: {e}"),
        }
    }
}

impl std::error::Error for LlmError {}

/// One piece of a streamed completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delta {
    Text(String),
    Usage { prompt: i64, completion: i64 },
}

#[derive(Clone)]
pub struct LlmClient {
    http: reqwest::Client,
    /// Longest wait for response headers, and between two body chunks.
    idle_timeout: Duration,
    max_attempts: u32,
}

impl LlmClient {
    pub fn new() -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()?;
        Ok(Self {
            http,
            idle_timeout: Duration::from_secs(30),
            max_attempts: 3,
        })
    }

    /// Starts a streaming completion; returns once the provider accepted the request.
    pub async fn stream_chat(
        &self,
        endpoint: &Endpoint,
        messages: &[ChatMessage],
    ) -> Result<ChatStream, LlmError> {
        let url = format!(
            "{}/chat/completions",
            endpoint.base_url.trim_end_matches('/')
        );
        let body = serde_json::json!({
            "model": endpoint.model,
            "messages": messages,
            "stream": true,
            "stream_options": {"include_usage": true},
        });
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let send = self
                .http
                .post(&url)
                .bearer_auth(&endpoint.api_key)
                .json(&body)
                .send();
            let outcome = match tokio::time::timeout(self.idle_timeout, send).await {
                Err(_) => Err((LlmError::Timeout, None)),
                Ok(Err(e)) => Err((LlmError::Transport(without_url(&e)), None)),
                Ok(Ok(resp)) if resp.status().is_success() => Ok(resp),
                Ok(Ok(resp)) => {
                    let status = resp.status().as_u16();
                    let retry_after = resp
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    Err((LlmError::Status(status), retry_after))
                }
            };
            match outcome {
                Ok(resp) => {
                    return Ok(ChatStream {
                        body: Box::pin(resp.bytes_stream()),
                        buf: BytesMut::new(),
                        pending: std::collections::VecDeque::new(),
                        done: false,
                        idle_timeout: self.idle_timeout,
                    });
                }
                Err((err, retry_after)) => {
                    let retryable = match &err {
                        LlmError::Status(s) => *s == 429 || *s >= 500,
                        LlmError::Transport(_) | LlmError::Timeout => true,
                        LlmError::Interrupted(_) => false,
                    };
                    if !retryable || attempt >= self.max_attempts {
                        return Err(err);
                    }
                    let backoff = Duration::from_millis(200 * 2u64.pow(attempt - 1));
                    let jitter = Duration::from_millis(rand::random_range(0..100));
                    let wait = retry_after
                        .unwrap_or(backoff + jitter)
                        .min(Duration::from_secs(5));
                    tracing::warn!(attempt, error = %err, wait_ms = wait.as_millis() as u64, "LLM request failed; retrying");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }
}

/// reqwest errors may carry the URL; keep only the kind of failure.
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_connect() {
        "connect"
    } else if e.is_timeout() {
        "timeout"
    } else if e.is_request() {
        "request"
    } else {
        "transport"
    };
    format!("{kind} error")
}

type ByteStream =
    std::pin::Pin<Box<dyn futures::Stream<Item = Result<bytes::Bytes, reqwest::Error>> + Send>>;

/// Server-sent events of one completion.
pub struct ChatStream {
    body: ByteStream,
    buf: BytesMut,
    pending: std::collections::VecDeque<Delta>,
    done: bool,
    idle_timeout: Duration,
}

impl ChatStream {
    /// The next delta; `None` after `[DONE]`. A stream that ends without `[DONE]` is an error.
    pub async fn next(&mut self) -> Option<Result<Delta, LlmError>> {
        loop {
            if let Some(d) = self.pending.pop_front() {
                return Some(Ok(d));
            }
            if self.done {
                return None;
            }
            // Complete lines already buffered.
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let line = self.buf.split_to(pos + 1);
                let line = String::from_utf8_lossy(&line);
                match parse_sse_line(line.trim_end_matches(['\n', '\r'])) {
                    Ok(SseLine::Done) => self.done = true,
                    Ok(SseLine::Deltas(ds)) => self.pending.extend(ds),
                    Ok(SseLine::Nothing) => {}
                    Err(e) => {
                        self.done = true;
                        return Some(Err(e));
                    }
                }
                continue;
            }
            match tokio::time::timeout(self.idle_timeout, self.body.next()).await {
                Err(_) => {
                    self.done = true;
                    return Some(Err(LlmError::Timeout));
                }
                Ok(None) => {
                    self.done = true;
                    if self.buf.has_remaining() {
                        // A last line without a newline may still be the terminator.
                        let rest = String::from_utf8_lossy(&self.buf).into_owned();
                        self.buf.clear();
                        if let Ok(SseLine::Done) = parse_sse_line(rest.trim()) {
                            return None;
                        }
                    }
                    return Some(Err(LlmError::Interrupted(
                        "stream ended before [DONE]".into(),
                    )));
                }
                Ok(Some(Err(e))) => {
                    self.done = true;
                    return Some(Err(LlmError::Interrupted(without_url(&e))));
                }
                Ok(Some(Ok(bytes))) => self.buf.extend_from_slice(&bytes),
            }
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum SseLine {
    Done,
    Deltas(Vec<Delta>),
    Nothing,
}

fn parse_sse_line(line: &str) -> Result<SseLine, LlmError> {
    let Some(data) = line.strip_prefix("data:") else {
        // Comments (":"), event:, id:, retry: and blank separators carry nothing for us.
        return Ok(SseLine::Nothing);
    };
    let data = data.trim();
    if data == "[DONE]" {
        return Ok(SseLine::Done);
    }
    if data.is_empty() {
        return Ok(SseLine::Nothing);
    }
    let v: serde_json::Value = serde_json::from_str(data)
        .map_err(|_| LlmError::Interrupted("malformed event data".into()))?;
    if let Some(err) = v.get("error") {
        let msg = err
            .get("message")
            .and_then(|m| m.as_str())
            .unwrap_or("provider error");
        return Err(LlmError::Interrupted(msg.chars().take(200).collect()));
    }
    let mut out = Vec::new();
    if let Some(text) = v
        .pointer("/choices/0/delta/content")
        .and_then(|c| c.as_str())
        .filter(|s| !s.is_empty())
    {
        out.push(Delta::Text(text.to_owned()));
    }
    if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
        out.push(Delta::Usage {
            prompt: u.get("prompt_tokens").and_then(|x| x.as_i64()).unwrap_or(0),
            completion: u
                .get("completion_tokens")
                .and_then(|x| x.as_i64())
                .unwrap_or(0),
        });
    }
    Ok(SseLine::Deltas(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sse_lines() {
        assert_eq!(parse_sse_line("data: [DONE]"), Ok(SseLine::Done));
        assert_eq!(parse_sse_line(": keep-alive"), Ok(SseLine::Nothing));
        assert_eq!(
            parse_sse_line(r#"data: {"choices":[{"delta":{"content":"Hi"}}]}"#),
            Ok(SseLine::Deltas(vec![Delta::Text("Hi".into())]))
        );
        assert_eq!(
            parse_sse_line(
                r#"data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2}}"#
            ),
            Ok(SseLine::Deltas(vec![Delta::Usage {
                prompt: 5,
                completion: 2
            }]))
        );
        assert!(parse_sse_line(r#"data: {"error":{"message":"overloaded"}}"#).is_err());
        assert!(parse_sse_line("data: {not json").is_err());
    }
}
