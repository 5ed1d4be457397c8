//! Whether the signed-in server can be reached: the header's badge (在线 / 服务器不可达) and the
//! short cut every server-bound path takes while it cannot.
//!
//! The app starts from the saved session and its replica whatever the network does, so a field
//! or office user with the server down sees the board's error, the map over local data and the
//! replica's edits, never a sign-in wall or a window waiting on the server. The client retries a
//! refused connection for about 19 s (fine for a sync, not for a map tile or a click), so the
//! last probe — the app core's TCP probe of the server, within 1.5 s, run by the badge's poll
//! (`server_status`) and before the board is read — is remembered here: while it says offline,
//! the map's `skmap:` requests are answered 503 at once, and the board and every other command
//! that asks the server (through [`on_server`]: the table, statistics, conflicts, geocoder) answer
//! [`AppError::Offline`] at once.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;
use shikong_app_core::{AppError, Device};
use tauri::State;

use crate::commands::{Doing, Shell, blocking};

/// How long a probe's "offline" is trusted without a new one.
const TRUSTED: Duration = Duration::from_secs(30);

/// The last probe: reachable or not, and when.
static LAST: Mutex<Option<(bool, Instant)>> = Mutex::new(None);

fn last() -> std::sync::MutexGuard<'static, Option<(bool, Instant)>> {
    LAST.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Probes the signed-in user's server now (never reachable when signed out) and remembers it.
pub fn probe(d: &Device) -> bool {
    let online = d.online();
    *last() = Some((online, Instant::now()));
    online
}

/// The last probe, less than [`TRUSTED`] old, said the server cannot be reached.
pub fn known_offline() -> bool {
    matches!(*last(), Some((false, at)) if at.elapsed() < TRUSTED)
}

/// [`AppError::Offline`] while [`known_offline`] says so, without trying the server.
pub fn fail_fast() -> Result<(), AppError> {
    if known_offline() { Err(AppError::Offline) } else { Ok(()) }
}

/// [`blocking`] for a command that asks the server: while the last probe said it cannot be
/// reached, the offline error at once instead of after the client's retries.
pub(crate) async fn on_server<T: Send + 'static>(
    shell: &Shell,
    doing: Doing,
    f: impl FnOnce(&mut Device) -> Result<T, AppError> + Send + 'static,
) -> Result<T, String> {
    blocking(shell, doing, move |d| {
        fail_fast()?;
        f(d)
    })
    .await
    .map(|r| r.1)
}

/// [`AppError::Offline`] unless a probe reaches the server now.
pub fn ensure_online(d: &Device) -> Result<(), AppError> {
    if probe(d) { Ok(()) } else { Err(AppError::Offline) }
}

/// The badge's answer.
#[derive(Debug, Clone, Serialize)]
pub struct NetStatus {
    /// The server answered the probe.
    pub online: bool,
    /// The signed-in user's server, when there is a session.
    pub server: Option<String>,
}

/// Probes the server (at most 1.5 s).
#[tauri::command]
pub async fn server_status(shell: State<'_, Shell>) -> Result<NetStatus, String> {
    Ok(blocking(&shell, Doing::Other, |d| {
        Ok(NetStatus { online: probe(d), server: d.session().map(|s| s.server.clone()) })
    })
    .await?
    .1)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn an_offline_probe_is_trusted_for_a_while_and_an_online_one_clears_it() {
        *last() = Some((false, Instant::now()));
        assert!(known_offline());
        assert!(matches!(fail_fast(), Err(AppError::Offline)), "the server is not tried");
        *last() = Some((false, Instant::now().checked_sub(TRUSTED + Duration::from_secs(1)).unwrap()));
        assert!(!known_offline(), "an old probe says nothing");
        *last() = Some((true, Instant::now()));
        assert!(!known_offline());
        assert!(fail_fast().is_ok());
        *last() = None;
        assert!(!known_offline());
    }
}
