//! The OpenAPI 3.1 document of `serve`, generated from the types the
//! handlers answer with. OpenAPI 3.1's schemas are JSON Schema 2020-12,
//! which schemars (already deriving the spec's schema) emits: one derive
//! per type serves `schema`, the spec and this document alike.

use super::super::capacity::TablesDoc;
use super::super::list::ListDoc;
use super::super::session::DiagnosticsDoc;
use super::docs::{FilesDoc, Health};
use super::problem::Problem;
use super::routes::Route;
use crate::spec::Phase;
use schemars::SchemaGenerator;
use schemars::generate::{Contract, SchemaSettings};
use serde_json::{Value, json};

/// What one response carries.
enum Body {
    Json(Value),
    Text(&'static str),
}

/// (name, in, required, description, the values the server accepts: any
/// string when empty).
type Param = (
    &'static str,
    &'static str,
    bool,
    &'static str,
    &'static [&'static str],
);

/// The path parameter most operations take.
const NAME: Param = ("name", "path", true, "a phase's name, e.g. growth", &[]);

struct Op {
    route: Route,
    id: &'static str,
    summary: &'static str,
    params: &'static [Param],
    ok: Body,
    /// Statuses answered with a problem document besides 200 (and those
    /// every endpoint may answer).
    problems: &'static [u16],
    request: Option<&'static str>,
    /// 422 carries the diagnostics document itself, as the CLI prints it.
    invalid_is_diagnostics: bool,
    /// Also answers text/markdown (content negotiation).
    markdown: bool,
}

fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad request",
        401 => "Missing or wrong bearer token",
        403 => "Without a token, only requests addressed to loopback are answered",
        500 => "scaleplan failed while answering (a bug)",
        503 => "The answer took too long, or the server is shutting down",
        404 => "No such phase, file or endpoint",
        408 => "The request took longer than --request-timeout",
        413 => "The body is over the size limit",
        414 => {
            "The request target is over 8 KiB (over 64 KiB the HTTP layer refuses it without a body)"
        }
        431 => {
            "Over 100 headers (over 1,000, or a head over the HTTP layer's buffer, it refuses without a body)"
        }
        422 => "The specs have errors (their located diagnostics)",
        _ => "Error",
    }
}

