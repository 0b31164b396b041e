//! The template's routes onto the linked functions: [`check`] that the two agree, and
//! [`router`] that serves every HttpApi route at `/{app}{path}` as API Gateway would.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use anyhow::{Context, Result};
use axum::Router;
use axum::routing::{MethodFilter, any_service, on_service};
use civic_core::{Platform, openapi};

use crate::template::{self, FunctionDef};
use crate::{preflight, registry};

/// Disagreements between the template and the linked routers; empty when they agree.
pub fn check(defs: &[FunctionDef], platform: &Platform) -> Vec<String> {
    let mut problems = Vec::new();
    for def in defs {
        if let Some(job) = registry::find_job(&def.binary) {
            if def.schedules.is_empty() || !def.routes.is_empty() {
                problems.push(format!(
                    "{}: scheduled function {} needs Schedule events and no HttpApi events",
                    def.id, job.name
                ));
            }
            for expr in def.schedules.iter().filter(|e| template::rate(e).is_none()) {
                problems.push(format!("{}: schedule {expr:?} is not supported locally (use rate(N minutes|hours|days))", def.id));
            }
            continue;
        }
        if registry::find_iot(&def.binary).is_some() {
            if !def.routes.is_empty() || !def.schedules.is_empty() {
                problems.push(format!(
                    "{}: topic-rule consumer {} takes no HttpApi or Schedule events (an AWS::IoT::TopicRule invokes it)",
                    def.id, def.binary
                ));
            }
            continue;
        }
        if registry::find_live_auth(&def.binary).is_some() {
            let events = def.routes.len() + def.schedules.len() + def.s3.len() + def.streams.len();
            if events > 0 {
                problems.push(format!(
                    "{}: live authorizer {} takes no events (an AWS::IoT::Authorizer invokes it)",
                    def.id, def.binary
                ));
            }
            continue;
        }
        if registry::find_stream(&def.binary).is_some() {
            if def.streams.is_empty() || !def.routes.is_empty() {
                problems.push(format!(
                    "{}: stream function {} needs a DynamoDB event and no HttpApi events",
                    def.id, def.binary
                ));
            }
            continue;
        }
        if registry::find_s3(&def.binary).is_some() {
            if def.s3.is_empty() || !def.routes.is_empty() {
                problems.push(format!(
                    "{}: S3 function {} needs S3 events and no HttpApi events",
                    def.id, def.binary
                ));
            }
            continue;
        }
        let Some(f) = registry::find(&def.binary) else {
            problems.push(format!(
                "{}: binary {} is not linked into civic-local",
                def.id, def.binary
            ));
            continue;
        };
        let (_, spec) = f.build(platform);
        let mut ops = openapi::operations(&spec);
        // On Lambda the app's first function also serves the app's document (civic_runtime).
        if f.serves_document() {
            ops.push(("GET".into(), openapi::DOCUMENT_PATH.into()));
        }
        for (method, path) in &ops {
            if !def.routes.iter().any(|r| r.covers(method, path)) {
                problems.push(format!(
                    "{}: {method} {path} is served by {} but no HttpApi event routes it",
                    def.id, f.name
                ));
            }
        }
        for r in &def.routes {
            if !ops.iter().any(|(m, p)| r.covers(m, p)) {
                problems.push(format!(
                    "{}: HttpApi event {} {} reaches no route of {}",
                    def.id, r.method, r.path, f.name
                ));
            }
        }
    }
    let names = registry::all()
        .map(|f| f.name)
        .chain(registry::jobs().map(|j| j.name))
        .chain(registry::s3_functions().map(|f| f.name))
        .chain(registry::iot_functions().map(|f| f.name))
        .chain(registry::stream_functions().map(|f| f.name))
        .map(String::from)
        .chain(registry::LIVE.iter().map(|s| registry::live_auth_binary(s)));
    for name in names.filter(|n| !defs.iter().any(|d| d.binary == *n)) {
        problems.push(format!("function {name} is not declared in the template"));
    }
    for functions in registry::APPS {
        if let Err(e) = openapi::document(functions, platform) {
            problems.push(format!("{}'s OpenAPI document: {e}", functions[0].app.name));
        }
    }
    problems
}

