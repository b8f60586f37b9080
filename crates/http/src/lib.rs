//! The HTTP adapter (actix-web) of the Inventiv control plane.
//!
//! Contract:
//! - Handlers are thin: extract, call one service function, map the result (no SQL, no role
//!   checks here; the domain's policy is applied by the service).
//! - Every error leaves through [`ApiError`], the one place that maps failures to HTTP:
//!   `{"error": code, "message": text, "request_id": id}` (+ `fields`), codes from
//!   `inventiv_domain::ErrorCode` (listed in `docs/errors.md`), never internal text in a 5xx. Errors raised by actix itself (bad JSON, wrong content type,
//!   oversized body, unknown route, wrong method) take the same shape.
//! - Every response carries `X-Request-Id`; every route is described in `/openapi.json`
//!   (collected from the handlers' `#[utoipa::path]` by utoipa-actix-web, so code and document
//!   cannot drift), and `/docs` renders that document without the internet.

mod body_budget;
mod console;
mod cookies;
mod dto;
mod error;
mod extract;
mod fallback;
mod metrics;
pub mod mock_model;
mod request_context;
mod routes;
mod state;

pub use cookies::CookieSettings;
pub use error::ApiError;
pub use metrics::Metrics;
pub use state::AppState;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_actix_web::AppExt;

/// Server knobs that are not business settings.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Worker threads (actix); 0 = one per core.
    pub workers: usize,
    /// Maximum JSON body on management endpoints, in bytes.
    pub json_limit: usize,
    /// Maximum body of a proxied OpenAI request, in bytes.
    pub proxy_body_limit: usize,
    /// Seconds given to in-flight requests on SIGTERM/SIGINT.
    pub shutdown_timeout_secs: u64,
    /// Bytes all request bodies in flight may take together (503 `server_busy` beyond).
    pub max_inflight_body_bytes: usize,
    /// How long a request's body may take to arrive (408 `request_timeout` beyond).
    pub body_timeout: Duration,
    /// Reverse proxies whose `X-Forwarded-For` names the client (see [`client_ip`]).
    pub trusted_proxies: Vec<inventiv_service::network::Cidr>,
    /// Serve the built-in mock model at [`mock_model::PREFIX`] (the mock provider's upstream).
    pub mock_model: bool,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            workers: 0,
            json_limit: 1024 * 1024,
            proxy_body_limit: 10 * 1024 * 1024,
            shutdown_timeout_secs: 10,
            max_inflight_body_bytes: 64 * 1024 * 1024,
            body_timeout: Duration::from_secs(30),
            trusted_proxies: Vec::new(),
            mock_model: false,
        }
    }
}

/// The OpenAPI document of every route, built from the handlers themselves.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, mut doc) = App::new()
        .into_utoipa_app()
        .configure(routes::configure)
        .split_for_parts();
    doc.info = utoipa::openapi::InfoBuilder::new()
        .title("Inventiv control plane")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "Multi-tenant control plane of an LLM-inference platform. Errors are always \
             {\"error\", \"message\", \"request_id\"} with a stable snake_case code.",
        ))
        .build();
    // Handlers in different modules share names (`list`, `create`…): derive each operation id
    // from its method and path instead, which is unique and stable (`post_instances_id_terminate`).
    for (path, item) in doc.paths.paths.iter_mut() {
        let slug: String = path
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect::<String>()
            .split('_')
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join("_");
        let operations = [
            ("get", &mut item.get),
            ("put", &mut item.put),
            ("post", &mut item.post),
            ("delete", &mut item.delete),
            ("patch", &mut item.patch),
        ];
        for (method, operation) in operations {
            if let Some(operation) = operation {
                operation.operation_id = Some(format!("{method}_{slug}"));
                document_generic_errors(operation, method == "get", error::is_openai_path(path));
            }
        }
    }
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .build(),
        ),
    );
    components.add_security_scheme(
        "session_cookie",
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(extract::SESSION_COOKIE))),
    );
    doc
}

