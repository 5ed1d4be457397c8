//! OGC API – Processes for the desktop app's 分析 panel: an asynchronous execution
//! (`POST /processes/{id}/execution` with `Prefer: respond-async`) and a job's dismissal
//! (`DELETE /jobs/{id}`). The panel reads the process list, descriptions, job statuses and
//! results through the map's `skmap:` scheme (plain GETs); only these two writes need the client.

use shikong_protocol::api::processes::{Execute, StatusInfo};
use shikong_protocol::url::encode_component;

use crate::{Result, SyncClient, SyncError};

impl SyncClient {
    /// Starts `process` on `inputs` as a job; its status (`accepted` as a rule). The busy
    /// answers `send` retries (408 timed out in the server's queue, 429) come before a job is
    /// admitted, so a retry does not start a second one.
    pub fn execute_async(
        &self,
        process: &str,
        inputs: serde_json::Map<String, serde_json::Value>,
    ) -> Result<StatusInfo> {
        let route = format!("/processes/{}/execution", encode_component(process));
        let body = Execute { inputs, outputs: None, response: None, subscriber: None };
        let body = serde_json::to_vec(&body).map_err(|e| SyncError::Protocol(e.to_string()))?;
        let r = self.send(&|| {
            self.http
                .post(self.url(&route))
                .header("content-type", "application/json")
                .header("prefer", "respond-async")
                .body(body.clone())
        })?;
        let r = Self::check(r)?;
        Self::json(r).map_err(|e| SyncError::Protocol(format!("{route}: {e}")))
    }

    /// Dismisses job `id` (cancels it, or forgets it when finished); its last status.
    pub fn dismiss_job(&self, id: &str) -> Result<StatusInfo> {
        let route = format!("/jobs/{}", encode_component(id));
        let r = Self::check(self.send(&|| self.http.delete(self.url(&route)))?)?;
        Self::json(r).map_err(|e| SyncError::Protocol(format!("{route}: {e}")))
    }
}
