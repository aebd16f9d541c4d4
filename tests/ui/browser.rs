//! Headless Chromium through chromedriver: the driver process (started on
//! port 0, its port read from its readiness line, killed when dropped) and
//! a browser session with the waits and checks the scenarios share.
//!
//! Waiting is polling the page for a condition (a JavaScript expression)
//! until it holds or [`TIMEOUT`] passes; nothing sleeps a fixed time.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::actions::{
    InputSource, KeyAction, KeyActions, MOUSE_BUTTON_LEFT, MouseActions, PointerAction,
};
use fantoccini::elements::Element;
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// How long a wait lasts before the scenario fails (the machine is shared
/// and slow at times; a passing run waits far less).
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(50);

/// The flags Chromium runs with (headless, no sandbox as root, nothing
/// fetched from the network on its own).
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--lang=en-US",
];

/// `PBS_UI_CHROMEDRIVER`, else `chromedriver` from `PATH`.
fn chromedriver_command() -> String {
    std::env::var("PBS_UI_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".to_string())
}

/// `PBS_UI_CHROMIUM`, else Debian's `/usr/bin/chromium` if present (else
/// chromedriver's own choice).
fn chromium_binary() -> Option<String> {
    std::env::var("PBS_UI_CHROMIUM").ok().or_else(|| {
        Path::new("/usr/bin/chromium")
            .exists()
            .then(|| "/usr/bin/chromium".to_string())
    })
}

/// A running chromedriver; killed and reaped when dropped.
pub struct Chromedriver {
    child: Child,
    /// Its URL (`http://127.0.0.1:PORT`).
    pub url: String,
}

impl Chromedriver {
    /// Starts chromedriver on a free port, logging to `log`.
    pub fn start(log: &Path) -> Self {
        let command = chromedriver_command();
        let mut child = Command::new(&command)
            .arg("--port=0")
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| {
                panic!(
                    "cannot start {command:?} ({err}) - install Debian's chromium and chromium-driver (`make test-ui` does, as root) or set PBS_UI_CHROMEDRIVER"
                )
            });
        // "ChromeDriver was started successfully on port 38961." (the line
        // may end without a newline for a while)
        let mut stdout = child.stdout.take().unwrap();
        let mut seen = Vec::new();
        let marker = b"started successfully on port ";
        let port = loop {
            let mut byte = [0u8; 1];
            if stdout.read(&mut byte).unwrap_or(0) == 0 {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "chromedriver exited before it was ready: {}",
                    String::from_utf8_lossy(&seen)
                );
            }
            seen.push(byte[0]);
            if let Some(start) = seen
                .windows(marker.len())
                .position(|window| window == marker)
            {
                let digits = &seen[start + marker.len()..];
                if digits.last().is_some_and(|b| !b.is_ascii_digit()) {
                    let text = String::from_utf8_lossy(digits);
                    let port: u16 = text
                        .trim_end_matches(|c: char| !c.is_ascii_digit())
                        .parse()
                        .unwrap();
                    break port;
                }
            }
        };
        // keep its stdout drained, so it never blocks on a full pipe
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A browser session: a fresh profile and download dir, at 1280x800.
pub struct Browser {
    /// The WebDriver session.
    pub client: Client,
    /// The page (`https://127.0.0.1:PORT/`).
    pub base: String,
    /// Where downloads land.
    pub downloads: tempfile::TempDir,
    _profile: tempfile::TempDir,
    shots: PathBuf,
    prefix: String,
}

