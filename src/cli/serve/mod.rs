//! `scaleplan serve`: the plan over HTTP for dashboards, chat bots and CI
//! jobs. Read-mostly: every answer is computed from the phases directory
//! as it is at that request, with the same documents the CLI prints with
//! `--format json`.
//!
//! axum on tokio: the HTTP stack most Rust services run, with tower's
//! layers for the body limit and timeouts, and graceful shutdown built in.

mod api;
mod config;
mod docs;
mod head;
pub(super) mod openapi;
mod page;
mod phases;
mod problem;
mod routes;

use super::args::{EXIT_ERROR, EXIT_OK};
use anyhow::Context;
use config::Config;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The environment variable holding the bearer token, required when the
/// server listens beyond loopback.
pub const TOKEN_VAR: &str = "SCALEPLAN_SERVE_TOKEN";

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Address to listen on. Anything but loopback needs a bearer token
    /// in SCALEPLAN_SERVE_TOKEN (which, once set, every request but
    /// /healthz must carry, on loopback too).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The phases directory, read again at every request.
    #[arg(long, value_name = "DIR", default_value = "phases")]
    phases: PathBuf,
    /// The state directory of a running `up --native` deployment, for
    /// /v1/deployment.
    #[arg(long, value_name = "DIR", default_value = crate::native::DEFAULT_STATE)]
    state: PathBuf,
    /// Serve this copy of mermaid.min.js to the page instead of loading
    /// it from the jsDelivr CDN (pinned, with its integrity hash).
    #[arg(long, value_name = "FILE")]
    mermaid_js: Option<PathBuf>,
    /// Seconds a request may take before it is answered 408.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    request_timeout: u64,
}

pub(super) fn run(args: &Args) -> anyhow::Result<i32> {
    let token = std::env::var(TOKEN_VAR).ok().filter(|t| !t.is_empty());
    if !args.listen.ip().is_loopback() && token.is_none() {
        eprintln!(
            "error: listening on {} needs a bearer token\n  help: set {TOKEN_VAR} (at least 16 characters), or listen on 127.0.0.1",
            args.listen
        );
        return Ok(EXIT_ERROR);
    }
    if token.as_ref().is_some_and(|t| t.len() < 16) {
        eprintln!(
            "error: {TOKEN_VAR} is shorter than 16 characters\n  help: use a random token, e.g. openssl rand -hex 32"
        );
        return Ok(EXIT_ERROR);
    }
    let mermaid_js = match &args.mermaid_js {
        Some(path) => {
            Some(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?)
        }
        None => None,
    };
    let config = Arc::new(Config {
        phases: args.phases.clone(),
        state: args.state.clone(),
        token,
        mermaid_js,
        renderer: crate::render::Renderer::new(None)?,
        openapi: openapi::document(),
        queue_wait: Duration::from_secs((args.request_timeout / 3).max(1)),
        work_timeout: Duration::from_secs(
            args.request_timeout
                .saturating_sub((args.request_timeout / 3).max(1) + 1)
                .max(1),
        ),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        let addr = listener.local_addr()?;
        // The first line names the address (a test or a script that asked
        // for port 0 reads it here).
        crate::say!("serving {} on http://{addr}/", args.phases.display());
        let timeout = Duration::from_secs(args.request_timeout);
        let app = api::router(config, timeout);
        accept(listener, app, timeout).await;
        crate::say!("stopped");
        anyhow::Ok(())
    })?;
    Ok(EXIT_OK)
}

/// Serves each connection with HTTP/1.1 until SIGTERM or Ctrl-C, then
/// finishes the requests in flight. A client whose request headers do not
/// arrive within `timeout` is disconnected (hyper's header read timeout,
/// which needs the timer set here); the body's own time is the router's
/// 408.
async fn accept(listener: tokio::net::TcpListener, app: axum::Router, timeout: Duration) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut stop = std::pin::pin!(shutdown());
    // At most this many connections at once: each holds a file descriptor
    // (and, idle, waits out the header timeout), so the server cannot be
    // run out of them. The next waits to be accepted.
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = &mut stop => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of file descriptors, or a connection reset before it
                // was accepted: the listener itself is fine.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let mut stream = stream;
            // The first head past scaleplan's bounds is answered here, as
            // a problem; hyper would answer it without a body.
            if let head::Screened::Pass(read) = head::screen(&mut stream, timeout).await {
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(timeout)
                    // Past scaleplan's own bound (api::MAX_HEADERS, answered
                    // as a problem), up to where hyper refuses by itself.
                    .max_headers(api::MAX_HEADERS_HTTP)
                    .serve_connection(TokioIo::new(head::Rewind::new(read, stream)), service);
                let _ = watcher.watch(conn).await;
            }
            drop(slot);
        });
    }
    drop(listener);
    // A client that never reads its answer does not hold the stop.
    let _ = tokio::time::timeout(Duration::from_secs(30), graceful.shutdown()).await;
}

/// Connections served at once.
const MAX_CONNECTIONS: usize = 1024;

/// SIGTERM or Ctrl-C: stop accepting, finish what is in flight.
async fn shutdown() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = term => {},
        _ = tokio::signal::ctrl_c() => {},
    }
}
