//! The routes and their handlers. Each handler loads the phases directory
//! afresh (specs are read per request), does its work on a blocking thread
//! (planning and rendering are CPU work), and answers with the document the
//! CLI prints, serialised by the same function.

use super::super::session::{self, Request};
use super::config::{BODY_LIMIT, Config};
use super::docs::{FileEntry, FilesDoc, Health};
use super::phases::{find, load, rendered};
use super::problem::Problem;
use super::routes::Route;
use crate::compare::{self, Options, report};
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, Request as HttpRequest, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, on};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use subtle::ConstantTimeEq;
use tower_http::timeout::TimeoutLayer;

type Shared = State<Arc<Config>>;
type Answer = Result<Response, Problem>;

/// Each endpoint's handler, on the route's method.
fn endpoint(route: Route) -> MethodRouter<Arc<Config>> {
    let f = route.filter();
    match route {
        Route::Health => on(f, healthz),
        Route::Openapi => on(f, openapi),
        Route::Phases => on(f, phases),
        Route::Phase => on(f, phase),
        Route::Validation => on(f, validation),
        Route::Capacity => on(f, capacity),
        Route::Files => on(f, files),
        Route::File => on(f, file),
        Route::Diagram => on(f, diagram),
        Route::Diff => on(f, diff),
        Route::Transition => on(f, transition),
        Route::Validate => on(f, validate),
        Route::Deployment => on(f, deployment),
    }
}

pub(super) fn router(config: Arc<Config>, timeout: Duration) -> Router {
    Route::ALL
        .iter()
        .fold(Router::new(), |r, route| {
            r.route(route.path(), endpoint(*route))
        })
        .route("/", get(super::page::index))
        .route("/assets/mermaid.min.js", get(super::page::mermaid_js))
        .fallback(|| async { Problem::not_found("no such endpoint: see /openapi.json") })
        .method_not_allowed_fallback(|| async {
            Problem::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "this endpoint does not take that method: see /openapi.json",
            )
        })
        .layer(middleware::from_fn_with_state(config.clone(), authorize))
        .layer(middleware::from_fn(bounded_head))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(middleware::map_response(problems_everywhere))
        .with_state(config)
}

/// The longest request target scaleplan answers, and the most headers: past
/// them, 414 and 431 as problem+json. The HTTP layer's own bounds lie
/// further out (a 64 KB target; `MAX_HEADERS_HTTP` headers), where it
/// answers without a body before any of this runs.
pub const MAX_TARGET: usize = 8 * 1024;
pub const MAX_HEADERS: usize = 100;
pub const MAX_HEADERS_HTTP: usize = 1000;

async fn bounded_head(req: HttpRequest, next: Next) -> Response {
    let target = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if target > MAX_TARGET {
        return Problem::new(
            StatusCode::URI_TOO_LONG,
            format!("the request target is {target} bytes; at most {MAX_TARGET}"),
        )
        .into_response();
    }
    let headers = req.headers().len();
    if headers > MAX_HEADERS {
        return Problem::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!("the request has {headers} headers; at most {MAX_HEADERS}"),
        )
        .into_response();
    }
    next.run(req).await
}

/// Every error as problem+json: the extractors' own rejections (a bad
/// percent-encoding in a path, a repeated query parameter), the timeout's
/// empty 408, whatever answers in plain text. A 422 that carries the
/// diagnostics document itself (application/json) is left as it is.
async fn problems_everywhere(response: Response) -> Response {
    let status = response.status();
    let kind = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !(status.is_client_error() || status.is_server_error())
        || kind.starts_with("application/problem+json")
        || kind.starts_with("application/json")
    {
        return response;
    }
    // The rejections' texts are a line or two; anything longer is cut.
    let body = axum::body::to_bytes(response.into_body(), 16 * 1024)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&body).trim().to_owned();
    let detail = if text.is_empty() {
        status.canonical_reason().unwrap_or("Error").to_owned()
    } else {
        text
    };
    Problem::new(status, detail).into_response()
}