/// Adds the errors any operation of its shape can answer, whatever its handler says: the
/// extractors and actix raise them before the handler runs (SPEC §4), so a client must expect
/// them. A handler's own description of the same status is kept.
///
/// On `/v1/*` (`openai`) the error body is OpenAI's shape.
fn document_generic_errors(
    operation: &mut utoipa::openapi::path::Operation,
    read_only: bool,
    openai: bool,
) {
    use utoipa::openapi::path::ParameterIn;
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};

    let has = |place: ParameterIn| {
        operation.parameters.iter().flatten().any(|p| match p {
            RefOr::T(p) => p.parameter_in == place,
            RefOr::Ref(_) => false,
        })
    };
    let has_body = operation.request_body.is_some();
    let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
    // The workspace precondition (SPEC §4 v2) is read by the `Caller` extractor of every
    // authenticated management route.
    let precondition = secured && !openai;
    let mut generic: Vec<(&str, &str)> = Vec::new();
    if has_body || has(ParameterIn::Query) || precondition {
        generic.push((
            "400",
            "`malformed_json`, `invalid_body`, `invalid_query`, `validation_failed`, or `bad_request` (an `X-Inventiv-Workspace` that is neither an id nor `personal`)",
        ));
    }
    if secured {
        generic.push((
            "401",
            "`unauthorized`: no credential, or a revoked, expired or superseded one",
        ));
    }
    let has_path = has(ParameterIn::Path);
    if precondition {
        operation
            .parameters
            .get_or_insert_with(Vec::new)
            .push(workspace_header());
        generic.push((
            "409",
            "`workspace_changed`: `X-Inventiv-Workspace` names a workspace this session is no longer in; nothing was done",
        ));
    }
    // Public writes too: `extract::read_only_keys` refuses any write carrying a key.
    if !read_only && !openai {
        generic.push((
            "403",
            "`api_key_not_allowed`: API keys may only read outside /v1",
        ));
    }
    if has_path {
        generic.push(("404", "`not_found`: no such resource in this workspace"));
    }
    if has_body {
        generic.push(("413", "`payload_too_large`: the body is over the limit"));
        generic.push((
            "503",
            "`server_busy`: too many large bodies in flight (or, where a password is hashed, too many hashes waiting); retry after `Retry-After` seconds",
        ));
        generic.push((
            "415",
            "`unsupported_media_type`: the body is not application/json",
        ));
    }
    for (status, description) in generic {
        operation
            .responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| {
                RefOr::T(
                    ResponseBuilder::new()
                        .description(description)
                        .content(
                            "application/json",
                            ContentBuilder::new()
                                .schema(Some(Ref::from_schema_name(if openai {
                                    "OpenAiErrorBody"
                                } else {
                                    "ErrorBody"
                                })))
                                .build(),
                        )
                        .build(),
                )
            });
    }
}

/// `X-Inventiv-Workspace`: the workspace the client believes it is in.
fn workspace_header() -> utoipa::openapi::RefOr<utoipa::openapi::path::Parameter> {
    use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
    use utoipa::openapi::{ObjectBuilder, RefOr, Required, Type};
    RefOr::T(
        ParameterBuilder::new()
            .name("X-Inventiv-Workspace")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "The workspace the client shows: an organization id, or `personal` (empty: no \
                 claim). When the session is no longer in it, the request is refused (409 \
                 `workspace_changed`) and nothing changes.",
            ))
            .schema(Some(
                ObjectBuilder::new().schema_type(Type::String).pattern(Some(
                    "^(personal|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})?$",
                )),
            ))
            .build(),
    )
}

/// Binds the application to `listener` and returns the running server (await it to serve;
/// it stops gracefully on SIGTERM/SIGINT).
pub fn serve(
    listener: TcpListener,
    state: AppState,
    settings: &HttpSettings,
) -> std::io::Result<Server> {
    let doc = openapi();
    let known = Arc::new(fallback::KnownRoutes::from_openapi(&doc));
    let doc_json = Arc::new(doc.to_json().unwrap_or_else(|_| "{}".to_owned()));
    let json_limit = settings.json_limit;
    let payload_limit = settings.proxy_body_limit;
    let metrics = state.metrics.clone();
    let mock_model = settings.mock_model;
    let state = web::Data::new(state);
    // One budget for the whole server, shared by every worker.
    let budget = web::Data::new(body_budget::BodyBudget::new(
        settings.max_inflight_body_bytes,
        json_limit,
        payload_limit,
        settings.body_timeout,
    ));
    let proxies = web::Data::new(extract::TrustedProxies(settings.trusted_proxies.clone()));
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(proxies.clone())
            .app_data(budget.clone())
            .app_data(web::Data::from(doc_json.clone()))
            .app_data(web::Data::from(known.clone()))
            .app_data(error::json_config(json_limit))
            .app_data(web::PayloadConfig::new(payload_limit))
            .app_data(error::query_config())
            .app_data(error::path_config())
            .wrap(from_fn(body_budget::middleware))
            .wrap(from_fn(extract::read_only_keys))
            .wrap(from_fn(metrics::middleware))
            .wrap(from_fn(request_context::middleware))
            .into_utoipa_app()
            .configure(routes::configure)
            .into_app()
            .configure(console::configure)
            .configure(|cfg| {
                if mock_model {
                    mock_model::configure(cfg);
                }
            })
            .default_service(web::to(fallback::handler))
    })
    .shutdown_timeout(settings.shutdown_timeout_secs)
    .client_request_timeout(Duration::from_secs(30))
    // SPEC §5: what the server writes leaves at once — a streamed token is not held back by
    // Nagle's algorithm until the client acknowledges the previous one (up to 40 ms).
    .tcp_nodelay(true)
    // Runs after actix has set the option; reads it back from the socket, so `/metrics` shows
    // what the kernel holds for every accepted connection (and a test can check it).
    .on_connect(move |connection, _| {
        if let Some(tcp) = connection.downcast_ref::<actix_web::rt::net::TcpStream>() {
            metrics.connection_accepted(tcp.nodelay().unwrap_or(false));
        }
    })
    .listen(listener)?;
    if settings.workers > 0 {
        server = server.workers(settings.workers);
    }
    Ok(server.run())
}
