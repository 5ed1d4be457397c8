//! Attachments (blobs) as the sync engine sees them: what a valid attachment value is, and who may
//! download one. Kept apart from the HTTP routes so that the rule "readers of a layer that
//! references the blob, or its uploader" is decided where every other permission is, through
//! the [`crate::Authorizer`].

use shikong_auth::{Action, Principal};
use shikong_store::Store;

use crate::sync::{Result, layer_access};

/// Whether `s` names an attachment: exactly 64 lowercase hex digits (its SHA-256). Checked
/// before any file is looked up, since attachment values and URL segments come from clients.
pub fn valid_blob_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// At most 80 characters of a client's value, for messages.
pub(crate) fn shown(s: &str) -> String {
    let mut out: String = s.chars().take(80).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

/// Who may download attachment `sha` (a valid id): its recorded uploader, or anyone who may read
/// a layer whose features reference it in any version (admins read every layer). `uploaded_by`
/// is the uploader the store recorded, if any.
pub fn may_read_blob(
    store: &dyn Store,
    auth: &dyn crate::Authorizer,
    who: &Principal,
    sha: &str,
    uploaded_by: Option<&str>,
) -> Result<bool> {
    if who.is_admin() || uploaded_by.is_some_and(|u| u == who.username) {
        return Ok(true);
    }
    for name in store.blob_layers(sha)? {
        let layer = match store.layer(&name) {
            Ok(l) => l,
            Err(shikong_store::StoreError::NoSuchLayer(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        if auth.authorize(Some(who), &layer_access(&layer), Action::Read)?.is_allowed() {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_lowercase_sha256_hex_names_an_attachment() {
        let good = "0123456789abcdef".repeat(4);
        assert!(valid_blob_id(&good));
        for bad in [
            String::new(),
            "a".into(),
            "ab".into(),
            good.to_uppercase(),
            format!("{good}0"),
            good[..63].to_owned(),
            format!("{}井", &good[..61]),
            format!("/{}", &good[..63]),
            format!("../{}", &good[..61]),
        ] {
            assert!(!valid_blob_id(&bad), "{bad}");
        }
        assert_eq!(shown(&"井".repeat(100)).chars().count(), 81);
        assert_eq!(shown("ab"), "ab");
    }
}