/// With a token, every request but /healthz carries it, compared in
/// constant time. Without one (loopback only), the Host must name
/// loopback too: a web page that rebinds its own name to 127.0.0.1 cannot
/// read the plan through the browser.
async fn authorize(State(config): Shared, req: HttpRequest, next: Next) -> Response {
    let Some(token) = &config.token else {
        // Exactly one Host, naming loopback; and an absolute-form target
        // (`GET http://host/...`), whose authority HTTP/1.1 puts before the
        // Host header, must name loopback too.
        let mut hosts = req.headers().get_all(header::HOST).iter();
        let host = match (hosts.next(), hosts.next()) {
            (Some(one), None) => one.to_str().unwrap_or(""),
            _ => "",
        };
        let target_ok = req
            .uri()
            .authority()
            .is_none_or(|a| loopback_host(a.as_str()));
        if loopback_host(host) && target_ok {
            return next.run(req).await;
        }
        return Problem::new(
            StatusCode::FORBIDDEN,
            "without a token this server answers only requests addressed to 127.0.0.1, [::1] or localhost",
        )
        .into_response();
    };
    if req.uri().path() == Route::Health.path() {
        return next.run(req).await;
    }
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map_or("", |(_, t)| t.trim());
    if bool::from(given.as_bytes().ct_eq(token.as_bytes())) {
        return next.run(req).await;
    }
    let mut r = Problem::new(
        StatusCode::UNAUTHORIZED,
        "this server needs `Authorization: Bearer <token>`",
    )
    .into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    r
}

/// A Host header naming loopback, with or without a port, and nothing
/// else: `localhost:80@evil.example` names evil.example to many clients.
fn loopback_host(host: &str) -> bool {
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        let Some((inside, after)) = rest.split_once(']') else {
            return false;
        };
        match after.strip_prefix(':') {
            Some(port) => (inside, Some(port)),
            None if after.is_empty() => (inside, None),
            None => return false,
        }
    } else {
        match host.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        }
    };
    if port.is_some_and(|p| p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit())) {
        return false;
    }
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// At most this many requests plan or render at once; the others wait.
const WORKERS: usize = 8;

/// Runs CPU work off the async threads, a bounded number at once; a panic
/// inside becomes a 500 and the server goes on serving; work past its
/// time gets 503. A request that waits longer than `queue_wait` for a
/// slot gets 503 with Retry-After: the server is busy, the request was
/// whole (408 is for a request slow to arrive).
async fn blocking<F>((queue_wait, work_timeout): (Duration, Duration), work: F) -> Response
where
    F: FnOnce() -> Answer + Send + 'static,
{
    static SLOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(WORKERS);
    let permit = match tokio::time::timeout(queue_wait, SLOTS.acquire()).await {
        Ok(Ok(permit)) => permit,
        Ok(Err(_)) => {
            return Problem::new(StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
        }
        Err(_) => {
            let mut r = Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "busy: {WORKERS} requests were planning or rendering for {} s; try again",
                    queue_wait.as_secs_f64()
                ),
            )
            .into_response();
            r.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            return r;
        }
    };
    let task = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        work()
    });
    match tokio::time::timeout(work_timeout, task).await {
        Ok(Ok(Ok(r))) => r,
        Ok(Ok(Err(p))) => p.into_response(),
        Ok(Err(_)) => Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "scaleplan failed while answering (a bug: please report it with the request)",
        )
        .into_response(),
        Err(_) => Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the answer took over {} s", work_timeout.as_secs()),
        )
        .into_response(),
    }
}

fn json(text: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], text).into_response()
}

fn doc<T: Serialize>(value: &T) -> Answer {
    session::json(value)
        .map(json)
        .map_err(|e| Problem::internal(&e))
}