/// The platform's router: every template route at `/{app}{path}`, plus `/{app}/docs`.
pub fn router(defs: &[FunctionDef], platform: &Platform) -> Result<Router> {
    let problems = check(defs, platform);
    if !problems.is_empty() {
        return Err(preflight::disagreement(&problems));
    }
    let mut apps: BTreeMap<&str, (Router, &[civic_core::Function])> = BTreeMap::new();
    for def in defs {
        let Some(f) = registry::find(&def.binary) else {
            continue; // a scheduled function: no routes
        };
        let (svc, _) = f.build(platform);
        let svc = tower::ServiceBuilder::new()
            .map_request(move |req| as_lambda_sees_it(req, f.app.name))
            .service(svc);
        // Unknown paths under the app get its own 404 body, from its first function.
        let (router, _) = apps.entry(f.app.name).or_insert_with(|| {
            (
                Router::new().fallback_service(svc.clone()),
                registry::app_functions(f.app.name),
            )
        });
        // `/openapi.json` is the app's document, served with its docs below.
        for r in def
            .routes
            .iter()
            .filter(|r| r.path != openapi::DOCUMENT_PATH)
        {
            let method = match r.method.as_str() {
                "ANY" => None,
                m => Some(
                    MethodFilter::try_from(http_method(m)?).map_err(|e| anyhow::anyhow!("{e}"))?,
                ),
            };
            let route = match method {
                None => any_service(svc.clone()),
                Some(m) => on_service(m, svc.clone()),
            };
            *router = std::mem::take(router).route(&r.axum_path(), route);
        }
    }
    let (mut docs, mut api) = (Router::new(), Router::new());
    for (app, (router, functions)) in apps {
        api = api.nest_service(&format!("/{app}"), router);
        // The same document Lambda serves (civic_runtime::http_router); check() vouched for it.
        let mut spec = openapi::document(functions, platform).map_err(anyhow::Error::msg)?;
        // Lambda serves each app at its API's root; here it is mounted at `/{app}`, which
        // Swagger UI's "Try it out" and generated clients must prefix to every path.
        spec.servers = Some(vec![utoipa::openapi::server::Server::new(format!(
            "/{app}"
        ))]);
        docs = docs.merge(openapi::docs(app, spec));
    }
    let api = api.fallback(|| async {
        (
            axum::http::StatusCode::NOT_FOUND,
            axum::Json(serde_json::json!({"detail": "Not found"})),
        )
    });
    // Swagger UI lives at `docs/` with its slash; only the API paths are slash-insensitive.
    Ok(docs.fallback_service(civic_core::layers::into_service(api)))
}

/// API Gateway hands a function the request alone: drop what local routing added to it (its
/// path parameters above all, which the function's router captures again), keeping the
/// caller's address for the rate limiter. The `/{app}` prefix it stripped is passed on as
/// `X-Forwarded-Prefix`, as a reverse proxy would, for apps that print their own URLs.
fn as_lambda_sees_it(req: axum::extract::Request, app: &str) -> axum::extract::Request {
    let (mut parts, body) = req.into_parts();
    if let Ok(prefix) = axum::http::HeaderValue::from_str(&format!("/{app}")) {
        parts.headers.insert("x-forwarded-prefix", prefix);
    }
    let caller = parts
        .extensions
        .remove::<axum::extract::ConnectInfo<SocketAddr>>();
    parts.extensions = Default::default();
    if let Some(c) = caller {
        parts.extensions.insert(c);
    }
    axum::extract::Request::from_parts(parts, body)
}