impl Browser {
    /// A new session of `driver` for the page at `base`; screenshots go to
    /// `shots`, named `PREFIX-NAME.png`.
    pub async fn start(driver: &Chromedriver, base: &str, shots: &Path, prefix: &str) -> Self {
        let profile = tempfile::tempdir().unwrap();
        let downloads = tempfile::tempdir().unwrap();
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|s| s.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        args.push("--window-size=1280,800".to_string());
        let mut options = json!({
            "args": args,
            "prefs": {
                "download.default_directory": downloads.path(),
                "download.prompt_for_download": false,
                "download.directory_upgrade": true,
                "safebrowsing.enabled": false,
            },
        });
        if let Some(binary) = chromium_binary() {
            options["binary"] = binary.into();
        }
        let capabilities = json!({
            "browserName": "chrome",
            "acceptInsecureCerts": true,
            "goog:chromeOptions": options,
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&driver.url)
            .await
            .unwrap_or_else(|err| panic!("no browser session from chromedriver: {err}"));
        Self {
            client,
            base: base.to_string(),
            downloads,
            _profile: profile,
            shots: shots.to_path_buf(),
            prefix: prefix.to_string(),
        }
    }

    /// Ends the session (Chromium exits).
    pub async fn close(&self) {
        let _ = self.client.clone().close().await;
    }

    /// Opens the page.
    pub async fn open(&self) {
        self.client.goto(&self.base).await.unwrap();
    }

    /// Runs `script` (a function body; `arguments` are `args`) and returns
    /// its result.
    pub async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|err| panic!("script failed: {err}\n{script}"))
    }

    /// Waits until the JavaScript expression `expr` is truthy; returns its
    /// value. Fails (with a screenshot) naming `what` after [`TIMEOUT`].
    pub async fn wait_for(&self, what: &str, expr: &str) -> Value {
        let script = format!("return ({expr});");
        let start = Instant::now();
        loop {
            let value = self.js(&script, vec![]).await;
            let truthy = match &value {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return value;
            }
            if start.elapsed() > TIMEOUT {
                self.screenshot(&format!("timeout-{}", what.replace(' ', "-")))
                    .await;
                let text = self.js("return document.body.innerText;", vec![]).await;
                panic!("waited {TIMEOUT:?} for {what} ({expr}); page text:\n{text}");
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits for an element matching `css` and returns it.
    pub async fn find(&self, css: &str) -> Element {
        let present = format!("document.querySelector({})", json!(css));
        self.wait_for(&format!("element {css}"), &present).await;
        self.client.find(Locator::Css(css)).await.unwrap()
    }

    /// Waits for `css` and clicks it.
    pub async fn click(&self, css: &str) {
        self.find(css)
            .await
            .click()
            .await
            .unwrap_or_else(|err| panic!("click {css}: {err}"));
    }

    /// Waits for `css`, clears it and types `text` into it.
    pub async fn type_into(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    /// The visible text of the first match of `css` (empty if none).
    pub async fn text(&self, css: &str) -> String {
        let value = self
            .js(
                "const el = document.querySelector(arguments[0]); return el ? el.innerText : '';",
                vec![json!(css)],
            )
            .await;
        value.as_str().unwrap_or_default().to_string()
    }

    /// Waits until the text of `css` contains `needle`; returns the text.
    pub async fn wait_text(&self, css: &str, needle: &str) -> String {
        let expr = format!(
            "(() => {{ const el = document.querySelector({}); return el && !el.hidden && el.innerText.includes({}) ? el.innerText : null; }})()",
            json!(css),
            json!(needle)
        );
        let value = self.wait_for(&format!("{needle:?} in {css}"), &expr).await;
        value.as_str().unwrap_or_default().to_string()
    }

    /// Presses and releases `key`, as a keyboard would: the focused
    /// element (or the page) gets it.
    pub async fn press(&self, key: Key) {
        let value: char = key.into();
        let keyboard = KeyActions::new("keyboard".to_string())
            .then(KeyAction::Down { value })
            .then(KeyAction::Up { value });
        self.client.perform_actions(keyboard).await.unwrap();
    }

    /// Gives the focus to `css` and presses Enter on it, as a keyboard
    /// user who reached it would.
    pub async fn press_enter_on(&self, css: &str) {
        self.find(css).await;
        self.js(
            "document.querySelector(arguments[0]).focus();",
            vec![json!(css)],
        )
        .await;
        self.assert_focus(css, "before Enter").await;
        self.press(Key::Enter).await;
    }

    /// Asserts that the first match of `css` has the keyboard focus (`when`
    /// says at which step); else fails naming what has it (`BODY`: the
    /// page, where the browser drops the focus of a disabled control).
    pub async fn assert_focus(&self, css: &str, when: &str) {
        let focused = self
            .js(
                "const a = document.activeElement; \
                 if (a && a === document.querySelector(arguments[0])) { return null; } \
                 return !a ? 'nothing' : a.id ? `#${a.id}` : a.tagName;",
                vec![json!(css)],
            )
            .await;
        assert!(
            focused.is_null(),
            "the focus {when} is on {focused}, not on {css}"
        );
    }

    /// Types `text` with the keyboard into whatever has the focus.
    pub async fn type_keys(&self, text: &str) {
        let mut keyboard = KeyActions::new("keyboard".to_string());
        for value in text.chars() {
            keyboard = keyboard
                .then(KeyAction::Down { value })
                .then(KeyAction::Up { value });
        }
        self.client.perform_actions(keyboard).await.unwrap();
    }

    /// Clicks at viewport position (`x`, `y`) (outside a dialog, say).
    pub async fn click_at(&self, x: f64, y: f64) {
        let mouse = MouseActions::new("mouse".to_string())
            .then(PointerAction::MoveTo {
                duration: None,
                x,
                y,
            })
            .then(PointerAction::Down {
                button: MOUSE_BUTTON_LEFT,
            })
            .then(PointerAction::Up {
                button: MOUSE_BUTTON_LEFT,
            });
        self.client.perform_actions(mouse).await.unwrap();
        self.client.release_actions().await.unwrap();
    }

    /// Logs in with the login form and waits for the keys view.
    pub async fn login(&self, user: &str, password: &str) {
        self.type_into("form.login-form input[name=username]", user)
            .await;
        self.type_into("form.login-form input[name=password]", password)
            .await;
        self.click("form.login-form button[type=submit]").await;
        self.wait_for(
            "the keys view",
            "document.querySelector('#keys-table') && !document.querySelector('#keys-table').hasAttribute('aria-busy')",
        )
        .await;
    }

    /// Resizes the window (the viewport, headless).
    pub async fn resize(&self, width: u32, height: u32) {
        self.client.set_window_size(width, height).await.unwrap();
        let expr = format!("window.innerWidth === {width}");
        self.wait_for("the new window size", &expr).await;
    }

    /// Saves a screenshot as `PREFIX-NAME.png`.
    pub async fn screenshot(&self, name: &str) {
        match self.client.screenshot().await {
            Ok(png) => {
                let path = self.shots.join(format!("{}-{name}.png", self.prefix));
                std::fs::write(&path, png).unwrap();
            }
            Err(err) => eprintln!("    screenshot {name} failed: {err}"),
        }
    }

    /// Everything of the page a reader or script could see as text: the
    /// markup of the document (without the elements matching `except`)
    /// and the values of its fields (outside `except`).
    pub async fn page_text(&self, except: Option<&str>) -> String {
        let value = self
            .js(
                r#"
                const except = arguments[0];
                const copy = document.documentElement.cloneNode(true);
                if (except) {
                    copy.querySelectorAll(except).forEach((el) => el.remove());
                }
                const values = Array.from(document.querySelectorAll('input, textarea, select'))
                    .filter((el) => !except || !el.closest(except))
                    .map((el) => el.value);
                return [copy.outerHTML, document.title, document.cookie, ...values].join('\n');
                "#,
                vec![json!(except)],
            )
            .await;
        value.as_str().unwrap().to_string()
    }

    /// Waits for the file `name` in the download dir to be complete, and
    /// returns its bytes.
    pub async fn downloaded(&self, name: &str) -> Vec<u8> {
        let path = self.downloads.path().join(name);
        let partial = self.downloads.path().join(format!("{name}.crdownload"));
        let start = Instant::now();
        loop {
            if path.is_file() && !partial.exists() {
                let data = std::fs::read(&path).unwrap();
                if !data.is_empty() {
                    return data;
                }
            }
            if start.elapsed() > TIMEOUT {
                let names: Vec<String> = std::fs::read_dir(self.downloads.path())
                    .unwrap()
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect();
                panic!("no download {name} within {TIMEOUT:?}; download dir holds {names:?}");
            }
            tokio::time::sleep(POLL).await;
        }
    }
}