async fn healthz() -> Response {
    json(session::json(&Health { ok: true }).unwrap_or_default())
}

async fn openapi(State(c): Shared) -> Response {
    json(c.openapi.clone())
}

async fn phases(State(c): Shared) -> Response {
    blocking((c.queue_wait, c.work_timeout), move || {
        let loaded = load(&c)?;
        doc(&super::super::list::document(&loaded))
    })
    .await
}

async fn phase(State(c): Shared, Path(name): Path<String>) -> Response {
    blocking((c.queue_wait, c.work_timeout), move || {
        let loaded = load(&c)?;
        let p = find(&loaded, &name)?;
        let value = serde_json::to_value(p.spec()).map_err(|e| Problem::internal(&e.into()))?;
        doc(&value)
    })
    .await
}

async fn validation(State(c): Shared, Path(name): Path<String>) -> Response {
    blocking((c.queue_wait, c.work_timeout), move || {
        let names = [name.clone()];
        let req = Request {
            names: &names,
            ..Request::all(&c.phases)
        };
        match session::load_quiet(&req).map_err(|e| Problem::internal(&e))? {
            Ok(loaded) => doc(&loaded.report),
            // No phase of that name and no spec file of that name: 404,
            // as every other /v1/phases/{name} answers.
            Err(_) if !names_a_spec(&c.phases, &name) && !planned_name(&c, &name) => Err(
                Problem::not_found(format!("no phase {name} in the phases directory")),
            ),
            // `validate NAME --format json` prints the same document and
            // exits 1: here, 422 with it.
            Err(report) => {
                let mut r = doc(&report)?;
                *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
                Ok(r)
            }
        }
    })
    .await
}

/// A spec file called `name` (any of the spec extensions) in `dir`: a
/// phase that may fail to load, but exists.
fn names_a_spec(dir: &std::path::Path, name: &str) -> bool {
    // A phase's file name is a label: anything else (`..%2F..`) never
    // reaches the file system, which would tell what exists outside.
    let label = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    label
        && crate::spec::load::EXTENSIONS
            .iter()
            .any(|ext| dir.join(format!("{name}.{ext}")).is_file())
}

/// A phase planned under that name (its `name:` may differ from its
/// file's), from the plan the other routes share; a directory that does
/// not plan has none.
fn planned_name(c: &Config, name: &str) -> bool {
    load(c).is_ok_and(|loaded| loaded.planned.get(name).is_some())
}

async fn capacity(State(c): Shared, Path(name): Path<String>) -> Response {
    blocking((c.queue_wait, c.work_timeout), move || {
        let loaded = load(&c)?;
        let p = find(&loaded, &name)?;
        doc(&super::super::capacity::TablesDoc {
            phases: vec![&p.capacity],
        })
    })
    .await
}

async fn files(State(c): Shared, Path(name): Path<String>) -> Response {
    blocking((c.queue_wait, c.work_timeout), move || {
        let files = rendered(&c, &name)?;
        doc(&FilesDoc {
            phase: name,
            files: files
                .iter()
                .map(|(path, text)| FileEntry {
                    path: path.to_owned(),
                    bytes: text.len(),
                })
                .collect(),
        })
    })
    .await
}

/// A path inside the rendered tree: relative, no `.` or `..` segment, no
/// empty segment or backslash. The tree lives in memory, so nothing else
/// could be reached anyway; this answers 400 rather than 404.
fn inside_tree(path: &str) -> bool {
    !path.is_empty()
        && !path.contains('\\')
        && !path.contains('\0')
        && path
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
}

