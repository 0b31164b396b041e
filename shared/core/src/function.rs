//! A Lambda function is an endpoint group of one app: its routes (with their OpenAPI), built
//! from the platform. Lambda `main`s and the local program both go through here.

use axum::Router;
use utoipa::openapi::OpenApi;
use utoipa_axum::router::OpenApiRouter;

use crate::{App, Platform};

pub struct Function {
    /// The binary name, as `template.yaml` declares it.
    pub name: &'static str,
    pub app: App,
    pub routes: fn(&Platform) -> OpenApiRouter,
}

impl Function {
    /// The finished router (standard layers applied) and its OpenAPI paths.
    pub fn build(&self, platform: &Platform) -> (Router, OpenApi) {
        let (router, spec) = (self.routes)(platform).split_for_parts();
        let in_flight = platform.in_flight();
        (self.app.finish(router, &platform.limits, in_flight), spec)
    }

    /// Whether this is its app's first function, the one that also serves the app's whole
    /// document at `GET /openapi.json` on Lambda (and that the template routes it to).
    pub fn serves_document(&self) -> bool {
        self.document_functions().is_some()
    }

    /// The app's functions, whose routes make the document, when this function serves it.
    pub fn document_functions(&self) -> Option<&'static [Function]> {
        let functions = (self.app.functions?)();
        let first = functions.first()?;
        (first.name == self.name).then_some(functions)
    }

    /// Its OpenAPI part alone (paths and the components they name).
    pub fn openapi(&self, platform: &Platform) -> OpenApi {
        (self.routes)(platform).into_openapi()
    }
}

/// What a scheduled job or an event consumer returns: a short JSON report (logged by the
/// caller). An error makes Lambda retry the event.
pub type JobFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = crate::Result<serde_json::Value>> + Send>>;

/// A function driven by an EventBridge schedule instead of HTTP: Lambda runs it per event,
/// civic-local on a timer at the template's `rate(...)`.
pub struct Scheduled {
    /// The binary name, as `template.yaml` declares it.
    pub name: &'static str,
    pub app: App,
    pub run: fn(&Platform) -> JobFuture,
}

/// A function driven by S3 `ObjectCreated` events (the template's `Type: S3` events, with their
/// prefix and suffix filters): Lambda runs it per event, civic-local when a blob arrives through
/// its upload path ([`crate::uploads`]).
pub struct S3Function {
    /// The binary name, as `template.yaml` declares it.
    pub name: &'static str,
    pub app: App,
    pub run: fn(&Platform, aws_lambda_events::s3::S3Event) -> JobFuture,
}

/// A function driven by its app table's change feed (the template's `Type: DynamoDB` events):
/// Lambda runs it per batch of one stream shard, civic-local on the embedded store's feed.
/// An error makes the batch come again, so `run` must be exactly-once by itself.
pub struct StreamFunction {
    /// The binary name, as `template.yaml` declares it.
    pub name: &'static str,
    pub app: App,
    pub run: fn(&Platform, Vec<civic_store::stream::Change>) -> JobFuture,
}
