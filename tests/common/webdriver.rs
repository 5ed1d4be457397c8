//! A small W3C WebDriver client over blocking HTTP, enough to drive the desktop app through
//! `tauri-driver` (which forwards to Debian's `WebKitWebDriver`): sessions, CSS lookups, clicks,
//! typing, text, scripts and screenshots. Every wait is bounded and a failed one names what it
//! waited for.
#![allow(dead_code)]

use std::path::Path;
use std::time::{Duration, Instant};

use base64ct::Encoding as _;
use serde_json::{Value as Json, json};

/// The element reference key of the W3C protocol.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Session {
    http: reqwest::blocking::Client,
    base: String,
    id: String,
}

fn value(r: reqwest::blocking::Response, what: &str) -> Result<Json, String> {
    let status = r.status();
    let body: Json = r.json().map_err(|e| format!("{what}: answer is not JSON: {e}"))?;
    if status.is_success() { Ok(body["value"].clone()) } else { Err(format!("{what}: {status}: {body}")) }
}

impl Session {
    /// Opens a session on the driver at `base` (`http://127.0.0.1:PORT`) with `capabilities`
    /// (the `alwaysMatch` object).
    pub fn new(base: &str, capabilities: Json) -> Session {
        let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(120)).build().unwrap();
        let body = json!({"capabilities": {"alwaysMatch": capabilities}});
        // A connection closed without an answer (the driver still starting) is tried again; an
        // answer, even a refusal, is final.
        let mut tries = 0;
        let r = loop {
            match http.post(format!("{base}/session")).json(&body).send() {
                Ok(r) => break r,
                Err(e) if tries < 5 && !e.is_timeout() => {
                    tries += 1;
                    std::thread::sleep(Duration::from_secs(1));
                }
                Err(e) => panic!("reach the WebDriver server at {base}: {e}"),
            }
        };
        let v = value(r, "new session").unwrap_or_else(|e| panic!("{e}"));
        let id = v["sessionId"].as_str().unwrap_or_else(|| panic!("no session id in {v}")).to_owned();
        Session { http, base: base.to_owned(), id }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/session/{}{path}", self.base, self.id)
    }

    fn post(&self, path: &str, body: Json) -> Result<Json, String> {
        let r = self.http.post(self.url(path)).json(&body).send().map_err(|e| format!("POST {path}: {e}"))?;
        value(r, &format!("POST {path}"))
    }

    fn get(&self, path: &str) -> Result<Json, String> {
        let r = self.http.get(self.url(path)).send().map_err(|e| format!("GET {path}: {e}"))?;
        value(r, &format!("GET {path}"))
    }

    /// The first element matching `css`, if any now.
    pub fn try_find(&self, css: &str) -> Option<String> {
        let v = self.post("/element", json!({"using": "css selector", "value": css})).ok()?;
        v[ELEMENT].as_str().map(str::to_owned)
    }

    /// Waits (up to `secs`) for an element matching `css`.
    #[track_caller]
    pub fn find(&self, css: &str, secs: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(e) = self.try_find(css) {
                return e;
            }
            assert!(Instant::now() < deadline, "no element `{css}` after {secs} s; page: {}", self.page_text());
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    #[track_caller]
    pub fn click(&self, css: &str) {
        // A view that re-renders between the lookup and the click leaves a stale reference: look
        // the element up again.
        let mut tries = 0;
        loop {
            let e = self.find(css, 30);
            match self.post(&format!("/element/{e}/click"), json!({})) {
                Ok(_) => return,
                Err(err) if tries < 3 && err.contains("stale element") => tries += 1,
                Err(err) => panic!("click `{css}`: {err}"),
            }
        }
    }

    /// Clears the input `css` and types `text` into it.
    #[track_caller]
    pub fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css, 30);
        self.post(&format!("/element/{e}/clear"), json!({})).unwrap_or_else(|e| panic!("clear `{css}`: {e}"));
        self.post(&format!("/element/{e}/value"), json!({"text": text}))
            .unwrap_or_else(|e| panic!("type into `{css}`: {e}"));
    }

    /// The rendered text of `css` (waiting for it to exist).
    #[track_caller]
    pub fn text(&self, css: &str) -> String {
        let e = self.find(css, 30);
        self.get(&format!("/element/{e}/text")).map(|v| v.as_str().unwrap_or_default().to_owned()).unwrap_or_default()
    }

    /// Waits (up to `secs`) until the text of `css` satisfies `ok`; returns it.
    #[track_caller]
    pub fn wait_text(&self, css: &str, secs: u64, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let t = self.try_find(css).and_then(|e| self.get(&format!("/element/{e}/text")).ok());
            let t = t.and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
            if ok(&t) {
                return t;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: `{css}` shows {t:?} after {secs} s; page: {}",
                self.page_text()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and returns its value.
    #[track_caller]
    pub fn execute(&self, script: &str, args: Json) -> Json {
        self.post("/execute/sync", json!({"script": script, "args": args})).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Session::execute`] for polling: a driver error (WebKitWebDriver now and then fails to
    /// read a result while the page is busy: "Could not parse script result") comes back instead
    /// of panicking, so the caller polls again.
    pub fn try_execute(&self, script: &str, args: Json) -> Result<Json, String> {
        self.post("/execute/sync", json!({"script": script, "args": args}))
    }

    /// The page's visible text (for failure messages).
    pub fn page_text(&self) -> String {
        self.post("/execute/sync", json!({"script": "return document.body.innerText", "args": []}))
            .map(|v| v.as_str().unwrap_or_default().to_owned())
            .unwrap_or_else(|e| e)
    }

    /// Saves a PNG screenshot of the window to `path` and returns its size in bytes.
    #[track_caller]
    pub fn screenshot(&self, path: &Path) -> usize {
        // What the last action changed is in the DOM at once, on screen a frame or two later.
        std::thread::sleep(Duration::from_millis(800));
        let v = self.get("/screenshot").unwrap_or_else(|e| panic!("{e}"));
        let png = base64ct::Base64::decode_vec(v.as_str().unwrap_or_default()).expect("base64 screenshot");
        assert!(png.starts_with(b"\x89PNG"), "the screenshot is a PNG");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, &png).unwrap();
        png.len()
    }

    /// Ends the session (the driver closes the app).
    pub fn quit(self) {
        let _ = self.http.delete(self.url("")).send();
    }
}