async fn file(State(c): Shared, path: Result<Path<(String, String)>, PathRejection>) -> Response {
    let Ok(Path((name, path))) = path else {
        return Problem::bad_request("the path is not valid UTF-8 once decoded").into_response();
    };
    if !inside_tree(&path) {
        return Problem::bad_request(format!(
            "{path:?} is not a path inside the rendered tree (no `..`, `.` or empty segments)"
        ))
        .into_response();
    }
    blocking((c.queue_wait, c.work_timeout), move || {
        let files = rendered(&c, &name)?;
        let text = files.get(&path).ok_or_else(|| {
            Problem::not_found(format!(
                "phase {name} renders no {path}: see /v1/phases/{name}/files"
            ))
        })?;
        Ok((
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            text.to_owned(),
        )
            .into_response())
    })
    .await
}

async fn diagram(State(c): Shared, Path(name): Path<String>) -> Response {
    blocking((c.queue_wait, c.work_timeout), move || {
        let loaded = load(&c)?;
        let p = find(&loaded, &name)?;
        let text = crate::render::diagram::architecture(p).to_mermaid();
        Ok((
            [(header::CONTENT_TYPE, "text/vnd.mermaid; charset=utf-8")],
            text,
        )
            .into_response())
    })
    .await
}

#[derive(Deserialize)]
pub(super) struct DiffQuery {
    from: Option<String>,
    to: Option<String>,
    format: Option<String>,
}

/// The values `?format=` takes on /v1/diff, and on /v1/validate; the
/// OpenAPI document lists the same.
pub const DIFF_FORMATS: [&str; 2] = ["json", "markdown"];
pub const SPEC_FORMATS: [&str; 3] = ["yaml", "yml", "toml"];

/// Markdown when `?format=markdown`, or when the client's Accept ranks
/// text/markdown above application/json (q-values; equal: the first
/// listed).
fn wants_markdown(format: Option<&str>, headers: &HeaderMap) -> Result<bool, Problem> {
    match format {
        Some("markdown") => return Ok(true),
        Some("json") => return Ok(false),
        Some(other) => {
            return Err(Problem::bad_request(format!(
                "format={other}: one of {}",
                DIFF_FORMATS.join(", ")
            )));
        }
        None => {}
    }
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Ok(false);
    };
    // (q, -position) of each type the client names.
    let rank = |wanted: &str| -> Option<(f64, isize)> {
        accept.split(',').enumerate().find_map(|(i, item)| {
            let mut parts = item.split(';').map(str::trim);
            let media = parts.next()?;
            if !media.eq_ignore_ascii_case(wanted) {
                return None;
            }
            let q = parts
                .find_map(|p| p.strip_prefix("q="))
                .and_then(|q| q.parse::<f64>().ok())
                .unwrap_or(1.0);
            Some((q, -(i as isize)))
        })
    };
    Ok(match (rank("text/markdown"), rank("application/json")) {
        (Some((q, _)), _) if q <= 0.0 => false,
        (Some(_), None) => true,
        (Some(md), Some(js)) => md.partial_cmp(&js) == Some(std::cmp::Ordering::Greater),
        (None, _) => false,
    })
}

async fn diff(State(c): Shared, Query(q): Query<DiffQuery>, headers: HeaderMap) -> Response {
    let markdown = match wants_markdown(q.format.as_deref(), &headers) {
        Ok(m) => m,
        Err(p) => return p.into_response(),
    };
    let (Some(from), Some(to)) = (q.from, q.to) else {
        return Problem::bad_request("name both phases: /v1/diff?from=A&to=B").into_response();
    };
    blocking((c.queue_wait, c.work_timeout), move || {
        let loaded = load(&c)?;
        let (a, b) = (find(&loaded, &from)?, find(&loaded, &to)?);
        let all = |_: &str| true;
        // `diff A B`'s defaults: 3 lines of context, every file.
        let opts = Options {
            context: 3,
            only: &all,
        };
        let cmp = compare::compare(Some(a), Some(b), &c.renderer, &opts)
            .map_err(|e| Problem::internal(&e))?;
        let cmps = [cmp];
        let mut r = if markdown {
            (
                [(header::CONTENT_TYPE, "text/markdown; charset=utf-8")],
                report::markdown(&cmps, false, report::MARKDOWN_CAP),
            )
                .into_response()
        } else {
            json(report::json(&cmps))
        };
        r.headers_mut()
            .insert(header::VARY, header::HeaderValue::from_static("accept"));
        Ok(r)
    })
    .await
}

