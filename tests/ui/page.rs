//! The page itself: what the daemon sends with it, the policy the browser
//! enforces, a refused login, an expired session and logging out.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use serde_json::json;

use proxmox_time::epoch_i64;

use pbs_keystore::auth_helpers::TICKET_LIFETIME;
use pbs_test_kit::https;

use crate::browser::Browser;
use crate::{ALICE, Env};

/// The value of header `name` in a raw answer (names compared in lower case).
fn header<'a>(answer: &'a https::Answer, name: &str) -> Option<&'a str> {
    let head = answer.text.split("\r\n\r\n").next().unwrap_or_default();
    head.lines().skip(1).find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then_some(value.trim())
    })
}

/// Asserts the headers every answer of the page carries.
fn assert_page_headers(answer: &https::Answer, what: &str) {
    let csp = header(answer, "content-security-policy")
        .unwrap_or_else(|| panic!("{what}: no Content-Security-Policy:\n{}", answer.text));
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
        "require-trusted-types-for 'script'",
    ] {
        assert!(
            csp.contains(directive),
            "{what}: {directive} missing in {csp}"
        );
    }
    assert!(!csp.contains("unsafe"), "{what}: {csp}");
    assert_eq!(header(answer, "x-frame-options"), Some("DENY"), "{what}");
    assert_eq!(
        header(answer, "x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
}

/// The daemon's headers, cache policy and refusals over plain HTTPS; then
/// in the browser: the page runs its modules, and no inline script, event
/// handler, markup from a string, script from a `blob:` URL, `javascript:`
/// URL or style attribute takes effect. (`eval` is not tried: code that
/// WebDriver injects is exempt from the page's policy.)
pub async fn headers_and_content_security_policy(env: Arc<Env>, browser: Arc<Browser>) {
    let port = env.daemon.port;
    tokio::task::spawn_blocking(move || {
        let app = the_page_and_its_script_carry_the_headers(port);
        only_fixed_names_and_get_are_served(port, &app);
    })
    .await
    .unwrap();
    the_page_has_no_inline_script(&browser).await;
    let attempts = inject_code_and_a_style(&browser).await;
    the_policy_refused_every_injection(&browser, &attempts).await;
}

/// GET `path` from the daemon on `port`.
fn get(port: u16, path: &str) -> https::Answer {
    https::once(port, "GET", path, &[], None).unwrap()
}

/// The page and its script carry the page's headers; the page is
/// revalidated, the script cached for good under a release path; returns
/// that path.
fn the_page_and_its_script_carry_the_headers(port: u16) -> String {
    let get = |path: &str| get(port, path);
    let page = get("/");
    assert_eq!(page.status, 200, "{}", page.text);
    assert_page_headers(&page, "/");
    assert_eq!(header(&page, "cache-control"), Some("no-cache"));
    assert!(
        header(&page, "content-type")
            .unwrap()
            .starts_with("text/html")
    );
    let app = page
        .body()
        .split("src=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page's script")
        .to_string();
    assert!(
        app.starts_with("/assets/") && app.ends_with("/js/app.js"),
        "{app}"
    );
    let script = get(&app);
    assert_eq!(script.status, 200);
    assert_page_headers(&script, &app);
    let cache = header(&script, "cache-control").unwrap();
    assert!(
        cache.contains("max-age=31536000") && cache.contains("immutable"),
        "{cache}"
    );
    assert!(
        header(&script, "content-type")
            .unwrap()
            .starts_with("text/javascript")
    );
    app
}

/// Another release's path, a traversal, the sources' own paths are 404
/// with the page's headers; another method is 405; the API is as closed
/// as before.
fn only_fixed_names_and_get_are_served(port: u16, app: &str) {
    let get = |path: &str| get(port, path);
    let hash = app.split('/').nth(2).unwrap();
    for path in [
        "/assets/0000000000000000/js/app.js".to_string(),
        format!("/assets/{hash}/../../Cargo.toml"),
        format!("/assets/{hash}/js/../../../src/lib.rs"),
        "/src/www/index.html".to_string(),
        "/index.html".to_string(),
        "/etc/passwd".to_string(),
    ] {
        let answer = get(&path);
        assert_eq!(answer.status, 404, "{path}: {}", answer.text);
        assert_page_headers(&answer, &path);
    }
    let post = https::once(port, "POST", "/", &[], Some(("text/plain", "x"))).unwrap();
    assert_eq!(post.status, 405);
    assert_eq!(header(&post, "allow"), Some("GET"));
    // the API is where it was, and as closed as before
    assert_eq!(get("/api2/json/version").status, 401);
}

/// The login page shows, with no inline script.
async fn the_page_has_no_inline_script(browser: &Browser) {
    browser.open().await;
    browser.find("form.login-form").await;
    browser.screenshot("login").await;
    let inline = browser
        .js(
            "return Array.from(document.scripts).filter((s) => !s.src).length;",
            vec![],
        )
        .await;
    assert_eq!(inline, json!(0), "inline scripts in the page");
}

/// Tries each way of injecting code (script elements, an event handler,
/// markup from a string, a `blob:` script, a `javascript:` URL) and a style
/// attribute, recording the browser's violation reports; returns how each
/// attempt ended and the probe's computed colour.
async fn inject_code_and_a_style(browser: &Browser) -> serde_json::Value {
    browser
        .js(
            r#"
            window.__violations = [];
            document.addEventListener('securitypolicyviolation',
                (e) => window.__violations.push(e.effectiveDirective));
            const attempts = {};
            const attempt = (name, f) => {
                try { f(); attempts[name] = 'not refused at once'; } catch (e) { attempts[name] = e.name; }
            };
            attempt('script', () => {
                const s = document.createElement('script');
                s.text = 'window.__ran = (window.__ran || []).concat("script")';
                document.head.append(s);
            });
            attempt('script-node', () => {
                const s = document.createElement('script');
                s.append(document.createTextNode('window.__ran = (window.__ran || []).concat("script-node")'));
                document.head.append(s);
            });
            attempt('handler', () => {
                const img = document.createElement('img');
                img.setAttribute('onerror', 'window.__ran = (window.__ran || []).concat("handler")');
                img.src = '/no-such-image.png';
                document.body.append(img);
            });
            attempt('markup', () => document.body.insertAdjacentHTML('beforeend',
                '<img src="/no-such-image.png" onerror="window.__ran = (window.__ran || []).concat(\'markup\')">'));
            attempt('blob-script', () => {
                const s = document.createElement('script');
                s.src = URL.createObjectURL(new Blob(['window.__ran = (window.__ran || []).concat("blob")'],
                    {type: 'text/javascript'}));
                document.head.append(s);
            });
            attempt('javascript-url', () => {
                const a = document.createElement('a');
                a.href = 'javascript:window.__ran = (window.__ran || []).concat("url")';
                document.body.append(a);
                a.click();
            });
            const probe = document.createElement('p');
            probe.textContent = 'style probe';
            probe.setAttribute('style', 'color: rgb(255, 0, 0)');
            document.body.append(probe);
            attempts.styleColor = getComputedStyle(probe).color;
            return attempts;
            "#,
            vec![],
        )
        .await
}

/// No injected code ran, the style attribute did not apply, and the
/// browser reported script, style attribute and trusted types violations.
async fn the_policy_refused_every_injection(browser: &Browser, attempts: &serde_json::Value) {
    // wait for the browser's reports (events come after the attempts) and
    // for every image to have failed, so a handler would have run by now
    browser
        .wait_for(
            "the policy violation reports",
            "window.__violations.length >= 5 && Array.from(document.images).every((i) => i.complete)",
        )
        .await;
    let ran = browser.js("return window.__ran || [];", vec![]).await;
    assert_eq!(ran, json!([]), "inline code ran; attempts: {attempts}");
    assert_ne!(
        attempts["styleColor"],
        json!("rgb(255, 0, 0)"),
        "a style attribute applied"
    );
    let violations = browser.js("return window.__violations;", vec![]).await;
    let violations: Vec<&str> = violations
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    for directive in ["script-src", "style-src-attr", "require-trusted-types-for"] {
        assert!(
            violations.iter().any(|v| v.starts_with(directive)),
            "no {directive} violation reported: {violations:?}; attempts: {attempts}"
        );
    }
}

/// A wrong password is refused in the server's words next to the button;
/// empty fields are caught before asking.
pub async fn wrong_password_shows_an_error(_env: Arc<Env>, browser: Arc<Browser>) {
    browser.open().await;
    browser.click("form.login-form button[type=submit]").await;
    browser
        .wait_text(".login-error", "Enter a user name and a password")
        .await;
    browser
        .type_into("form.login-form input[name=username]", ALICE.0)
        .await;
    browser
        .type_into(
            "form.login-form input[name=password]",
            "not alice's password",
        )
        .await;
    browser.click("form.login-form button[type=submit]").await;
    let text = browser
        .wait_text(".login-error", "authentication failure")
        .await;
    assert!(text.contains("Login failed"), "{text}");
    browser.screenshot("login-error").await;
    let state = browser
        .js(
            "return [document.querySelector('input[name=password]').value, document.getElementById('user').hidden, document.cookie];",
            vec![],
        )
        .await;
    assert_eq!(state, json!(["", true, ""]), "after a refused login");
    // the realm is added when left out
    browser
        .type_into("form.login-form input[name=username]", "alice")
        .await;
    browser
        .type_into("form.login-form input[name=password]", ALICE.1)
        .await;
    browser.click("form.login-form button[type=submit]").await;
    browser.wait_text("#user .userid", ALICE.0).await;
}

/// A ticket of `user` created `age` seconds ago, signed with the daemon's
/// key (as the daemon would have issued it then).
fn ticket_of_age(env: &Env, user: &str, age: i64) -> String {
    let pem = std::fs::read(env.config_path().join("authkey.key")).unwrap();
    let key = openssl::pkey::PKey::private_key_from_pem(&pem).unwrap();
    let data = format!("PBS:{user}:{:08X}", epoch_i64() - age);
    let mut signer = openssl::sign::Signer::new_without_digest(&key).unwrap();
    let signature = signer.sign_oneshot_to_vec(data.as_bytes()).unwrap();
    format!("{data}::{}", STANDARD_NO_PAD.encode(signature))
}

async fn set_ticket_cookie(browser: &Browser, ticket: &str) {
    browser
        .js(
            "document.cookie = 'PBSAuthCookie=' + encodeURIComponent(arguments[0]) + '; Path=/; Secure; SameSite=Strict';",
            vec![json!(ticket)],
        )
        .await;
}

/// A reload keeps the session; a ticket past its lifetime ends it with a
/// message, whether the server refuses it or the page notices first;
/// logging out forgets the ticket.
pub async fn session_expiry_and_logout_show_their_message(env: Arc<Env>, browser: Arc<Browser>) {
    browser.open().await;
    browser.login(ALICE.0, ALICE.1).await;
    // a reload resumes the session from the cookie
    browser.client.refresh().await.unwrap();
    browser.wait_text("#user .userid", ALICE.0).await;
    browser.find("#keys-table tbody tr").await;

    // the ticket expires while the page is open: the next request is
    // refused and the page says why
    let expired = ticket_of_age(&env, ALICE.0, TICKET_LIFETIME + 60);
    set_ticket_cookie(&browser, &expired).await;
    browser.click("#refresh-keys").await;
    let notice = browser
        .wait_text(".session-notice", "session has expired")
        .await;
    assert!(notice.contains("Log in again"), "{notice}");
    browser.screenshot("session-expired").await;
    let state = browser
        .js(
            "return [document.cookie, document.querySelector('input[name=username]').value, document.activeElement.name];",
            vec![],
        )
        .await;
    assert_eq!(
        state,
        json!(["", ALICE.0, "password"]),
        "the expired ticket is forgotten, the user name kept"
    );
    assert!(
        env.daemon.log_text().contains("msg=ticket expired"),
        "the daemon refused the ticket for its age:\n{}",
        env.daemon.log_text()
    );

    // a reload with an expired ticket: the page knows before asking
    set_ticket_cookie(&browser, &expired).await;
    browser.client.refresh().await.unwrap();
    browser
        .wait_text(".session-notice", "Your session has expired")
        .await;
    browser.find("form.login-form").await;

    // logging out
    browser.login(ALICE.0, ALICE.1).await;
    browser.click("#logout").await;
    browser
        .wait_text(".session-notice", "You have logged out")
        .await;
    let cookie = browser.js("return document.cookie;", vec![]).await;
    assert_eq!(cookie, json!(""), "logout forgets the ticket");
    browser.screenshot("logged-out").await;
    browser.client.refresh().await.unwrap();
    browser.find("form.login-form").await;
    let notice = browser
        .js("return document.querySelector('.session-notice');", vec![])
        .await;
    assert_eq!(
        notice,
        json!(null),
        "a fresh page after logout has no notice"
    );
}
