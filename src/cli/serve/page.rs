//! The page at `/`: each phase with a bar per capacity resource (how much
//! of it the planned peak uses, the bottleneck marked) and its
//! architecture drawn by Mermaid in the browser.

use super::config::Config;
use super::problem::Problem;
use crate::render::format::thousands;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use std::fmt::Write as _;
use std::sync::Arc;

/// The Mermaid the page loads without --mermaid-js: the version
/// tests/diagrams pins, with its Subresource Integrity hash, so a changed
/// file on the CDN is refused by the browser.
const MERMAID_CDN: &str = "https://cdn.jsdelivr.net/npm/mermaid@11.17.2/dist/mermaid.min.js";
const MERMAID_SRI: &str = "sha384-EOXBFmc3gx5mb+vn0vPvvGqACToJD24hhacX5Yx+8NUUQrHIle/Qi5Bg9o3zKwW2";

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub(super) async fn mermaid_js(State(c): State<Arc<Config>>) -> Response {
    match &c.mermaid_js {
        Some(js) => (
            [
                (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
                (header::CACHE_CONTROL, "max-age=3600"),
            ],
            js.clone(),
        )
            .into_response(),
        None => Problem::not_found("no --mermaid-js given: the page loads Mermaid from its CDN")
            .into_response(),
    }
}

pub(super) async fn index(State(c): State<Arc<Config>>) -> Response {
    let local = c.mermaid_js.is_some();
    let c2 = c.clone();
    let body = tokio::task::spawn_blocking(move || render(&c2, local)).await;
    match body {
        Ok(Ok(html)) => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (
                    header::CONTENT_SECURITY_POLICY,
                    if local {
                        "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:"
                    } else {
                        "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; style-src 'self' 'unsafe-inline'; img-src 'self' data:"
                    },
                ),
            ],
            html,
        )
            .into_response(),
        Ok(Err(p)) => p.into_response(),
        Err(_) => Problem::internal(&anyhow::anyhow!("the page failed to render")).into_response(),
    }
}

fn render(c: &Config, local: bool) -> Result<String, Problem> {
    let loaded = super::phases::load(c)?;
    let mut html = String::new();
    html.push_str(concat!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n",
        "<title>scaleplan</title>\n<style>\n",
        "body{font-family:system-ui,sans-serif;margin:2rem;max-width:80rem;color:#1f2328}\n",
        "section{border:1px solid #d0d7de;border-radius:6px;padding:1rem;margin:1rem 0}\n",
        ".bar{background:#eaeef2;height:.8rem;border-radius:4px;width:20rem;display:inline-block}\n",
        ".bar span{display:block;height:100%;border-radius:4px;background:#2da44e}\n",
        ".bottleneck .bar span{background:#cf222e}\n",
        "td{padding:.15rem .6rem;vertical-align:middle}\n",
        "pre.mermaid{background:#fff}\n",
        "</style>\n</head>\n<body>\n<h1>scaleplan</h1>\n",
        "<p>Each phase with what it carries: a bar per resource shows how much of it the planned peak (users.max) uses; ",
        "the bottleneck is red. JSON: <a href=\"/v1/phases\">/v1/phases</a>, <a href=\"/openapi.json\">/openapi.json</a>.</p>\n",
    ));
    for p in &loaded.planned.phases {
        let spec = p.spec();
        let e = &p.capacity;
        let _ = write!(
            html,
            "<section id=\"phase-{name}\">\n<h2>{name} · {title}</h2>\n<p>carries <strong>{cap}</strong> concurrent users (planned {min}-{max}), headroom {head:.2}x, bottleneck <strong>{bn}</strong></p>\n<table>\n",
            name = escape(p.name()),
            title = escape(&p.title),
            cap = thousands(e.capacity),
            min = thousands(spec.users.min.into()),
            max = thousands(spec.users.max.into()),
            head = e.headroom,
            bn = escape(e.bottleneck.label()),
        );
        for line in &e.lines {
            let (used, carries) = match line.users {
                Some(u) if u > 0 => (
                    (f64::from(e.users_max) / u as f64 * 100.0).min(100.0),
                    format!("{} users", thousands(u)),
                ),
                Some(_) => (100.0, "0 users".to_owned()),
                None => (0.0, "not per user".to_owned()),
            };
            let class = if line.resource == e.bottleneck {
                " class=\"bottleneck\""
            } else {
                ""
            };
            let _ = writeln!(
                html,
                "<tr{class} data-resource=\"{res}\"><td>{label}</td><td><span class=\"bar\"><span style=\"width:{used:.0}%\"></span></span></td><td>{used:.0}% at peak</td><td>{carries}</td></tr>",
                res = serde_json::to_value(line.resource)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                label = escape(line.resource.label()),
            );
        }
        let diagram = crate::render::diagram::architecture(p).to_mermaid();
        let _ = write!(
            html,
            "</table>\n<pre class=\"mermaid\" id=\"diagram-{name}\">\n{}</pre>\n</section>\n",
            escape(&diagram),
            name = escape(p.name()),
        );
    }
    if local {
        html.push_str("<script src=\"/assets/mermaid.min.js\"></script>\n");
    } else {
        let _ = writeln!(
            html,
            "<script src=\"{MERMAID_CDN}\" integrity=\"{MERMAID_SRI}\" crossorigin=\"anonymous\"></script>"
        );
    }
    html.push_str(concat!(
        "<script>\n",
        "mermaid.initialize({startOnLoad: false, securityLevel: 'strict'});\n",
        "mermaid.run({querySelector: 'pre.mermaid'})\n",
        "  .then(() => { document.body.dataset.rendered = document.querySelectorAll('pre.mermaid svg').length; })\n",
        "  .catch((e) => { document.body.dataset.error = String(e); });\n",
        "</script>\n</body>\n</html>\n",
    ));
    Ok(html)
}
