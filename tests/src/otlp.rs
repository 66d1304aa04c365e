//! A tiny OTLP/gRPC trace receiver for tests: it keeps, per span, the few fields a trace
//! assertion needs (trace id, span id, parent, name, `service.name`).

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    common::v1::any_value::Value,
};
use tokio::task::JoinHandle;
use tonic::{Request, Response, Status};

/// One received span, ids as lowercase hex.
#[derive(Clone, Debug)]
pub struct SpanRecord {
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    pub name: String,
    /// The `service.name` resource attribute of the exporter.
    pub service: String,
}

#[derive(Clone, Default)]
pub struct Collector {
    spans: Arc<Mutex<Vec<SpanRecord>>>,
}

impl Collector {
    /// A copy of every span received so far.
    pub fn spans(&self) -> Vec<SpanRecord> {
        self.spans.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The spans of one trace.
    pub fn trace(&self, trace_id: &str) -> Vec<SpanRecord> {
        self.spans()
            .into_iter()
            .filter(|s| s.trace_id == trace_id)
            .collect()
    }
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let mut received = Vec::new();
        for rs in request.into_inner().resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| r.attributes.iter())
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| kv.value.as_ref()?.value.as_ref())
                .map(|v| match v {
                    Value::StringValue(s) => s.clone(),
                    other => format!("{other:?}"),
                })
                .unwrap_or_default();
            for ss in rs.scope_spans {
                for span in ss.spans {
                    received.push(SpanRecord {
                        trace_id: hex::encode(&span.trace_id),
                        span_id: hex::encode(&span.span_id),
                        parent_span_id: hex::encode(&span.parent_span_id),
                        name: span.name,
                        service: service.clone(),
                    });
                }
            }
        }
        if let Ok(mut spans) = self.spans.lock() {
            spans.extend(received);
        }
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

/// A running receiver; the server task stops when this is dropped.
pub struct Receiver {
    pub addr: SocketAddr,
    pub collector: Collector,
    task: JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts a receiver on `127.0.0.1:0` (the listener is kept, so the port cannot be taken).
pub async fn start() -> std::io::Result<Receiver> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let collector = Collector::default();
    let server = tonic::transport::Server::builder()
        .add_service(TraceServiceServer::new(collector.clone()))
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener));
    let task = tokio::spawn(async move {
        if let Err(err) = server.await {
            eprintln!("OTLP receiver stopped: {err}");
        }
    });
    Ok(Receiver {
        addr,
        collector,
        task,
    })
}
