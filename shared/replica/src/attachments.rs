//! Attachments (photos, documents): content-addressed by SHA-256, deduplicated, each with its
//! evidence metadata (举证照片: capture time, position, heading, device). The device keeps a blob
//! until the server has confirmed it holds the same bytes; the upload itself is the sync client's.

use jiff::Timestamp;
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{ReplicaError, Result};
use crate::replica::Replica;

/// Largest attachment a replica takes (a phone photo is 2–8 MiB; a scanned PDF rarely 30).
pub const MAX_ATTACHMENT_BYTES: u64 = 50 * 1024 * 1024;

/// Where and when a photo was taken, and by which device (举证照片 metadata). Kept with the blob.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    pub capture_time: Timestamp,
    /// CGCS2000 longitude/latitude of the camera, when known.
    pub lon: Option<f64>,
    pub lat: Option<f64>,
    /// Degrees clockwise from north, `[0, 360)`, when known.
    pub heading: Option<f64>,
    pub device: Option<String>,
}

impl Evidence {
    fn check(&self) -> Result<()> {
        let bad = |m: String| Err(ReplicaError::BadEvidence(m));
        match (self.lon, self.lat) {
            (Some(lon), Some(lat)) => {
                if !(-180.0..=180.0).contains(&lon) || !(-90.0..=90.0).contains(&lat) {
                    return bad(format!("position ({lon}, {lat}) is not a longitude/latitude"));
                }
            }
            (None, None) => {}
            _ => return bad("longitude and latitude come together".into()),
        }
        if let Some(h) = self.heading
            && !(0.0..360.0).contains(&h)
        {
            return bad(format!("heading {h} is not in [0, 360) degrees"));
        }
        Ok(())
    }
}

/// An attachment as listed (without its bytes).
#[derive(Debug, Clone, PartialEq)]
pub struct AttachmentInfo {
    /// Lowercase hex SHA-256 of the bytes.
    pub sha256: String,
    pub mime: String,
    pub size: u64,
    pub evidence: Evidence,
    pub confirmed: bool,
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

impl Replica {
    /// Stores an attachment; returns its SHA-256 (hex), which field values refer to. Adding the
    /// same bytes again stores nothing new (the first evidence stays).
    pub fn add_attachment(&mut self, bytes: &[u8], mime: &str, evidence: &Evidence) -> Result<String> {
        let size = bytes.len() as u64;
        if size > MAX_ATTACHMENT_BYTES {
            return Err(ReplicaError::AttachmentTooLarge { size, max: MAX_ATTACHMENT_BYTES });
        }
        if mime.trim().is_empty() || !mime.contains('/') {
            return Err(ReplicaError::BadEvidence(format!("`{mime}` is not a MIME type such as image/jpeg")));
        }
        evidence.check()?;
        let sha = sha256_hex(bytes);
        let evidence = serde_json::to_string(evidence).map_err(|e| ReplicaError::BadEvidence(e.to_string()))?;
        self.conn.execute(
            "INSERT OR IGNORE INTO sk_blobs (sha256, mime, size, data, evidence, confirmed, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, 0, strftime('%Y-%m-%dT%H:%M:%fZ','now'))",
            params![sha, mime, size as i64, bytes, evidence],
        )?;
        Ok(sha)
    }

    /// The bytes of an attachment.
    pub fn attachment(&self, sha256: &str) -> Result<Vec<u8>> {
        self.conn
            .query_row("SELECT data FROM sk_blobs WHERE sha256 = ?1", [sha256.to_ascii_lowercase()], |r| r.get(0))
            .optional()?
            .ok_or_else(|| ReplicaError::NoSuchAttachment(sha256.to_owned()))
    }

    /// Attachments the server has not yet confirmed, oldest first: what the sync client uploads.
    pub fn unconfirmed_attachments(&self) -> Result<Vec<AttachmentInfo>> {
        self.list_attachments("WHERE confirmed = 0")
    }

    /// Every attachment the replica holds.
    pub fn attachments(&self) -> Result<Vec<AttachmentInfo>> {
        self.list_attachments("")
    }

    fn list_attachments(&self, filter: &str) -> Result<Vec<AttachmentInfo>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT sha256, mime, size, evidence, confirmed FROM sk_blobs {filter} ORDER BY created_at, sha256"
        ))?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, bool>(4)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (sha256, mime, size, evidence, confirmed) = row?;
            let evidence = serde_json::from_str(&evidence)
                .map_err(|e| ReplicaError::Corrupt(format!("evidence of attachment {sha256}: {e}")))?;
            out.push(AttachmentInfo { sha256, mime, size: u64::try_from(size).unwrap_or(0), evidence, confirmed });
        }
        Ok(out)
    }

    /// Marks an attachment as held by the server (after it verified the hash).
    pub fn confirm_attachment(&mut self, sha256: &str) -> Result<()> {
        let n =
            self.conn.execute("UPDATE sk_blobs SET confirmed = 1 WHERE sha256 = ?1", [sha256.to_ascii_lowercase()])?;
        if n == 0 {
            return Err(ReplicaError::NoSuchAttachment(sha256.to_owned()));
        }
        Ok(())
    }

    /// Frees the space of confirmed attachments (the server keeps them); returns how many went.
    pub fn remove_confirmed_attachments(&mut self) -> Result<u64> {
        Ok(self.conn.execute("DELETE FROM sk_blobs WHERE confirmed = 1", [])? as u64)
    }
}
