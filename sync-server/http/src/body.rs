//! Request bodies: the raw bytes, with size and read errors as problem+json (413 for a body over
//! the configured limit) instead of axum's plain-text rejections.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::IntoResponse;

use super::problem::ApiError;

/// The request body as bytes.
#[derive(Debug)]
pub struct Body(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Bytes::from_request(req, state).await {
            Ok(b) => Ok(Body(b)),
            Err(rejection) => {
                let status = rejection.into_response().status();
                if status == StatusCode::PAYLOAD_TOO_LARGE {
                    Err(ApiError::new(
                        status,
                        "payload-too-large",
                        "the request body is larger than the server accepts (--max-body)",
                    ))
                } else {
                    Err(ApiError::bad_body("the request body could not be read"))
                }
            }
        }
    }
}
