//! Each app's OpenAPI document comes from its handlers' `#[utoipa::path]` annotations, collected
//! while its routers are built; [`document`] merges an app's functions into its one document,
//! which civic-local serves with Swagger UI (bundled, no CDN) and Lambda at `/openapi.json`.

use axum::Router;
use serde_json::Value;
use utoipa::openapi::path::{Operation, ParameterIn, PathItem};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{OpenApi, RefOr, Response, Schema};
use utoipa_swagger_ui::SwaggerUi;

use crate::{Function, Limits, Platform};

/// `/{app}/docs` (Swagger UI) and `/{app}/openapi.json`.
pub fn docs(app: &str, spec: OpenApi) -> Router {
    SwaggerUi::new(format!("/{app}/docs"))
        .url(format!("/{app}/openapi.json"), spec)
        .into()
}

/// `GET /openapi.json` on Lambda: the app's first function serves the whole app's document
/// (civic-local serves the same document at `/{app}/openapi.json`).
pub const DOCUMENT_PATH: &str = "/openapi.json";

/// An app's whole OpenAPI document, in one place for civic-local (`/{app}/openapi.json`,
/// `/{app}/docs`) and Lambda (`GET /openapi.json` on the app's first function): every
/// function's paths AND components merged with [`OpenApi::merge`], then the statuses the
/// standard stack returns added to every operation ([`stack_statuses`]).
///
/// Refused (an error naming them) when two functions give one schema name to different
/// schemas, or both serve one operation: `merge` keeps the first and the document would lie.
pub fn document(functions: &[Function], platform: &Platform) -> Result<OpenApi, String> {
    let mut parts = functions.iter().map(|f| (f.name, f.openapi(platform)));
    let (_, mut doc) = parts.next().ok_or("an app without HTTP functions")?;
    let mut clashes = Vec::new();
    for (name, spec) in parts {
        clashes.extend(collisions(&doc, &spec, name));
        doc.merge(spec);
    }
    clashes.extend(duplicate_operation_ids(&doc));
    if !clashes.is_empty() {
        return Err(clashes.join("; "));
    }
    stack_statuses(&mut doc, &platform.limits);
    Ok(doc)
}

/// What `merge` would silently drop from `other` (function `name`) because `doc` has it.
fn collisions(doc: &OpenApi, other: &OpenApi, name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let schemas = |d: &OpenApi| d.components.as_ref().map(|c| c.schemas.clone());
    let (mine, theirs) = (
        schemas(doc).unwrap_or_default(),
        schemas(other).unwrap_or_default(),
    );
    for (schema, s) in &theirs {
        if let Some(m) = mine.get(schema)
            && serde_json::to_value(m).ok() != serde_json::to_value(s).ok()
        {
            out.push(format!(
                "{name}: schema {schema} differs from another function's schema of that name"
            ));
        }
    }
    let ours = operations(doc);
    for op in operations(other).into_iter().filter(|op| ours.contains(op)) {
        out.push(format!(
            "{name}: {} {} is served by another function too",
            op.0, op.1
        ));
    }
    out
}

/// Operation ids must be unique in a document (client generators name functions by them);
/// utoipa's default is the handler's name, which other modules may share (`list`, `create`).
fn duplicate_operation_ids(doc: &OpenApi) -> Vec<String> {
    let mut seen = std::collections::BTreeMap::<&str, Vec<String>>::new();
    for (path, item) in &doc.paths.paths {
        for (method, op) in methods(item) {
            if let Some(id) = op.as_ref().and_then(|op| op.operation_id.as_deref()) {
                seen.entry(id).or_default().push(format!("{method} {path}"));
            }
        }
    }
    seen.into_iter()
        .filter(|(_, ops)| ops.len() > 1)
        .map(|(id, ops)| {
            format!(
                "operation id {id} is used by {} (set operation_id)",
                ops.join(", ")
            )
        })
        .collect()
}

