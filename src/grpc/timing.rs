//! Per-method gRPC latency (`ecca_rpc_duration_seconds{method}`), until the response headers.
//! The method label is one of the API's own (from its descriptor) or "other", so no caller can
//! add label values.
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::LazyLock;
use std::task::{Context, Poll};
use std::time::Instant;

use prost::Message;

/// `/package.Service/Method` -> `Method` for every method of ecca's API.
static METHODS: LazyLock<HashMap<String, String>> = LazyLock::new(|| {
    let mut out = HashMap::new();
    let Ok(set) = prost_types::FileDescriptorSet::decode(crate::proto::FILE_DESCRIPTOR_SET) else {
        return out;
    };
    for file in set.file {
        let package = file.package.unwrap_or_default();
        for service in file.service {
            let service_name = service.name.unwrap_or_default();
            for method in service.method {
                let name = method.name.unwrap_or_default();
                out.insert(format!("/{package}.{service_name}/{name}"), name);
            }
        }
    }
    out
});

/// Times every call.
#[derive(Clone, Copy, Debug, Default)]
pub struct TimingLayer;

impl<S> tower::Layer<S> for TimingLayer {
    type Service = Timing<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Timing { inner }
    }
}

#[derive(Clone, Debug)]
pub struct Timing<S> {
    inner: S,
}

impl<S, B, R> tower::Service<http::Request<B>> for Timing<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<
        Box<dyn std::future::Future<Output = std::result::Result<Self::Response, S::Error>> + Send>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<std::result::Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let method = crate::metrics::get().map(|_| {
            METHODS
                .get(req.uri().path())
                .map_or("other", String::as_str)
        });
        let started = Instant::now();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let resp = fut.await;
            if let (Some(method), Some(m)) = (method, crate::metrics::get()) {
                m.rpc_duration
                    .with_label_values(&[method])
                    .observe(started.elapsed().as_secs_f64());
            }
            resp
        })
    }
}
