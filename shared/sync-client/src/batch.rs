//! Batch geocoding of a table for the desktop's import (issue 16): `POST /geocode/batch` with the
//! CSV or XLSX file as the body, `GET /geocode/batch/{job}` until it is done (its progress for
//! the app's bar), then `GET …/result` as GeoJSON (the input columns as text plus `status`,
//! `score`, `standard_address`… per row, in the table's row order) and `DELETE` of the job.
//! The server reads the table with its own limits and names the row or column at fault.

use std::time::Duration;

use shikong_protocol::api::{BatchCreated, BatchJob, BatchState};
use shikong_protocol::url::encode_component;

use crate::{Result, SyncClient, SyncError};

const BATCH: &str = "/geocode/batch";

impl SyncClient {
    /// Geocodes `column` of every row of `table` (CSV bytes, UTF-8 or GBK, or an XLSX file) on
    /// the server; `progress(done, total)` as the job reports it. Answers the result as GeoJSON
    /// bytes (rows without a point have a null geometry). The job is removed afterwards.
    pub fn geocode_table(&self, table: Vec<u8>, column: &str, progress: &mut dyn FnMut(u64, u64)) -> Result<Vec<u8>> {
        let route = format!("{BATCH}?column={}&format=geojson", encode_component(column));
        let ty = if table.starts_with(b"PK\x03\x04") {
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        } else {
            "text/csv"
        };
        let r = self.send(&|| self.http.post(self.url(&route)).header("content-type", ty).body(table.clone()))?;
        let created: BatchCreated =
            Self::json(Self::check(r)?).map_err(|e| SyncError::Protocol(format!("{BATCH}: {e}")))?;
        let status = format!("{BATCH}/{}", created.id);
        let mut wait = Duration::from_millis(100);
        loop {
            let r = Self::check(self.send(&|| self.http.get(self.url(&status)))?)?;
            let job: BatchJob = Self::json(r).map_err(|e| SyncError::Protocol(format!("{status}: {e}")))?;
            progress(job.done, job.total);
            match job.state {
                BatchState::Done => break,
                BatchState::Failed => {
                    return Err(SyncError::Server {
                        status: 409,
                        code: None,
                        message: format!("batch geocoding failed: {}", job.error.unwrap_or_default()),
                    });
                }
                BatchState::Running => {
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(Duration::from_secs(2));
                }
            }
        }
        let result = format!("{status}/result");
        let r = Self::check(self.send(&|| self.http.get(self.url(&result)))?)?;
        let body = r.bytes().map_err(|e| self.transport_error(&e))?.to_vec();
        // A job left behind expires on the server; removing it is only tidiness.
        let _ = self.send(&|| self.http.delete(self.url(&status)));
        Ok(body)
    }
}