/// Local `$ref`s that point at nothing in the document, e.g. `#/components/schemas/Light`.
pub fn dangling_refs(doc: &OpenApi) -> Vec<String> {
    fn walk(v: &Value, root: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    let found = r
                        .strip_prefix('#')
                        .is_some_and(|pointer| root.pointer(pointer).is_some());
                    if !found && !out.contains(r) {
                        out.push(r.clone());
                    }
                }
                map.values().for_each(|v| walk(v, root, out));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, root, out)),
            _ => {}
        }
    }
    let root = serde_json::to_value(doc).unwrap_or_default();
    let mut out = Vec::new();
    walk(&root, &root, &mut out);
    out
}

/// The statuses every handler can get from the standard stack ([`crate::layers`] and the
/// extractors in [`crate::extract`]), added to each operation unless its annotation lists
/// them already; the handlers' own statuses (404, 409, a role's 403...) stay in their
/// `#[utoipa::path]`:
/// - a request body: 400 (malformed, or a field of the wrong type), 413 (over the body
///   limit), and 415 for JSON and form bodies (another `Content-Type`);
/// - a query parameter that is not free text: 400 (it does not parse);
/// - security (its own, or the document's): 401 (no or a bad credential);
/// - rate limits, when configured: 429 with `Retry-After`;
/// - always: 503 with `Retry-After`, when the requests in flight are at their bound
///   ([`Limits::in_flight`]).
pub fn stack_statuses(doc: &mut OpenApi, limits: &Limits) {
    let default_security = doc.security.clone().unwrap_or_default();
    let rate_limited = limits.per_hour > 0 || limits.per_minute > 0;
    for item in doc.paths.paths.values_mut() {
        let ops = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
            &mut item.head,
            &mut item.options,
            &mut item.trace,
        ];
        for op in ops.into_iter().flatten() {
            let body = op.request_body.as_ref().map(|b| {
                b.content
                    .keys()
                    .any(|t| t.starts_with("application/json") || t == FORM)
            });
            let typed_query = op.parameters.iter().flatten().any(|p| {
                p.parameter_in == ParameterIn::Query && !p.schema.as_ref().is_some_and(free_text)
            });
            let security = op.security.as_ref().unwrap_or(&default_security);
            let secured = security
                .iter()
                .any(|r| *r != SecurityRequirement::default());
            let mut add = |status: &str, why: &str| {
                op.responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| RefOr::T(Response::new(why)));
            };
            if body.is_some() || typed_query {
                add(
                    "400",
                    "Malformed request: a body or parameter that does not parse, or an invalid field",
                );
            }
            if body.is_some() {
                add("413", "Request body is too large");
            }
            if body == Some(true) {
                add("415", "Wrong Content-Type for the body");
            }
            if secured {
                add("401", "Missing, invalid or expired credentials");
            }
            if rate_limited {
                add(
                    "429",
                    "Rate limit exceeded; `Retry-After` gives the seconds to wait",
                );
            }
            add(
                "503",
                "The server is busy (too many requests in flight); `Retry-After` gives the seconds to wait",
            );
        }
    }
}

const FORM: &str = "application/x-www-form-urlencoded";

/// A plain (optionally null) string: any query value parses as one.
fn free_text(schema: &RefOr<Schema>) -> bool {
    let Ok(Value::Object(s)) = serde_json::to_value(schema) else {
        return false;
    };
    let string = match s.get("type") {
        Some(Value::String(t)) => t == "string",
        Some(Value::Array(ts)) => ts.iter().all(|t| t == "string" || t == "null"),
        _ => false,
    };
    string
        && !["enum", "format", "pattern", "minLength", "maxLength"]
            .iter()
            .any(|k| s.contains_key(*k))
}

/// `GET /openapi.json` serving `doc` (serialised once).
pub fn document_route(doc: &OpenApi) -> Router {
    let json = doc.to_json().unwrap_or_default();
    Router::new().route(
        DOCUMENT_PATH,
        axum::routing::get(move || async move {
            (
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                json,
            )
        }),
    )
}

