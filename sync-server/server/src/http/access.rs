//! Who is calling, and whether they may do what they ask. (Temporary: replaced by the
//! shikong-auth integration in the same series of commits.)

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use shikong_model::EntityId;
use shikong_store::Layer;

use super::AppState;
use super::problem::ApiResult;

/// What a caller wants to do with a layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Read,
    Create,
    Edit,
}

/// The authenticated principal of a request, if any.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    user: Option<String>,
}

impl Caller {
    pub fn allowed(&self, _state: &AppState, _layer: &Layer, _action: Action) -> ApiResult<()> {
        Ok(())
    }

    pub fn author(&self) -> String {
        self.user.clone().unwrap_or_else(|| "anonymous".into())
    }

    pub fn device(&self) -> Option<String> {
        None
    }

    pub fn audit_write(&self, _state: &AppState, _layer: &str, _action: &str, _ids: &[EntityId]) {}
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = super::ApiError;

    async fn from_request_parts(_parts: &mut Parts, _state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Caller::default())
    }
}
