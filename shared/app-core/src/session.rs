//! The signed-in session: password sign-in, device enrolment by the admin's QR code, citizens'
//! self-registration, sign-out, and the sync client every server action goes through. The
//! session itself is saved through the platform's secure storage (see `settings`).

use shikong_protocol as wire;
use shikong_sync_client::{Session, SyncClient};

use crate::platform::Photo;
use crate::{AppError, Device};

/// `server` trimmed of spaces and trailing slashes, when it is an http(s) URL.
fn check_server(server: &str) -> Result<String, AppError> {
    let s = server.trim().trim_end_matches('/');
    if !(s.starts_with("http://") || s.starts_with("https://")) || s.len() < 10 {
        return Err(AppError::input("server", format!("`{s}` is not an http(s) URL")));
    }
    Ok(s.to_owned())
}

impl Device {
    pub fn session(&self) -> Option<&Session> {
        self.settings.session.as_ref()
    }

    /// The client of the signed-in user's server.
    pub(crate) fn client(&self) -> Result<SyncClient, AppError> {
        let s = self.session().ok_or(AppError::NotSignedIn)?;
        self.client_for(&s.server, &s.token)
    }

    /// Whether the signed-in user's server can be reached now (never when signed out).
    pub fn online(&self) -> bool {
        self.session().is_some_and(|s| self.network.online(&s.server))
    }

    fn signed_in(&mut self, session: Session) -> Result<&Session, AppError> {
        self.settings.session = Some(session);
        self.save()?;
        self.settings.session.as_ref().ok_or(AppError::NotSignedIn)
    }

    /// Signs in with a password; the session is saved.
    pub fn login(&mut self, server: &str, username: &str, password: &str) -> Result<&Session, AppError> {
        let server = check_server(server)?;
        if username.trim().is_empty() {
            return Err(AppError::input("username", "required"));
        }
        let session = self.client_for(&server, "")?.login(username.trim(), password)?;
        self.signed_in(session)
    }

    /// Enrols with the link an admin's QR code carries (`shikong://enrol?server=…&code=…`).
    pub fn enrol_link(&mut self, link: &str) -> Result<&Session, AppError> {
        let l = wire::enrolment::EnrolmentLink::parse(link)?;
        let server = check_server(&l.server)?;
        let session = self.client_for(&server, "")?.enrol(&l.code, &self.settings.device_name, std::env::consts::OS)?;
        self.signed_in(session)
    }

    /// Enrols from a photo of the admin's QR code.
    pub fn enrol_photo(&mut self, photo: &Photo) -> Result<&Session, AppError> {
        let text = crate::qr::decode(&photo.bytes)?;
        self.enrol_link(&text)
    }

    /// Takes a photo of the admin's QR code and enrols with it.
    pub fn enrol_with_camera(&mut self) -> Result<&Session, AppError> {
        let photo = self.camera.capture()?;
        self.enrol_photo(&photo)
    }

    /// A citizen's self-registration; returns the server's message (the account waits for an
    /// administrator's approval).
    pub fn register(&self, server: &str, username: &str, password: &str, contact: &str) -> Result<String, AppError> {
        let server = check_server(server)?;
        let contact = Some(contact).filter(|c| !c.trim().is_empty());
        Ok(self.client_for(&server, "")?.register(username.trim(), password, None, contact)?)
    }

    /// Forgets the session (offline areas and queued reports stay).
    pub fn logout(&mut self) -> Result<(), AppError> {
        self.settings.session = None;
        self.save()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit;

    #[test]
    fn bad_input_never_leaves_the_device() {
        let (_dir, mut d) = testkit::device();
        let e = d.login("ftp://x", "zhang", "pw").err();
        assert!(matches!(&e, Some(AppError::Input { field, .. }) if field == "server"), "{e:?}");
        assert!(e.map(|e| e.to_string()).unwrap_or_default().starts_with("server:"));
        let e = d.login("http://127.0.0.1:9", " ", "pw").err();
        assert!(matches!(&e, Some(AppError::Input { field, .. }) if field == "username"), "{e:?}");
        assert!(matches!(d.enrol_link("https://example.com"), Err(AppError::Link(_))));
        assert!(matches!(d.register("example.com", "liu", "pw", ""), Err(AppError::Input { .. })));
        assert!(d.session().is_none() && !d.online());
    }

    #[test]
    fn sign_in_saves_the_session_and_sign_out_forgets_it() {
        let server = testkit::one_answer_server(
            r#"{"token": "tok-1", "user": {"username": "zhang", "role": "inspector"}, "expires_at": "2026-12-31T00:00:00+08:00"}"#,
        );
        let (dir, mut d) = testkit::device();
        let role = d.login(&format!("{server}/"), "zhang", "巡查员密码123").map(|s| s.role.clone());
        assert_eq!(role.ok().as_deref(), Some("inspector"));
        let again = testkit::reopen(dir.path());
        let s = again.session().cloned();
        assert_eq!(s.as_ref().map(|s| (s.server.as_str(), s.token.as_str())), Some((server.as_str(), "tok-1")));
        assert_eq!(again.state().settings.session, s, "the views see who is signed in");
        assert!(!s.is_some_and(|s| s.is_citizen()));
        assert!(d.logout().is_ok());
        assert!(testkit::reopen(dir.path()).session().is_none());
        assert!(!dir.path().join("secrets/session").exists());
    }

    #[test]
    fn a_refused_sign_in_keeps_the_device_signed_out() {
        let server = testkit::one_answer_status(401, r#"{"title": "wrong username or password"}"#);
        let (dir, mut d) = testkit::device();
        let e = d.login(&server, "zhang", "wrong").err();
        assert!(matches!(&e, Some(AppError::Sync(_))), "{e:?}");
        assert!(e.map(|e| e.to_string()).unwrap_or_default().contains("401"));
        assert!(d.session().is_none() && testkit::reopen(dir.path()).session().is_none());
    }
}
