//! Headless Chromium for the console's tests, driven over WebDriver: Debian's `chromium`
//! and `chromium-driver`. Each test starts its own chromedriver on a free port of
//! loopback and one browser session with a profile of its own (the test runner runs each
//! test in its own process, so nothing could be shared across tests anyway); both go when
//! the [`Browser`] is dropped.
//!
//! Missing Chromium marks the browser tests ignored at build time (`cfg(no_browser)`,
//! see `crates/store/probes.rs`) except under `CI=true`, where [`require`] fails them.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use tempfile::TempDir;

/// The widths every page is photographed at: a laptop and a phone.
pub const WIDTHS: [u32; 2] = [1440, 375];

fn find(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin", "/usr/lib/chromium"].map(PathBuf::from))
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

pub fn chromium() -> Option<PathBuf> {
    find(&["chromium", "chromium-browser"])
}

pub fn chromedriver() -> Option<PathBuf> {
    find(&["chromedriver"])
}

/// Stops `test` when this machine has no Chromium to drive.
pub fn require(test: &str) {
    if chromium().is_none() || chromedriver().is_none() {
        panic!(
            "{test}: Chromium is not installed (chromium or chromedriver not found; apt-get install chromium chromium-driver)"
        );
    }
}

/// Where the screenshots go: `target/console-screenshots`, or `MAILPLANE_SCREENSHOTS`.
pub fn screenshot_dir() -> PathBuf {
    std::env::var_os("MAILPLANE_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/console-screenshots")
        })
}

pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: TempDir,
    /// Every page source seen, for checks over all of them.
    pub seen: Vec<String>,
}

impl Browser {
    pub async fn start(test: &str) -> Browser {
        require(test);
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
            l.local_addr().unwrap().port()
        };
        let mut cmd = Command::new(chromedriver().unwrap());
        cmd.arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // A process group of its own, so that the browsers it starts go with it.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let driver = cmd.spawn().expect("chromedriver starts");
        let profile = tempfile::tempdir().expect("a profile directory");
        let caps: serde_json::Map<String, Value> = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium().unwrap(),
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--no-first-run",
                    "--hide-scrollbars",
                    "--force-device-scale-factor=1",
                    "--window-size=1440,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
        })
        .as_object()
        .unwrap()
        .clone();
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(c) => break c,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("{test}: no WebDriver session: {e}"),
            }
        };
        Browser {
            client,
            driver,
            _profile: profile,
            seen: Vec::new(),
        }
    }

    /// Opens `url` and keeps its source.
    pub async fn goto(&mut self, url: &str) {
        self.client.goto(url).await.expect("navigation");
        self.keep().await;
    }

    /// Keeps the current page's source (after a form was sent).
    pub async fn keep(&mut self) -> String {
        let html = self.client.source().await.expect("page source");
        self.seen.push(html.clone());
        html
    }

    pub async fn fill(&self, css: &str, text: &str) {
        let field = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"));
        field.clear().await.expect("clear");
        field.send_keys(text).await.expect("type");
    }

    /// Clicks what `css` finds, waits for the page it leads to (a new document), and
    /// keeps it.
    pub async fn click(&mut self, css: &str) -> String {
        // A mark on the current document: gone once another document is loaded.
        self.client
            .execute("window.__mailplaneOld = true; return true", vec![])
            .await
            .expect("mark the page");
        self.press(css).await;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let loaded = self
                .client
                .execute(
                    "return window.__mailplaneOld !== true && document.readyState === 'complete'",
                    vec![],
                )
                .await
                .ok()
                .and_then(|v| v.as_bool())
                .unwrap_or(false);
            if loaded {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{css}: no new page after the click"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.keep().await
    }

    /// Clicks what `css` finds, on the same page (a checkbox, an option, a summary).
    pub async fn press(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    pub async fn text(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .text()
            .await
            .expect("text")
    }

    pub async fn exists(&self, css: &str) -> bool {
        !self
            .client
            .find_all(Locator::Css(css))
            .await
            .expect("find")
            .is_empty()
    }

    /// Saves the current page at each of [`WIDTHS`], whole (as tall as its content, at
    /// most 8000 px), as `<dir>/<name>-<width>.png`. The page is laid out at that width
    /// through Chromium's own emulation (a window cannot be made taller than the screen).
    pub async fn screenshot(&self, name: &str) {
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("screenshot directory");
        for width in WIDTHS {
            self.emulate(width, 900).await;
            let height = self
                .client
                .execute(
                    "return Math.max(document.documentElement.scrollHeight, document.body.scrollHeight)",
                    vec![],
                )
                .await
                .ok()
                .and_then(|v| v.as_u64())
                .unwrap_or(900)
                .clamp(600, 8000) as u32;
            self.emulate(width, height).await;
            // Readable at this width: nothing makes the page wider than the screen (a
            // phone would zoom the whole page out to show it). Tables scroll in their own
            // box instead.
            let wide = self
                .client
                .execute(
                    &format!("const w = {width}; \
                     return [...document.querySelectorAll('body *')] \
                       .filter(e => e.getBoundingClientRect().right > w + 1 && !(e.parentElement && e.parentElement.closest('.scroll'))) \
                       .slice(0, 5).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))"),
                    vec![],
                )
                .await
                .expect("layout");
            assert_eq!(
                wide,
                json!([]),
                "{name} at {width} px: wider than the screen"
            );
            let png = self.client.screenshot().await.expect("screenshot");
            std::fs::write(dir.join(format!("{name}-{width}.png")), png).expect("write screenshot");
        }
        self.client
            .issue_cmd(Cdp("Emulation.clearDeviceMetricsOverride", json!({})))
            .await
            .expect("emulation cleared");
    }

    async fn emulate(&self, width: u32, height: u32) {
        let metrics = json!({
            "width": width,
            "height": height,
            "deviceScaleFactor": 1,
            // A window of that width rather than a phone's zoomable viewport: a phone
            // loads each page at its width, where an emulated one would keep the zoom of
            // the page it was switched on.
            "mobile": false,
        });
        self.client
            .issue_cmd(Cdp("Emulation.setDeviceMetricsOverride", metrics))
            .await
            .expect("device metrics");
    }

    /// Ends the browser session (the driver goes when this is dropped).
    pub async fn close(&self) {
        let _ = self.client.clone().close().await;
    }
}

/// A DevTools command, sent through chromedriver's `goog/cdp/execute`.
#[derive(Debug)]
struct Cdp(&'static str, Value);

impl fantoccini::wd::WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/goog/cdp/execute",
            session.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        let body = json!({ "cmd": self.0, "params": self.1 });
        (http::Method::POST, Some(body.to_string()))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{}", self.driver.id())])
            .status();
        let _ = self.driver.wait();
    }
}
