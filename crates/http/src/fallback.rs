//! Requests no route took: 405 (with `Allow`) when the path exists with other methods —
//! known from the OpenAPI document, so the answer follows the real routes — else 404.

use crate::error::ApiError;
use actix_web::dev::ResourceDef;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use inventiv_domain::ErrorCode;

/// Every documented path with its methods.
pub struct KnownRoutes(Vec<(ResourceDef, Vec<String>)>);

impl KnownRoutes {
    pub fn from_openapi(doc: &utoipa::openapi::OpenApi) -> Self {
        let routes = doc
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let value = serde_json::to_value(item).unwrap_or_default();
                let methods = ["get", "put", "post", "delete", "patch", "head", "options"]
                    .iter()
                    .filter(|m| value.get(**m).is_some())
                    .map(|m| m.to_uppercase())
                    .collect();
                (ResourceDef::new(path.as_str()), methods)
            })
            .collect();
        Self(routes)
    }

    /// The methods of the parameter-free route spelled exactly `path`, if there is one.
    fn allowed_literally(&self, path: &str) -> Option<&[String]> {
        self.0
            .iter()
            .find(|(def, _)| def.pattern() == Some(path))
            .map(|(_, m)| m.as_slice())
    }

    fn allowed(&self, path: &str) -> Option<&[String]> {
        self.0
            .iter()
            .find(|(def, _)| def.is_match(path))
            .map(|(_, m)| m.as_slice())
    }
}

pub async fn handler(req: HttpRequest, known: web::Data<KnownRoutes>) -> HttpResponse {
    let id = crate::request_context::current_request_id().unwrap_or_default();
    match known.allowed(req.path()) {
        Some(methods) => method_not_allowed(&req, methods, &id),
        None => ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, "No such route.")
            .to_response(&id),
    }
}

fn method_not_allowed(req: &HttpRequest, methods: &[String], id: &str) -> HttpResponse {
    let mut res = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::MethodNotAllowed,
        format!(
            "{} is not allowed here; allowed: {}.",
            req.method(),
            methods.join(", ")
        ),
    )
    .to_response(id);
    if let Ok(value) = header::HeaderValue::from_str(&methods.join(", ")) {
        res.headers_mut().insert(header::ALLOW, value);
    }
    res
}

/// A path parameter that does not parse names no resource: 404 — unless the path is, letter
/// for letter, another route of different methods (`DELETE /auth/sessions/revoke-others` hits
/// `DELETE /auth/sessions/{id}`, but names the `POST`-only revoke-others resource): 405.
pub fn path_error(req: &HttpRequest) -> HttpResponse {
    let id = crate::request_context::current_request_id().unwrap_or_default();
    let literal = req
        .app_data::<web::Data<KnownRoutes>>()
        .and_then(|known| known.allowed_literally(req.path()));
    match literal {
        Some(methods) if !methods.iter().any(|m| m == req.method().as_str()) => {
            method_not_allowed(req, methods, &id)
        }
        _ => ApiError::not_found().to_response(&id),
    }
}