async fn transition(State(c): Shared, Path((from, to)): Path<(String, String)>) -> Response {
    blocking((c.queue_wait, c.work_timeout), move || {
        let loaded = load(&c)?;
        let (a, b) = (find(&loaded, &from)?, find(&loaded, &to)?);
        doc(&crate::transition::plan(a, b))
    })
    .await
}

#[derive(Deserialize)]
pub(super) struct ValidateQuery {
    /// The phase whose file the body replaces; without it, the body is a
    /// new file beside the phases (request.yaml or request.toml).
    phase: Option<String>,
    /// yaml or toml; else from Content-Type, else yaml.
    format: Option<String>,
}

static NEXT_SCRATCH: AtomicU64 = AtomicU64::new(0);

/// A private scratch directory, removed when dropped (a panic included).
/// Created, never reused: a path that already exists (another user's
/// directory or symlink planted in /tmp) is refused, not followed.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn create() -> anyhow::Result<Scratch> {
        use std::os::unix::fs::DirBuilderExt;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!(
            "scaleplan-serve-{}-{}-{nanos:08x}",
            std::process::id(),
            NEXT_SCRATCH.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| anyhow::anyhow!("creating a scratch directory: {e}"))?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn validate(
    State(c): Shared,
    Query(q): Query<ValidateQuery>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(rejection) => {
            return Problem::new(rejection.status(), rejection.body_text()).into_response();
        }
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let ext = match q.format.as_deref() {
        Some("yaml") | Some("yml") => "yaml",
        Some("toml") => "toml",
        Some(other) => {
            return Problem::bad_request(format!(
                "format={other}: one of {}",
                SPEC_FORMATS.join(", ")
            ))
            .into_response();
        }
        None if content_type.contains("toml") => "toml",
        None => "yaml",
    };
    blocking((c.queue_wait, c.work_timeout), move || {
        validate_body(&c, q.phase.as_deref(), ext, &body)
    })
    .await
}

/// The body written beside copies of the phases into a scratch directory,
/// then validated as `validate` would, with the diagnostics located in the
/// body's own lines.
fn validate_body(c: &Config, replaces: Option<&str>, ext: &str, body: &[u8]) -> Answer {
    let scratch = Scratch::create().map_err(|e| Problem::internal(&e))?;
    let scratch_dir = scratch.0.clone();
    let result = (|| {
        let scratch = &scratch_dir;
        let mut target = format!("request.{ext}");
        for entry in std::fs::read_dir(&c.phases)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            // Followed like the loader follows them: a symlinked spec counts.
            if !entry.path().is_file() {
                continue;
            }
            let stem = name.rsplit_once('.').map_or(name.as_str(), |(s, _)| s);
            if replaces == Some(stem) {
                // The body takes that phase's place under its own name
                // (in the syntax the body is written in).
                target = format!("{stem}.{ext}");
                continue;
            }
            std::fs::copy(entry.path(), scratch.join(&name))?;
        }
        if let Some(name) = replaces {
            if target.starts_with("request.") {
                anyhow::bail!("no phase file named {name} in {}", c.phases.display());
            }
        }
        std::fs::write(scratch.join(&target), body)?;
        let loaded = session::load_quiet(&Request::all(scratch))?;
        let (status, mut report) = match loaded {
            Ok(l) => (StatusCode::OK, l.report),
            Err(report) => (StatusCode::UNPROCESSABLE_ENTITY, report),
        };
        // Located in the phases directory, as `validate` would name the
        // file there, not in the scratch copy.
        for d in &mut report.diagnostics {
            for loc in std::iter::once(&mut d.location).chain(d.related.iter_mut()) {
                if let Ok(rel) = loc.file.strip_prefix(scratch) {
                    loc.file = std::sync::Arc::new(c.phases.join(rel));
                }
            }
        }
        anyhow::Ok((status, report))
    })();
    drop(scratch);
    match result {
        Ok((status, report)) => {
            let mut r = doc(&report)?;
            *r.status_mut() = status;
            Ok(r)
        }
        Err(e) if e.to_string().starts_with("no phase file") => {
            Err(Problem::not_found(e.to_string()))
        }
        Err(e) => Err(Problem::internal(&e)),
    }
}