fn http_method(m: &str) -> Result<axum::http::Method> {
    m.parse()
        .with_context(|| format!("unknown HTTP method {m}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Route;
    use civic_core::Limits;
    use civic_store::Backend;

    fn platform(dir: &std::path::Path) -> Platform {
        let backend = Backend::embedded(dir).unwrap();
        Platform::local(dir, backend, Limits::default()).unwrap()
    }

    fn template() -> String {
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap()
    }

    #[test]
    fn the_template_and_the_routers_agree() {
        let dir = tempfile::tempdir().unwrap();
        let problems = check(
            &template::parse(&template()).unwrap(),
            &platform(dir.path()),
        );
        assert!(problems.is_empty(), "{problems:#?}");
    }

    /// Each app's one document (what civic-local and Lambda serve): no schema name given to
    /// two different schemas, no operation served twice, and every `$ref` found.
    #[test]
    fn every_apps_document_is_whole() {
        let dir = tempfile::tempdir().unwrap();
        let p = platform(dir.path());
        let mut problems = Vec::new();
        for functions in registry::APPS {
            let app = functions[0].app.name;
            match openapi::document(functions, &p) {
                Err(e) => problems.push(format!("{app}: {e}")),
                Ok(doc) => problems.extend(
                    openapi::dangling_refs(&doc)
                        .into_iter()
                        .map(|r| format!("{app}: {r} is not in the document")),
                ),
            }
        }
        assert!(problems.is_empty(), "{problems:#?}");
    }

    /// `GET /openapi.json` is routed to each app's first function (civic_runtime serves the
    /// app's document there on Lambda) and to no other.
    #[test]
    fn the_document_route_belongs_to_the_first_function() {
        let dir = tempfile::tempdir().unwrap();
        let p = platform(dir.path());
        let mut defs = template::parse(&template()).unwrap();
        let docs = Route {
            method: "GET".into(),
            path: openapi::DOCUMENT_PATH.into(),
        };
        let index = |defs: &[FunctionDef], binary: &str| {
            defs.iter().position(|d| d.binary == binary).unwrap()
        };
        let auth = index(&defs, "streetlight-auth");
        defs[auth].routes.retain(|r| *r != docs);
        let lights = index(&defs, "streetlight-lights");
        defs[lights].routes.push(docs);
        let problems = check(&defs, &p);
        assert!(
            problems.iter().any(|m| m.contains(
                "GET /openapi.json is served by streetlight-auth but no HttpApi event routes it"
            )),
            "{problems:#?}"
        );
        assert!(
            problems.iter().any(|m| m.contains(
                "HttpApi event GET /openapi.json reaches no route of streetlight-lights"
            )),
            "{problems:#?}"
        );
        assert_eq!(problems.len(), 2, "{problems:#?}");
    }

    /// An app's live authorizer is invoked by its `AWS::IoT::Authorizer`: declared, without
    /// events.
    #[test]
    fn live_authorizers_are_declared_without_events() {
        let dir = tempfile::tempdir().unwrap();
        let p = platform(dir.path());
        let mut defs = template::parse(&template()).unwrap();
        let live = defs
            .iter_mut()
            .find(|d| d.binary == "streetlight-live-auth")
            .expect("the template declares streetlight-live-auth");
        live.routes.push(Route {
            method: "GET".into(),
            path: "/api/live".into(),
        });
        let problems = check(&defs, &p);
        assert_eq!(
            problems,
            [
                "StreetlightLiveAuthFunction: live authorizer streetlight-live-auth takes no events (an AWS::IoT::Authorizer invokes it)"
            ]
        );
        defs.retain(|d| d.binary != "streetlight-live-auth");
        let problems = check(&defs, &p);
        assert_eq!(
            problems,
            ["function streetlight-live-auth is not declared in the template"]
        );
    }

    #[test]
    fn a_disagreement_is_reported_and_refuses_to_serve() {
        let dir = tempfile::tempdir().unwrap();
        let p = platform(dir.path());
        let mut defs = template::parse(&template()).unwrap();
        let lights = defs
            .iter_mut()
            .find(|d| d.binary == "streetlight-lights")
            .unwrap();
        lights.routes = vec![
            Route {
                method: "GET".into(),
                path: "/api/lights/list".into(),
            },
            Route {
                method: "ANY".into(),
                path: "/api/bogus".into(),
            },
        ];
        let problems = check(&defs, &p);
        assert!(problems.iter().any(|m| m.contains("POST /api/lights/control is served by streetlight-lights but no HttpApi event routes it")), "{problems:#?}");
        assert!(
            problems
                .iter()
                .any(|m| m.contains("HttpApi event ANY /api/bogus reaches no route")),
            "{problems:#?}"
        );
        assert!(router(&defs, &p).is_err());

        let job = defs
            .iter_mut()
            .find(|d| d.binary == "occupancy-scheduler")
            .unwrap();
        job.schedules = vec!["cron(0 12 * * ? *)".into()];
        let problems = check(&defs, &p);
        assert!(
            problems
                .iter()
                .any(|m| m.contains("schedule \"cron(0 12 * * ? *)\" is not supported locally")),
            "{problems:#?}"
        );

        defs.retain(|d| d.binary != "streetlight-auth");
        defs[0].binary = "ghost".into();
        let problems = check(&defs, &p);
        assert!(
            problems
                .iter()
                .any(|m| m.contains("binary ghost is not linked")),
            "{problems:#?}"
        );
        assert!(
            problems
                .iter()
                .any(|m| m.contains("function streetlight-auth is not declared")),
            "{problems:#?}"
        );
    }
}
