//! What the desktop map's tools ask the server: locating an address (`GET /geocode?q=`); the
//! search box's suggestions are [`SyncClient::suggest`].

use shikong_protocol::api::GeocodeResponse;
use shikong_protocol::url::encode_component;

use crate::{Result, SyncClient, SyncError};

const GEOCODE: &str = "/geocode";

impl SyncClient {
    /// `GET /geocode?q=` as the signed-in user: the best match of an address (or why none).
    pub fn geocode(&self, q: &str) -> Result<GeocodeResponse> {
        let route = format!("{GEOCODE}?q={}", encode_component(q));
        let r = Self::check(self.send(&|| self.http.get(self.url(&route)))?)?;
        Self::json(r).map_err(|e| SyncError::Protocol(format!("{GEOCODE}: {e}")))
    }
}
