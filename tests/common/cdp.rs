//! A small Chrome DevTools Protocol client for browser tests: Debian's
//! headless Chromium driven over `--remote-debugging-pipe` (commands in on
//! fd 3, answers and events out on fd 4, each message JSON ending in NUL).
//! Pages run on the real clock, so live pages (the event stream, long
//! polls) update as they would for a person; tests wait on the page's own
//! DOM changes through promises evaluated in the page.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::oneshot;

pub const CHROMIUM: &str = "/usr/bin/chromium";

/// The flags of every headless run: no sandbox (tests run as root in a
/// container), no GPU, nothing fetched from the network on its own.
pub const HEADLESS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
];

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

pub struct Browser {
    child: std::process::Child,
    commands: Mutex<std::io::PipeWriter>,
    pending: Pending,
    next: AtomicU64,
    _profile: tempfile::TempDir,
}

/// One tab, attached by a flat session.
pub struct Page<'b> {
    browser: &'b Browser,
    session: String,
}

impl Browser {
    /// Start headless Chromium; `None` (with a message naming what is
    /// missing) where it is not installed and `CI` is not set.
    pub fn launch() -> Option<Browser> {
        if !Path::new(CHROMIUM).exists() {
            if std::env::var_os("CI").is_some() {
                panic!(
                    "CI must run the browser tests: install chromium (apt-get install -y chromium)"
                );
            }
            eprintln!(
                "skipping a browser test: {CHROMIUM} is missing (apt-get install -y chromium)"
            );
            return None;
        }
        let profile = tempfile::tempdir().expect("tempdir");
        let (to_browser, commands) = std::io::pipe().expect("pipe");
        let (answers, from_browser) = std::io::pipe().expect("pipe");
        let (cmd_in, ans_out) = (to_browser.as_raw_fd(), from_browser.as_raw_fd());
        let mut cmd = std::process::Command::new(CHROMIUM);
        cmd.args(HEADLESS)
            .arg("--remote-debugging-pipe")
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        // SAFETY: only async-signal-safe calls between fork and exec. The
        // pipe ends are first copied above fd 10 so that placing them on
        // 3 and 4 cannot overwrite one with the other.
        unsafe {
            cmd.pre_exec(move || {
                let a = libc::fcntl(cmd_in, libc::F_DUPFD, 10);
                let b = libc::fcntl(ans_out, libc::F_DUPFD, 10);
                if a < 0 || b < 0 || libc::dup2(a, 3) < 0 || libc::dup2(b, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("chromium starts");
        drop((to_browser, from_browser));
        let pending: Pending = Arc::default();
        let routes = pending.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(answers);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(0, &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                if buf.last() == Some(&0) {
                    buf.pop();
                }
                let Ok(msg) = serde_json::from_slice::<Value>(&buf) else {
                    continue;
                };
                if let Some(id) = msg.get("id").and_then(Value::as_u64) {
                    if let Some(tx) = routes.lock().unwrap().remove(&id) {
                        let _ = tx.send(msg);
                    }
                }
            }
            // The browser is gone: every waiting command learns it.
            routes.lock().unwrap().clear();
        });
        Some(Browser {
            child,
            commands: Mutex::new(commands),
            pending,
            next: AtomicU64::new(1),
            _profile: profile,
        })
    }

    async fn call(&self, session: Option<&str>, method: &str, params: Value) -> Value {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap().insert(id, tx);
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        {
            let mut w = self.commands.lock().unwrap();
            let mut bytes = serde_json::to_vec(&msg).unwrap();
            bytes.push(0);
            w.write_all(&bytes).expect("write to chromium");
        }
        let answer = tokio::time::timeout(Duration::from_secs(60), rx)
            .await
            .unwrap_or_else(|_| panic!("chromium did not answer {method} within 60 s"))
            .unwrap_or_else(|_| panic!("chromium exited during {method}"));
        if let Some(err) = answer.get("error") {
            panic!("chromium refused {method}: {err}");
        }
        answer["result"].clone()
    }

    /// A new tab at `url`, 1280x900.
    pub async fn open(&self, url: &str) -> Page<'_> {
        let target = self
            .call(None, "Target.createTarget", json!({ "url": "about:blank" }))
            .await;
        let attached = self
            .call(
                None,
                "Target.attachToTarget",
                json!({ "targetId": target["targetId"], "flatten": true }),
            )
            .await;
        let page = Page {
            browser: self,
            session: attached["sessionId"]
                .as_str()
                .expect("a session")
                .to_string(),
        };
        page.call(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": false }),
        )
        .await;
        page.call("Page.enable", json!({})).await;
        page.call("Page.navigate", json!({ "url": url })).await;
        page
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Page<'_> {
    async fn call(&self, method: &str, params: Value) -> Value {
        self.browser.call(Some(&self.session), method, params).await
    }

    /// Evaluate `expression` in the page, awaiting it if it is a promise;
    /// its value as JSON. A thrown error fails the test.
    pub async fn eval(&self, expression: &str) -> Value {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": expression, "awaitPromise": true, "returnByValue": true }),
            )
            .await;
        if let Some(e) = r.get("exceptionDetails") {
            panic!("the page threw on {expression}: {e}");
        }
        r["result"]["value"].clone()
    }

    /// Wait, up to `limit`, until `selector` matches an element whose text
    /// contains `text` (any text where empty): a promise in the page that a
    /// MutationObserver resolves. Panics with the page's text on timeout.
    pub async fn wait_for(&self, selector: &str, text: &str, limit: Duration) {
        let expr = format!(
            r#"new Promise((resolve) => {{
                const found = () => [...document.querySelectorAll({sel})].some((e) => e.textContent.includes({text}));
                if (found()) return resolve(true);
                const obs = new MutationObserver(() => {{ if (found()) {{ obs.disconnect(); resolve(true); }} }});
                obs.observe(document, {{ subtree: true, childList: true, attributes: true, characterData: true }});
            }})"#,
            sel = json!(selector),
            text = json!(text),
        );
        if tokio::time::timeout(limit, self.eval(&expr)).await.is_err() {
            let body = self
                .eval("document.body ? document.body.innerText : ''")
                .await;
            panic!("the page never showed {selector} with {text:?} within {limit:?}; it shows:\n{body}");
        }
    }

    /// The page's outer HTML.
    pub async fn html(&self) -> String {
        self.eval("document.documentElement.outerHTML")
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Save a PNG of the viewport at `path`; its size in bytes.
    pub async fn screenshot(&self, path: &Path) -> usize {
        use base64::Engine as _;
        let shot = self
            .call("Page.captureScreenshot", json!({ "format": "png" }))
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("png data"))
            .expect("base64 png");
        std::fs::write(path, &png).expect("write screenshot");
        png.len()
    }
}