/// The document, as `GET /openapi.json` answers it and as
/// `schemas/openapi.json` commits it.
pub fn document() -> String {
    let mut generator: SchemaGenerator = SchemaSettings::draft2020_12()
        .with(|s| {
            s.definitions_path = "/components/schemas".into();
            s.meta_schema = None;
            s.contract = Contract::Serialize;
        })
        .into_generator();
    let schema = |v: schemars::Schema| serde_json::to_value(v).unwrap_or(Value::Null);
    let health = schema(generator.subschema_for::<Health>());
    let list = schema(generator.subschema_for::<ListDoc<'static>>());
    let spec = schema(generator.subschema_for::<Phase>());
    let diags = schema(generator.subschema_for::<DiagnosticsDoc>());
    let capacity = schema(generator.subschema_for::<TablesDoc<'static>>());
    let files = schema(generator.subschema_for::<FilesDoc>());
    let problem = schema(generator.subschema_for::<Problem>());
    let any_object = |what: &str| json!({"type": "object", "description": what});
    let ops = vec![
        Op {
            route: Route::Health,
            id: "health",
            summary: "The server answers",
            params: &[],
            ok: Body::Json(health),
            problems: &[],
            request: None,
            invalid_is_diagnostics: false,
            markdown: false,
        },
        Op {
            route: Route::Openapi,
            id: "openapi",
            summary: "This document",
            params: &[],
            ok: Body::Json(any_object("An OpenAPI 3.1 document")),
            problems: &[],
            request: None,
            invalid_is_diagnostics: false,
            markdown: false,
        },
        Op {
            route: Route::Phases,
            id: "listPhases",
            summary: "The phases in rollout order (`list --format json`)",
            params: &[],
            ok: Body::Json(list),
            problems: &[401, 422],
            request: None,
            invalid_is_diagnostics: false,
            markdown: false,
        },
        Op {
            route: Route::Phase,
            id: "getPhase",
            summary: "The phase's spec after `extends`, defaults filled in (`inspect --output json`)",
            params: &[NAME],
            ok: Body::Json(spec),
            problems: &[401, 404, 422],
            request: None,
            invalid_is_diagnostics: false,
            markdown: false,
        },
        Op {
            route: Route::Validation,
            id: "validatePhase",
            summary: "The phase's diagnostics (`validate NAME --format json`); 422 with the same document when it has errors",
            params: &[NAME],
            ok: Body::Json(diags.clone()),
            problems: &[404],
            request: None,
            invalid_is_diagnostics: true,
            markdown: false,
        },
        Op {
            route: Route::Capacity,
            id: "phaseCapacity",
            summary: "What the phase carries, per resource (`capacity NAME --format json`)",
            params: &[NAME],
            ok: Body::Json(capacity),
            problems: &[401, 404, 422],
            request: None,
            invalid_is_diagnostics: false,
            markdown: false,
        },
        Op {
            route: Route::Files,
            id: "phaseFiles",
            summary: "The files `build` renders for the phase",
            params: &[NAME],
            ok: Body::Json(files),
            problems: &[401, 404, 422],
            request: None,
            invalid_is_diagnostics: false,
            markdown: false,
        },
        Op {
            route: Route::File,
            id: "phaseFile",
            summary: "One rendered file",
            params: &[
                NAME,
                (
                    "path",
                    "path",
                    true,
                    "a path from .../files, e.g. compose/docker-compose.yml",
                    &[],
                ),
            ],
            ok: Body::Text("text/plain"),
            problems: &[400, 401, 404, 422],
            request: None,
            invalid_is_diagnostics: false,
            markdown: false,
        },
        Op {
            route: Route::Diagram,
            id: "phaseDiagram",
            summary: "The phase's architecture in Mermaid",
            params: &[NAME],
            ok: Body::Text("text/vnd.mermaid"),
            problems: &[401, 404, 422],
            request: None,
            invalid_is_diagnostics: false,
            markdown: false,
        },
        Op {
            route: Route::Diff,
            id: "diff",
            summary: "What changes between two phases (`diff A B --format json`, or `--format markdown` with ?format=markdown or Accept: text/markdown)",
            params: &[
                ("from", "query", true, "the earlier phase", &[]),
                ("to", "query", true, "the later phase", &[]),
                (
                    "format",
                    "query",
                    false,
                    "json (default) or markdown",
                    &super::api::DIFF_FORMATS,
                ),
            ],
            ok: Body::Json(any_object(
                "`diff --format json`: {changes, comparisons: [{from, to, summary, files, spec_changes, plan}]}",
            )),
            problems: &[400, 401, 404, 422],
            request: None,
            invalid_is_diagnostics: false,
            markdown: true,
        },
        Op {
            route: Route::Transition,
            id: "transition",
            summary: "The transition plan: its steps in order, with risk and what carries each out",
            params: &[
                ("from", "path", true, "the phase that runs", &[]),
                ("to", "path", true, "the phase to move to", &[]),
            ],
            ok: Body::Json(any_object(
                "The plan, as in `diff --format json`'s `plan`: {from, to, capacity, steps}",
            )),
            problems: &[401, 404, 422],
            request: None,
            invalid_is_diagnostics: false,
            markdown: false,
        },
        Op {
            route: Route::Validate,
            id: "validateSpec",
            summary: "Validate a spec (YAML or TOML) beside the phases; 422 with the same document when it has errors",
            params: &[
                (
                    "phase",
                    "query",
                    false,
                    "the phase whose file the body replaces; without it, a new file request.yaml",
                    &[],
                ),
                (
                    "format",
                    "query",
                    false,
                    "yaml or toml (else from Content-Type, else yaml)",
                    &super::api::SPEC_FORMATS,
                ),
            ],
            ok: Body::Json(diags.clone()),
            problems: &[400, 404, 413],
            request: Some("a phase spec, e.g. one that `extends` a phase"),
            invalid_is_diagnostics: true,
            markdown: false,
        },
        Op {
            route: Route::Deployment,
            id: "deployment",
            summary: "The running local deployment (`status --format json`) and, with monitoring, its utilisation (`observe --format json`)",
            params: &[],
            ok: Body::Json(any_object("{status, observation?}")),
            problems: &[401, 422],
            request: None,
            invalid_is_diagnostics: false,
            markdown: false,
        },
    ];
    let mut paths = serde_json::Map::new();
    for op in &ops {
        let mut responses = serde_json::Map::new();
        let mut ok = match &op.ok {
            Body::Json(s) => {
                json!({"description": "OK", "content": {"application/json": {"schema": s}}})
            }
            Body::Text(t) => {
                json!({"description": "OK", "content": {(*t): {"schema": {"type": "string"}}}})
            }
        };
        if op.markdown {
            ok["content"]["text/markdown"] = json!({"schema": {"type": "string"}});
        }
        responses.insert("200".into(), ok);
        if op.invalid_is_diagnostics {
            responses.insert(
                "422".into(),
                json!({
                    "description": "The spec has errors: the diagnostics document, as the CLI prints it",
                    "content": {"application/json": {"schema": diags.clone()}}
                }),
            );
        }
        let guarded: &[u16] = if op.route == Route::Health {
            &[408, 414, 431, 500]
        } else {
            &[401, 403, 408, 414, 431, 500, 503]
        };
        let mut statuses: Vec<u16> = op.problems.iter().chain(guarded).copied().collect();
        statuses.sort_unstable();
        statuses.dedup();
        for status in &statuses {
            responses.insert(
                status.to_string(),
                json!({
                    "description": reason(*status),
                    "content": {"application/problem+json": {"schema": problem.clone()}}
                }),
            );
        }
        let params: Vec<Value> = op
            .params
            .iter()
            .map(|(n, at, required, what, values)| {
                let schema = if values.is_empty() {
                    json!({"type": "string"})
                } else {
                    json!({"type": "string", "enum": values})
                };
                json!({"name": n, "in": at, "required": required, "description": what, "schema": schema})
            })
            .collect();
        let mut operation = json!({
            "operationId": op.id,
            "summary": op.summary,
            "responses": responses,
        });
        if !params.is_empty() {
            operation["parameters"] = Value::Array(params);
        }
        if let Some(what) = op.request {
            operation["requestBody"] = json!({
                "required": true,
                "description": what,
                "content": {
                    "application/yaml": {"schema": {"type": "string"}},
                    "application/toml": {"schema": {"type": "string"}}
                }
            });
        }
        let entry = paths
            .entry(op.route.openapi_path())
            .or_insert_with(|| json!({}));
        entry[op.route.method()] = operation;
    }
    let doc = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "scaleplan",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The phases of a deployment, their capacity, files, diagrams and transitions, and the running local deployment. Beyond loopback every endpoint but /healthz needs `Authorization: Bearer <SCALEPLAN_SERVE_TOKEN>`."
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": generator.take_definitions(true),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}
        },
        "security": [{}, {"bearer": []}]
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
}

#[cfg(test)]
mod tests {
    use super::Route;

    /// The OpenAPI document describes every endpoint the router serves,
    /// on its method, and nothing else.
    #[test]
    fn the_document_lists_every_route_once() {
        let doc: serde_json::Value = serde_json::from_str(&super::document()).unwrap();
        let paths = doc["paths"].as_object().unwrap();
        assert_eq!(paths.len(), Route::ALL.len());
        for route in Route::ALL {
            let ops = paths[&route.openapi_path()].as_object().unwrap();
            assert_eq!(ops.len(), 1, "{route:?}");
            assert!(ops.contains_key(route.method()), "{route:?}");
        }
    }
}
