//! One client for any OpenAI-compatible endpoint (OpenAI, vLLM, llama.cpp, Ollama):
//! `POST {base_url}/chat/completions` with a strict `json_schema` response format.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::app::inputs::Credential;

#[derive(Clone)]
pub struct LlmClient {
    http: reqwest::Client,
    pub timeout: Duration,
    pub max_completion_tokens: u64,
}

#[derive(Debug)]
pub struct LlmSuccess {
    pub body: Value,
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    pub headers: Vec<(String, String)>,
    pub latency: Duration,
}

#[derive(Debug)]
pub enum LlmFailure {
    Http {
        status: u16,
        /// `error.code` (else `error.type`) of the body.
        code: Option<String>,
        message: String,
        headers: Vec<(String, String)>,
    },
    Timeout,
    Transport(String),
}

impl std::fmt::Display for LlmFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LlmFailure::Http {
                status,
                code,
                message,
                ..
            } => {
                write!(f, "provider answered HTTP {status}")?;
                if let Some(c) = code {
                    write!(f, " ({c})")?;
                }
                if !message.is_empty() {
                    write!(f, ": {message}")?;
                }
                Ok(())
            }
            LlmFailure::Timeout => f.write_str("provider timed out"),
            LlmFailure::Transport(e) => write!(f, "cannot reach the provider: {e}"),
        }
    }
}

impl LlmClient {
    pub fn new(timeout: Duration, max_completion_tokens: u64) -> anyhow::Result<Self> {
        salestrainer_runtime::install_crypto_provider();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(64)
            .build()?;
        Ok(Self {
            http,
            timeout,
            max_completion_tokens,
        })
    }

    /// Sends one chat completion; the timeout covers the whole exchange.
    pub async fn complete(
        &self,
        cred: &Credential,
        system: &str,
        user: &str,
        response_format: &Value,
    ) -> (Result<LlmSuccess, LlmFailure>, Duration) {
        let start = Instant::now();
        let url = format!("{}/chat/completions", cred.base_url.trim_end_matches('/'));
        let body = json!({
            "model": cred.model,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": user},
            ],
            "response_format": response_format,
            "temperature": 0,
            "max_completion_tokens": self.max_completion_tokens,
        });
        let fut = async {
            let resp = self
                .http
                .post(&url)
                .bearer_auth(&cred.api_key)
                .json(&body)
                .send()
                .await
                .map_err(transport)?;
            let status = resp.status().as_u16();
            let headers: Vec<(String, String)> = resp
                .headers()
                .iter()
                .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
                .collect();
            let bytes = resp.bytes().await.map_err(transport)?;
            let parsed: Option<Value> = serde_json::from_slice(&bytes).ok();
            if !(200..300).contains(&status) {
                let err = parsed.as_ref().and_then(|v| v.get("error"));
                let code = err
                    .and_then(|e| e.get("code").and_then(Value::as_str))
                    .or_else(|| err.and_then(|e| e.get("type").and_then(Value::as_str)))
                    .map(str::to_owned);
                let message = err
                    .and_then(|e| e.get("message").and_then(Value::as_str))
                    .unwrap_or_default()
                    .chars()
                    .take(300)
                    .collect();
                return Err(LlmFailure::Http {
                    status,
                    code,
                    message,
                    headers,
                });
            }
            let body = parsed.ok_or_else(|| LlmFailure::Http {
                status,
                code: Some("invalid_json".into()),
                message: "the response body is not JSON".into(),
                headers: headers.clone(),
            })?;
            let usage = body.get("usage");
            let n = |k: &str| usage.and_then(|u| u.get(k)).and_then(Value::as_u64);
            Ok(LlmSuccess {
                prompt_tokens: n("prompt_tokens"),
                completion_tokens: n("completion_tokens"),
                body,
                headers,
                latency: Duration::ZERO,
            })
        };
        let result = match tokio::time::timeout(self.timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(LlmFailure::Timeout),
        };
        let latency = start.elapsed();
        metrics::histogram!("grading_llm_latency_seconds").record(latency.as_secs_f64());
        (
            result.map(|mut s| {
                s.latency = latency;
                s
            }),
            latency,
        )
    }
}

fn transport(e: reqwest::Error) -> LlmFailure {
    if e.is_timeout() {
        LlmFailure::Timeout
    } else {
        // Without the URL: it is harmless, but keeps messages short and stable.
        LlmFailure::Transport(e.without_url().to_string())
    }
}

/// Rough per-million-token prices (USD) of common models; unknown models cost 0.
pub fn cost_micros(model: &str, prompt: u64, completion: u64) -> i64 {
    let m = model.to_ascii_lowercase();
    let (inp, out) = if m.contains("gpt-4o-mini") {
        (0.15, 0.60)
    } else if m.contains("gpt-4o") {
        (2.50, 10.0)
    } else if m.contains("gpt-4.1-mini") {
        (0.40, 1.60)
    } else if m.contains("gpt-4.1") {
        (2.0, 8.0)
    } else {
        (0.0, 0.0)
    };
    // micros of USD = tokens × USD-per-million-tokens.
    (prompt as f64 * inp + completion as f64 * out).round() as i64
}

/// The provider label of a base URL: its host.
pub fn provider_label(base_url: &str) -> String {
    let rest = base_url.split("://").nth(1).unwrap_or(base_url);
    rest.split(['/', ':']).next().unwrap_or(rest).to_owned()
}

/// Reads `x-ratelimit-remaining-*` (the `reset` headers matter to retries, see
/// [`crate::domain::retry`], not to the limiter's refilling buckets).
pub fn observed(headers: &[(String, String)]) -> crate::app::rate_limit::Observed {
    let h = |k: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.trim())
    };
    crate::app::rate_limit::Observed {
        remaining_requests: h("x-ratelimit-remaining-requests").and_then(|v| v.parse().ok()),
        remaining_tokens: h("x-ratelimit-remaining-tokens").and_then(|v| v.parse().ok()),
    }
}
