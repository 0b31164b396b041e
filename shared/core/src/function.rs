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
        (self.app.finish(router, &platform.limits), spec)
    }
}
