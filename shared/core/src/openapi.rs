//! Each app's OpenAPI document comes from its handlers' `#[utoipa::path]` annotations, collected
//! while its routers are built; this serves it with Swagger UI (bundled, no CDN).

use axum::Router;
use utoipa::openapi::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

/// `/{app}/docs` (Swagger UI) and `/{app}/openapi.json`.
pub fn docs(app: &str, spec: OpenApi) -> Router {
    SwaggerUi::new(format!("/{app}/docs"))
        .url(format!("/{app}/openapi.json"), spec)
        .into()
}

/// Paths and methods of a spec, e.g. `("GET", "/api/lights/list")`: the routes a router serves.
pub fn operations(spec: &OpenApi) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (path, item) in &spec.paths.paths {
        let ops = [
            ("GET", &item.get),
            ("POST", &item.post),
            ("PUT", &item.put),
            ("PATCH", &item.patch),
            ("DELETE", &item.delete),
        ];
        for (method, op) in ops {
            if op.is_some() {
                out.push((method.to_owned(), path.clone()));
            }
        }
    }
    out
}

/// Registers the `bearer` (JWT) security scheme that handlers name in `security(...)`.
pub struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, spec: &mut OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("JWT")
            .build();
        spec.components
            .get_or_insert_with(Default::default)
            .add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}