/// `GET /v1/deployment`: `status --format json`, and with monitoring the
/// utilisation `observe --format json` reports (over one second).
#[derive(Serialize)]
pub(super) struct DeploymentDoc {
    status: crate::native::StatusDoc,
    #[serde(skip_serializing_if = "Option::is_none")]
    observation: Option<crate::native::observe::Observation>,
}

async fn deployment(State(c): Shared) -> Response {
    blocking((c.queue_wait, c.work_timeout), move || {
        let status = crate::native::status_report(&c.state).map_err(|e| Problem::internal(&e))?;
        let mut observation = None;
        if status.up && status.monitoring {
            let plan = match crate::native::State::load(&c.state) {
                Ok(Some(state)) => state.plan_options(),
                _ => crate::plan::Options {
                    base_port: status.base_port,
                    writer: None,
                },
            };
            let req = Request {
                plan,
                ..Request::all(&c.phases)
            };
            let loaded = session::load_quiet(&req)
                .map_err(|e| Problem::internal(&e))?
                .map_err(Problem::invalid_specs)?;
            if let Some(p) = status.phase.as_deref().and_then(|n| loaded.planned.get(n)) {
                let observer = crate::native::observe::Observer::new(&c.state, p)
                    .map_err(|e| Problem::internal(&e))?;
                observation = Some(observer.observe(p, Duration::from_secs(1)));
            }
        }
        doc(&DeploymentDoc {
            status,
            observation,
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_paths_are_inside_the_tree() {
        for ok in ["README.md", "compose/docker-compose.yml", "a/b/c.conf"] {
            assert!(inside_tree(ok), "{ok}");
        }
        for bad in [
            "",
            "../etc/passwd",
            "compose/../../etc/passwd",
            "/etc/passwd",
            "compose//x",
            "./README.md",
            "a\\b",
            "a\0b",
        ] {
            assert!(!inside_tree(bad), "{bad:?}");
        }
    }

    #[test]
    fn only_loopback_hosts_pass_without_a_token() {
        for ok in [
            "127.0.0.1:8080",
            "localhost",
            "LOCALHOST:1",
            "[::1]:8080",
            "127.0.0.2",
        ] {
            assert!(loopback_host(ok), "{ok}");
        }
        for bad in [
            "",
            "evil.example:8080",
            "10.0.0.1",
            "127.0.0.1.evil.example",
            "localhost:80@evil.example",
            "127.0.0.1:80:81",
            "[::1]evil",
            "[::1]:",
            "::1",
            "localhost:123456",
        ] {
            assert!(!loopback_host(bad), "{bad}");
        }
    }

    #[test]
    fn markdown_is_chosen_by_format_or_by_preference() {
        let mut h = HeaderMap::new();
        assert!(!wants_markdown(None, &h).unwrap());
        assert!(wants_markdown(Some("markdown"), &h).unwrap());
        h.insert(
            header::ACCEPT,
            "text/markdown, application/json;q=0.5".parse().unwrap(),
        );
        assert!(wants_markdown(None, &h).unwrap());
        h.insert(
            header::ACCEPT,
            "application/json, text/markdown".parse().unwrap(),
        );
        assert!(!wants_markdown(None, &h).unwrap());
        assert!(wants_markdown(Some("xml"), &h).is_err());
    }
}
