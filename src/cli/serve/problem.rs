//! Errors as RFC 9457 problem details (`application/problem+json`).

use super::super::session::DiagnosticsDoc;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Problem {
    /// A URI naming the kind of problem; "about:blank" where the status
    /// says it all.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The located diagnostics, where the specs stop the answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnostics: Option<Box<DiagnosticsDoc>>,
}

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Problem {
        Problem {
            kind: "about:blank".to_owned(),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            diagnostics: None,
        }
    }

    pub fn not_found(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, detail)
    }

    pub fn bad_request(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, detail)
    }

    /// The specs do not load: their diagnostics, located.
    pub fn invalid_specs(report: DiagnosticsDoc) -> Problem {
        Problem {
            kind: "https://scaleplan.invalid/problems/invalid-spec".to_owned(),
            title: "The specs have errors".to_owned(),
            status: StatusCode::UNPROCESSABLE_ENTITY.as_u16(),
            detail: format!(
                "{} error(s), {} warning(s): see diagnostics",
                report.errors, report.warnings
            ),
            diagnostics: Some(Box::new(report)),
        }
    }

    pub fn internal(e: &anyhow::Error) -> Problem {
        Problem::new(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}"))
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_string_pretty(&self).unwrap_or_default() + "\n";
        (
            status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            body,
        )
            .into_response()
    }
}