/// A request body's schema that differs from its type's only in which fields are required,
/// for a create and a partial update that read one type: `schema_variant!(pub NewOutlet =
/// OutletInput, ["name"]);` documents `OutletInput` with `name` required (and not null),
/// `schema_variant!(pub CameraPatch = CameraInput, []);` with every field optional. The
/// variant is a schema of its own, named after the new type, to name in `request_body`.
#[macro_export]
macro_rules! schema_variant {
    ($(#[$meta:meta])* $vis:vis $name:ident = $base:ty, [$($field:literal),* $(,)?]) => {
        $(#[$meta])*
        $vis struct $name;

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $crate::openapi::with_required(
                    <$base as utoipa::PartialSchema>::schema(),
                    &[$($field),*],
                )
            }
        }

        impl utoipa::ToSchema for $name {
            fn schemas(
                schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>,
            ) {
                <$base as utoipa::ToSchema>::schemas(schemas);
            }
        }
    };
}

/// `schema` (an object's) with exactly `fields` required, and those not nullable.
pub fn with_required(schema: RefOr<Schema>, fields: &[&str]) -> RefOr<Schema> {
    let Ok(mut v) = serde_json::to_value(&schema) else {
        return schema;
    };
    let Some(obj) = v.as_object_mut() else {
        return schema;
    };
    if let Some(Value::Object(props)) = obj.get_mut("properties") {
        for field in fields {
            if let Some(prop) = props.get_mut(*field) {
                not_null(prop);
            }
        }
    }
    match fields.is_empty() {
        true => obj.remove("required"),
        false => obj.insert("required".into(), serde_json::json!(fields)),
    };
    serde_json::from_value(v).unwrap_or(schema)
}

/// `{"type": ["string", "null"]}` → `{"type": "string"}`; `{"oneOf": [{"type": "null"}, X]}` →
/// `X` (keeping the description).
fn not_null(prop: &mut Value) {
    let Some(p) = prop.as_object_mut() else {
        return;
    };
    if let Some(Value::Array(types)) = p.get_mut("type") {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            let only = types[0].clone();
            p.insert("type".into(), only);
        }
    }
    let one_of = p.get("oneOf").and_then(Value::as_array).cloned();
    if let Some(mut alts) = one_of {
        alts.retain(|a| a.get("type").is_none_or(|t| t != "null"));
        if let [Value::Object(only)] = alts.as_slice() {
            p.remove("oneOf");
            for (k, v) in only {
                p.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
    }
}

/// Paths and methods of a spec, e.g. `("GET", "/api/lights/list")`: the routes a router serves.
pub fn operations(spec: &OpenApi) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (path, item) in &spec.paths.paths {
        for (method, op) in methods(item) {
            if op.is_some() {
                out.push((method.to_owned(), path.clone()));
            }
        }
    }
    out
}

