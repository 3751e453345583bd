//! The API's endpoints, listed once: the router serves each with its
//! handler and the OpenAPI document describes each, both from this list,
//! so neither can gain or lose an endpoint the other lacks.

use axum::routing::MethodFilter;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    Health,
    Openapi,
    Phases,
    Phase,
    Validation,
    Capacity,
    Files,
    File,
    Diagram,
    Diff,
    Transition,
    Validate,
    Deployment,
}

impl Route {
    /// Every endpoint, in the order the OpenAPI document lists them.
    pub const ALL: [Route; 13] = [
        Route::Health,
        Route::Openapi,
        Route::Phases,
        Route::Phase,
        Route::Validation,
        Route::Capacity,
        Route::Files,
        Route::File,
        Route::Diagram,
        Route::Diff,
        Route::Transition,
        Route::Validate,
        Route::Deployment,
    ];

    /// The path as the router matches it (`{*path}` takes the rest).
    pub fn path(self) -> &'static str {
        match self {
            Route::Health => "/healthz",
            Route::Openapi => "/openapi.json",
            Route::Phases => "/v1/phases",
            Route::Phase => "/v1/phases/{name}",
            Route::Validation => "/v1/phases/{name}/validation",
            Route::Capacity => "/v1/phases/{name}/capacity",
            Route::Files => "/v1/phases/{name}/files",
            Route::File => "/v1/phases/{name}/files/{*path}",
            Route::Diagram => "/v1/phases/{name}/diagram",
            Route::Diff => "/v1/diff",
            Route::Transition => "/v1/transitions/{from}/{to}",
            Route::Validate => "/v1/validate",
            Route::Deployment => "/v1/deployment",
        }
    }

    /// The path as OpenAPI writes it: every parameter `{name}`.
    pub fn openapi_path(self) -> String {
        self.path().replace("{*", "{")
    }

    /// The method in OpenAPI's spelling.
    pub fn method(self) -> &'static str {
        match self {
            Route::Validate => "post",
            _ => "get",
        }
    }

    pub fn filter(self) -> MethodFilter {
        match self.method() {
            "post" => MethodFilter::POST,
            _ => MethodFilter::GET,
        }
    }
}