/// A path item's operations by the methods the apps serve.
fn methods(item: &PathItem) -> [(&'static str, &Option<Operation>); 5] {
    [
        ("GET", &item.get),
        ("POST", &item.post),
        ("PUT", &item.put),
        ("PATCH", &item.patch),
        ("DELETE", &item.delete),
    ]
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

#[cfg(test)]
mod tests {
    use utoipa_axum::router::OpenApiRouter;
    use utoipa_axum::routes;

    use super::*;
    use crate::App;

    mod one {
        #[allow(dead_code)] // only its schema matters
        #[derive(serde::Deserialize, utoipa::ToSchema)]
        pub struct Thing {
            pub x: i64,
        }
        #[utoipa::path(post, path = "/one", request_body = Thing, security(("bearer" = [])),
            responses((status = 200), (status = 404)))]
        pub async fn one(_body: crate::Json<Thing>) {}
    }

    /// Another `Thing`, with other fields.
    mod two {
        #[derive(serde::Serialize, utoipa::ToSchema)]
        pub struct Thing {
            pub y: String,
        }
        #[utoipa::path(get, path = "/two", params(("n" = i64, Query), ("q" = String, Query)),
            responses((status = 200, body = Thing)))]
        pub async fn two() {}
    }

    /// The same `Thing` as `one`'s.
    mod three {
        #[utoipa::path(get, path = "/three", responses((status = 200, body = super::one::Thing)))]
        pub async fn three() {}
    }

    const APP: App = App {
        name: "test",
        format: crate::error::drf,
        functions: Some(|| &[ONE, TWO, THREE]),
        config: || Ok(()),
    };
    const ONE: Function = Function {
        name: "one",
        app: APP,
        routes: |_| OpenApiRouter::new().routes(routes!(one::one)),
    };
    const TWO: Function = Function {
        name: "two",
        app: APP,
        routes: |_| OpenApiRouter::new().routes(routes!(two::two)),
    };
    const THREE: Function = Function {
        name: "three",
        app: APP,
        routes: |_| OpenApiRouter::new().routes(routes!(three::three)),
    };

    fn platform(dir: &std::path::Path, limits: Limits) -> Platform {
        let backend = civic_store::Backend::embedded(dir).unwrap();
        Platform::local(dir, backend, limits).unwrap()
    }

    fn statuses(doc: &OpenApi, path: &str) -> Vec<String> {
        let item = &doc.paths.paths[path];
        let op = item.get.as_ref().or(item.post.as_ref()).unwrap();
        op.responses.responses.keys().cloned().collect()
    }

    #[test]
    fn functions_merge_into_one_document_with_their_schemas() {
        let dir = tempfile::tempdir().unwrap();
        let doc = document(&[ONE, THREE], &platform(dir.path(), Limits::default())).unwrap();
        assert_eq!(operations(&doc).len(), 2);
        assert!(
            doc.components
                .as_ref()
                .unwrap()
                .schemas
                .contains_key("Thing")
        );
        assert_eq!(dangling_refs(&doc), Vec::<String>::new());
    }

    #[test]
    fn one_name_for_two_schemas_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = platform(dir.path(), Limits::default());
        let err = document(&[ONE, TWO], &p).err().unwrap();
        assert!(err.contains("two: schema Thing differs"), "{err}");
        let err = document(&[ONE, ONE], &p).err().unwrap();
        assert!(
            err.contains("POST /one is served by another function too"),
            "{err}"
        );
    }

    #[test]
    fn the_stacks_statuses_are_added() {
        let dir = tempfile::tempdir().unwrap();
        let doc = document(&[ONE], &platform(dir.path(), Limits::default())).unwrap();
        assert_eq!(
            statuses(&doc, "/one"),
            ["200", "400", "401", "404", "413", "415", "503"]
        );
        let doc = document(&[TWO], &platform(dir.path(), Limits::default())).unwrap();
        assert_eq!(
            statuses(&doc, "/two"),
            ["200", "400", "503"],
            "an integer query parameter"
        );
        let limited = Limits {
            per_minute: 10,
            ..Limits::default()
        };
        let doc = document(&[THREE], &platform(dir.path(), limited)).unwrap();
        assert_eq!(statuses(&doc, "/three"), ["200", "429", "503"]);
    }

    #[derive(utoipa::ToSchema)]
    #[allow(dead_code)]
    struct Patch {
        name: Option<String>,
        kind: Option<two::Thing>,
        size: i64,
    }

    crate::schema_variant!(NewPatch = Patch, ["name", "kind"]);
    crate::schema_variant!(LoosePatch = Patch, []);

    #[test]
    fn a_schema_variant_changes_only_what_is_required() {
        use utoipa::PartialSchema;
        let json = |s| serde_json::to_value(s).unwrap();
        let new = json(NewPatch::schema());
        assert_eq!(new["required"], serde_json::json!(["name", "kind"]));
        assert_eq!(new["properties"]["name"]["type"], "string");
        assert_eq!(
            new["properties"]["kind"]["$ref"],
            "#/components/schemas/Thing"
        );
        assert_eq!(
            new["properties"]["size"],
            json(Patch::schema())["properties"]["size"]
        );
        let loose = json(LoosePatch::schema());
        assert!(loose.get("required").is_none(), "{loose}");
        assert_eq!(<NewPatch as utoipa::ToSchema>::name(), "NewPatch");
    }

    #[test]
    fn dangling_refs_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let mut doc = document(&[ONE], &platform(dir.path(), Limits::default())).unwrap();
        doc.components.as_mut().unwrap().schemas.clear();
        assert_eq!(dangling_refs(&doc), ["#/components/schemas/Thing"]);
    }
}
