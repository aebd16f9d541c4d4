//! The HTTPS API daemon as a client sees it: `proxmox-backup-api` started on
//! 127.0.0.1 with port 0 and a temporary config dir, talked to with hyper's
//! HTTP client over TLS (and raw TLS streams for malformed input).
//!
//! No test sleeps to wait for the daemon: [`Daemon::start`] reads its
//! readiness line. Every daemon is killed when its [`Daemon`] is dropped.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

use pbs_api_types::Userid;
use pbs_config::ConfigDir;
use pbs_keystore::server::throttle::THROTTLED_CHECK_INTERVAL;
use pbs_test_kit::access::{add_token, add_user, grant};
use pbs_test_kit::https::{Client, form_body, tls_connector, tls_stream, urlencode};
use pbs_test_kit::throttle::{Attempt, assert_throttled};
use pbs_test_kit::{ApiDaemon, Manager, TestDir, key_config};

/// Held by the load tests, so their figures are not skewed by each other
/// (the machine has 2 cores).
static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn heavy() -> std::sync::MutexGuard<'static, ()> {
    HEAVY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

// ---------------------------------------------------------------------------
// the daemon

/// A running daemon on its config dir; killed (and reaped) when dropped.
struct Daemon {
    // declared first: dropped (killed) before its config dir is removed
    api: ApiDaemon,
    dir: TestDir,
}

impl Daemon {
    /// Starts the daemon on `dir` and waits for its readiness line.
    fn start(dir: TestDir, extra: &[&str]) -> Self {
        let log_path = dir.path().join("daemon.log");
        let api = ApiDaemon::spawn(ApiDaemon::command(dir.path(), extra), log_path);
        Self { api, dir }
    }

    fn port(&self) -> u16 {
        self.api.port
    }

    fn log(&self) -> String {
        self.api.log_text()
    }

    fn config(&self) -> &ConfigDir {
        &self.dir.config
    }

    /// Sends SIGTERM and returns the exit status.
    fn terminate(&mut self) -> std::process::ExitStatus {
        self.api.signal(nix::sys::signal::Signal::SIGTERM);
        self.api.wait()
    }
}

/// A raw TLS connection, for requests no HTTP library would send.
fn raw_tls(port: u16) -> openssl::ssl::SslStream<TcpStream> {
    tls_stream(port, Duration::from_secs(20)).unwrap()
}

/// Writes `request` and reads until the server closes (or 20 s pass). The
/// server may answer and close before all of `request` is written.
fn raw_exchange(port: u16, request: &[u8]) -> String {
    let mut stream = raw_tls(port);
    let _ = stream.write_all(request);
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

// ---------------------------------------------------------------------------
// access setup

/// Secrets of the tokens of [`setup_access`].
struct Access {
    root: String,
    alice_full: String,
    alice_audit: String,
    alice_none: String,
    alice_off: String,
    bob_admin: String,
    carol: String,
}

const ALICE_PASSWORD: &str = "alice's pass phrase";
const BOB_PASSWORD: &str = "bob-secret-1";
const KEYS: &str = "/system/encryption-keys";

/// Users and tokens:
/// - `root@pam!admin`: Admin on `/` (root@pam itself has everything);
/// - `alice@pbs` (password): Admin on the key store; tokens `full` (Admin
///   on `/`, so effectively alice's), `audit` (Audit only), `none` (no ACL),
///   `off` (disabled, Admin);
/// - `bob@pbs` (password): Audit on key `bobs-key` only; token `admin`
///   (Admin on `/`, limited to bob's);
/// - `carol@pbs` disabled, with a token; `dave@pbs` expired.
fn setup_access(dir: &ConfigDir) -> Access {
    add_user(dir, "alice@pbs", Some(ALICE_PASSWORD), |_| {});
    add_user(dir, "bob@pbs", Some(BOB_PASSWORD), |_| {});
    add_user(dir, "carol@pbs", Some("carol pass"), |u| {
        u.enable = Some(false)
    });
    add_user(dir, "dave@pbs", Some("dave pass"), |u| {
        u.expire = Some(1000)
    });
    let access = Access {
        root: add_token(dir, "root@pam!admin", None),
        alice_full: add_token(dir, "alice@pbs!full", None),
        alice_audit: add_token(dir, "alice@pbs!audit", None),
        alice_none: add_token(dir, "alice@pbs!none", None),
        alice_off: add_token(dir, "alice@pbs!off", Some(false)),
        bob_admin: add_token(dir, "bob@pbs!admin", None),
        carol: add_token(dir, "carol@pbs!t1", None),
    };
    grant(dir, "/", "root@pam!admin", "Admin", true);
    grant(dir, KEYS, "alice@pbs", "Admin", true);
    grant(dir, "/", "alice@pbs!full", "Admin", true);
    grant(dir, KEYS, "alice@pbs!audit", "Audit", true);
    grant(dir, "/", "alice@pbs!off", "Admin", true);
    grant(dir, &format!("{KEYS}/bobs-key"), "bob@pbs", "Audit", false);
    grant(dir, "/", "bob@pbs!admin", "Admin", true);
    grant(dir, "/", "carol@pbs!t1", "Admin", true);
    access
}

fn start_with_access(extra: &[&str]) -> (Daemon, Access) {
    let dir = TestDir::new();
    let access = setup_access(&dir.config);
    (Daemon::start(dir, extra), access)
}

/// Logs in; returns (ticket, CSRF token).
fn login(port: u16, username: &str, password: &str) -> (String, String) {
    let mut client = Client::new(port);
    let form = format!(
        "username={}&password={}",
        urlencode(username),
        urlencode(password)
    );
    let data = client.post_form("access/ticket", &form).data();
    assert_eq!(data["username"], username);
    (
        data["ticket"].as_str().unwrap().to_string(),
        data["CSRFPreventionToken"].as_str().unwrap().to_string(),
    )
}

fn ids(list: &Value) -> Vec<String> {
    let mut ids: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

// ---------------------------------------------------------------------------
// tests

/// `version`, and the list of an empty store: data and digest.
fn version_and_an_empty_list(root: &mut Client) {
    let version = root.get("version").data();
    // upstream's shape: major.minor, then the patch level
    let full = format!(
        "{}.{}",
        version["version"].as_str().unwrap(),
        version["release"].as_str().unwrap()
    );
    assert_eq!(full, env!("CARGO_PKG_VERSION"));
    assert!(version["repoid"].is_string());

    // empty store: data and digest
    let list = root.get("config/encryption-keys");
    let body = list.json();
    assert_eq!(body["data"], json!([]));
    assert_eq!(body["digest"].as_str().unwrap().len(), 64);
    assert!(
        list.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
}

/// Create and import, then list, show and verify; returns the created
/// key's `data` (base64) and raw bytes, and the digest of the list.
fn create_import_list_show_verify(root: &mut Client) -> (String, Vec<u8>, String) {
    // create: the key comes back once, as a KeyConfig
    let created = root
        .post_form("config/encryption-keys", "id=offsite-1")
        .data();
    assert_eq!(created["kdf"], Value::Null);
    let key_b64 = created["data"].as_str().unwrap().to_string();
    let raw = base64::engine::general_purpose::STANDARD
        .decode(&key_b64)
        .unwrap();
    assert_eq!(raw.len(), 32);
    let fingerprint = created["fingerprint"].as_str().unwrap().to_string();

    // import a given key with a JSON body
    let imported = key_config(7);
    let imported_json = imported.to_json().unwrap();
    let resp = root.post_json(
        "config/encryption-keys",
        &json!({"id": "imported.2", "key": imported_json}),
    );
    assert_eq!(resp.data()["fingerprint"], json!(imported.fingerprint));

    // list, show (beyond upstream), verify (beyond upstream)
    let body = root.get("config/encryption-keys").json();
    assert_eq!(ids(&body["data"]), ["imported.2", "offsite-1"]);
    let digest = body["digest"].as_str().unwrap().to_string();
    for key in body["data"].as_array().unwrap() {
        assert!(key.get("data").is_none(), "list must not carry key bytes");
    }
    let shown = root.get("config/encryption-keys/offsite-1").data();
    assert_eq!(shown["fingerprint"], fingerprint.as_str());
    assert!(
        !root
            .get("config/encryption-keys/offsite-1")
            .body
            .contains(&key_b64)
    );
    let verified = root.get("config/encryption-keys/offsite-1/verify").data();
    assert_eq!(verified["ok"], true);
    root.get("config/encryption-keys/nope-1")
        .expect(404, "no such encryption key 'nope-1'");

    (key_b64, raw, digest)
}

/// Archive with the list's `digest` (a stale one is refused), delete;
/// returns the digest of the delete.
fn archive_and_delete_with_digests(root: &mut Client, digest: &str) -> String {
    // toggle archive state with the digest; a stale digest is refused
    root.post_form(
        "config/encryption-keys/offsite-1",
        &format!("digest={digest}"),
    )
    .data();
    root.post_form(
        "config/encryption-keys/offsite-1",
        &format!("digest={digest}"),
    )
    .expect(400, "detected modified configuration");
    let active = root.get("config/encryption-keys").data();
    assert_eq!(ids(&active), ["imported.2"]);
    for spelling in ["1", "true", "True", "yes", "on", "ON"] {
        let all = root
            .get(&format!(
                "config/encryption-keys?include-archived={spelling}"
            ))
            .data();
        assert_eq!(ids(&all), ["imported.2", "offsite-1"], "{spelling}");
    }
    let all = root
        .get("config/encryption-keys?include-archived=FALSE")
        .data();
    assert_eq!(ids(&all), ["imported.2"]);

    // delete: only archived keys, with the current digest
    root.delete("config/encryption-keys/imported.2")
        .expect(400, "not archived");
    let digest = root.get("config/encryption-keys").json()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    root.delete(&format!(
        "config/encryption-keys/offsite-1?digest={}",
        "0".repeat(64)
    ))
    .expect(400, "detected modified configuration");
    let deleted = root.delete(&format!("config/encryption-keys/offsite-1?digest={digest}"));
    assert_eq!(deleted.json(), json!({"data": null}));
    root.delete("config/encryption-keys/offsite-1")
        .expect(404, "no such encryption key");

    digest
}

/// A ticket as the cookie, writes with the CSRF header; returns the ticket
/// and the CSRF token.
fn tickets_and_csrf_tokens(port: u16) -> (String, String) {
    // a ticket works as the cookie; writes need the CSRF header
    let (ticket, csrf) = login(port, "alice@pbs", ALICE_PASSWORD);
    assert!(ticket.starts_with("PBS:alice@pbs:"), "{ticket}");
    let cookie = format!("PBSAuthCookie={ticket}");
    let mut alice = Client::new(port).with_auth(&[("Cookie", &cookie)]);
    assert_eq!(
        ids(&alice.get("config/encryption-keys").data()),
        ["imported.2"]
    );
    alice
        .post_form("config/encryption-keys", "id=by-ticket")
        .expect(401, "CSRFPreventionToken");
    alice
        .send(
            "POST",
            "config/encryption-keys",
            &[("CSRFPreventionToken", "6553F100:forged")],
            Some(form_body("id=by-ticket")),
        )
        .expect(401, "invalid CSRF prevention token");
    let mut alice = alice.with_auth(&[("Cookie", &cookie), ("CSRFPreventionToken", &csrf)]);
    alice
        .post_form("config/encryption-keys", "id=by-ticket")
        .data();
    // the cookie may be percent-encoded, as browsers send it
    let encoded = format!("PBSAuthCookie={}", urlencode(&ticket));
    let mut encoded = Client::new(port).with_auth(&[("Cookie", &encoded)]);
    assert_eq!(encoded.get("version").status, 200);
    // a ticket renews itself when given as the password
    let (renewed, _) = login(port, "alice@pbs", &ticket);
    assert!(renewed.starts_with("PBS:alice@pbs:"));

    (ticket, csrf)
}

#[test]
fn api_every_route_with_token_and_ticket() {
    let (daemon, access) = start_with_access(&[]);
    let port = daemon.port();
    let mut root = Client::token(port, "root@pam!admin", &access.root);
    version_and_an_empty_list(&mut root);
    let (key_b64, raw, digest) = create_import_list_show_verify(&mut root);
    let digest = archive_and_delete_with_digests(&mut root, &digest);
    let (ticket, csrf) = tickets_and_csrf_tokens(port);

    // the access log names who did what, and nothing secret
    let log = daemon.log();
    assert!(
        log.contains("\"POST /api2/json/config/encryption-keys\" 200"),
        "{log}"
    );
    assert!(log.contains("root@pam!admin") && log.contains("alice@pbs"));
    for secret in [
        access.root.as_str(),
        &key_b64,
        &hex::encode(&raw),
        &ticket,
        &csrf,
        ALICE_PASSWORD,
        &urlencode(ALICE_PASSWORD),
        "include-archived",
        &digest,
    ] {
        assert!(!log.contains(secret), "log contains {secret:?}:\n{log}");
    }
    assert!(daemon.config().verify(false).unwrap().is_clean());
}

/// Every API answer, the ones with key bytes or a ticket and every error,
/// may not be stored by any cache nor taken for another content type.
#[test]
fn api_answers_are_never_stored_nor_sniffed() {
    let (daemon, access) = start_with_access(&[]);
    let port = daemon.port();
    let mut root = Client::token(port, "root@pam!admin", &access.root);
    let mut audit = Client::token(port, "alice@pbs!audit", &access.alice_audit);
    let mut anon = Client::new(port);
    let login = format!(
        "username=alice%40pbs&password={}",
        urlencode(ALICE_PASSWORD)
    );
    let answers = [
        ("create", root.post_form("config/encryption-keys", "id=k-1")),
        ("list", root.get("config/encryption-keys")),
        ("show", root.get("config/encryption-keys/k-1")),
        ("login", anon.post_form("access/ticket", &login)),
        ("400", root.post_form("config/encryption-keys", "id=../x")),
        ("401", anon.get("config/encryption-keys")),
        ("403", audit.post_form("config/encryption-keys", "id=k-2")),
        ("404", root.get("config/encryption-keys/nope-1")),
        ("405", root.send("PUT", "config/encryption-keys", &[], None)),
        (
            "415",
            root.send(
                "POST",
                "config/encryption-keys",
                &[],
                Some(("text/plain", b"id=k-3".to_vec())),
            ),
        ),
    ];
    let created = answers[0].1.data();
    assert!(
        created["data"].is_string(),
        "the create answer holds the key"
    );
    for (what, resp) in &answers {
        for (name, value) in [
            ("cache-control", "no-store"),
            ("pragma", "no-cache"),
            ("x-content-type-options", "nosniff"),
        ] {
            assert_eq!(
                resp.headers.get(name).map(|v| v.to_str().unwrap()),
                Some(value),
                "{what} ({}): {:?}",
                resp.status,
                resp.headers
            );
        }
    }
    let statuses: Vec<u16> = answers.iter().map(|(_, resp)| resp.status).collect();
    assert_eq!(statuses, [200, 200, 200, 200, 400, 401, 403, 404, 405, 415]);
}

#[test]
fn api_refuses_missing_wrong_and_malformed_credentials() {
    let (daemon, access) = start_with_access(&[]);
    let port = daemon.port();
    let mut anon = Client::new(port);
    anon.get("config/encryption-keys")
        .expect(401, "authentication required");
    anon.get("version").expect(401, "authentication required");

    let cases: &[(&str, &str)] = &[
        ("Authorization", "PBSAPIToken=root@pam!admin:wrong-secret"),
        ("Authorization", "PBSAPIToken=root@pam!nope:wrong-secret"),
        ("Authorization", "PBSAPIToken=root@pam!admin"),
        ("Authorization", "PBSAPIToken=root@pam:secret"),
        ("Authorization", "PBSAPIToken root@pam!admin:"),
        ("Authorization", "Basic cm9vdDpwYXNz"),
        ("Authorization", "PBSAPIToken=!!!:x"),
        ("Authorization", "PBSAPITokenroot@pam!admin:x"),
        ("Cookie", "PBSAuthCookie=PBS:root@pam:6553F100::AAAA"),
        ("Cookie", "PBSAuthCookie=garbage"),
    ];
    for (name, value) in cases {
        let resp = anon.send("GET", "config/encryption-keys", &[(name, value)], None);
        assert_eq!(resp.status, 401, "{name}: {value}: {}", resp.body);
        assert!(
            resp.body.starts_with("authentication failed - "),
            "{}",
            resp.body
        );
        assert!(!resp.body.contains("wrong-secret"), "{}", resp.body);
    }

    // a right secret with a tampered token name, and disabled or expired ids
    let swapped = format!("PBSAPIToken=alice@pbs!full:{}", access.root);
    anon.send("GET", "version", &[("Authorization", &swapped)], None)
        .expect(401, "invalid credentials");
    Client::token(port, "alice@pbs!off", &access.alice_off)
        .get("version")
        .expect(401, "disabled or expired");
    Client::token(port, "carol@pbs!t1", &access.carol)
        .get("version")
        .expect(401, "disabled or expired");
    wrong_logins_and_forged_tickets_are_401(&mut anon);

    // non-ASCII bytes in the header, sent raw
    let raw = raw_exchange(
        port,
        b"GET /api2/json/version HTTP/1.1\r\nHost: x\r\nAuthorization: PBSAPIToken=a@pbs!t:\xff\xfe\r\nConnection: close\r\n\r\n",
    );
    assert!(raw.starts_with("HTTP/1.1 401"), "{raw}");
    assert!(raw.contains("malformed Authorization header"), "{raw}");

    // the good token still works, and the log has no secret
    assert_eq!(
        Client::token(port, "root@pam!admin", &access.root)
            .get("version")
            .status,
        200
    );
    let log = daemon.log();
    assert!(
        log.contains("authentication failure; rhost=127.0.0.1"),
        "{log}"
    );
    assert!(
        !log.contains(&access.root) && !log.contains("not her password"),
        "{log}"
    );
}

/// Logins: wrong password, unknown user, disabled, expired, root@pam (no
/// PAM here); a ticket of another signing key.
fn wrong_logins_and_forged_tickets_are_401(anon: &mut Client) {
    for (user, password) in [
        ("alice@pbs", "not her password"),
        ("nobody@pbs", "x"),
        ("carol@pbs", "carol pass"),
        ("dave@pbs", "dave pass"),
        ("root@pam", "anything"),
    ] {
        anon.post_form(
            "access/ticket",
            &format!(
                "username={}&password={}",
                urlencode(user),
                urlencode(password)
            ),
        )
        .expect(401, "authentication failure");
    }
    // a ticket of another signing key is refused
    let other = TestDir::new();
    let keys = pbs_keystore::auth_helpers::AuthKeys::load_or_generate(&other.config).unwrap();
    let forged = keys.create_ticket(&Userid::root_userid()).unwrap();
    let cookie = format!("PBSAuthCookie={forged}");
    anon.send("GET", "version", &[("Cookie", &cookie)], None)
        .expect(401, "invalid ticket");
}

#[test]
fn api_checks_privileges_per_key_user_and_token() {
    let (daemon, access) = start_with_access(&[]);
    let port = daemon.port();
    let mut root = Client::token(port, "root@pam!admin", &access.root);
    for id in ["bobs-key", "other-key"] {
        root.post_form("config/encryption-keys", &format!("id={id}"))
            .data();
    }

    // alice's "full" token: Admin on / but limited to alice's Admin on the store
    let mut full = Client::token(port, "alice@pbs!full", &access.alice_full);
    full.post_form("config/encryption-keys", "id=alice-1")
        .data();
    assert_eq!(
        ids(&full.get("config/encryption-keys").data()),
        ["alice-1", "bobs-key", "other-key"]
    );

    // the audit token lists but may not write, though its user may
    let mut audit = Client::token(port, "alice@pbs!audit", &access.alice_audit);
    assert_eq!(ids(&audit.get("config/encryption-keys").data()).len(), 3);
    audit.get("config/encryption-keys/alice-1").data();
    audit
        .post_form("config/encryption-keys", "id=alice-2")
        .expect(403, "missing Sys.Modify on /system/encryption-keys");
    audit
        .post_form("config/encryption-keys/alice-1", "")
        .expect(403, "missing Sys.Modify on /system/encryption-keys/alice-1");
    audit
        .delete("config/encryption-keys/alice-1")
        .expect(403, "Sys.Modify");

    // a token without ACL entries sees nothing
    let mut none = Client::token(port, "alice@pbs!none", &access.alice_none);
    assert_eq!(none.get("config/encryption-keys").data(), json!([]));
    none.get("config/encryption-keys/alice-1")
        .expect(403, "missing Sys.Audit");

    // bob sees his one key (non-propagating entry on that key's path)
    let (ticket, csrf) = login(port, "bob@pbs", BOB_PASSWORD);
    let cookie = format!("PBSAuthCookie={ticket}");
    let mut bob =
        Client::new(port).with_auth(&[("Cookie", &cookie), ("CSRFPreventionToken", &csrf)]);
    assert_eq!(ids(&bob.get("config/encryption-keys").data()), ["bobs-key"]);
    bob.get("config/encryption-keys/other-key")
        .expect(403, "Sys.Audit");
    bob.post_form("config/encryption-keys", "id=bob-2")
        .expect(403, "missing Sys.Modify");
    bob.post_form("config/encryption-keys/bobs-key", "")
        .expect(403, "missing Sys.Modify");
    // bob's Admin token is limited to bob's privileges
    let mut bob_admin = Client::token(port, "bob@pbs!admin", &access.bob_admin);
    assert_eq!(
        ids(&bob_admin.get("config/encryption-keys").data()),
        ["bobs-key"]
    );
    bob_admin
        .post_form("config/encryption-keys", "id=bob-3")
        .expect(403, "missing Sys.Modify");

    // nothing was created by the refused requests
    assert_eq!(
        ids(&root.get("config/encryption-keys?include-archived=1").data()),
        ["alice-1", "bobs-key", "other-key"]
    );
}

#[test]
fn api_refuses_bad_parameters_and_bad_input_naming_the_problem() {
    let (daemon, access) = start_with_access(&[]);
    let port = daemon.port();
    let mut root = Client::token(port, "root@pam!admin", &access.root);
    root.post_form("config/encryption-keys", "id=good-key")
        .data();
    bad_parameters_are_400(&mut root);
    bad_bodies_are_refused(&mut root, port, &access.root);
    bad_paths_methods_and_headers_are_refused(&mut root, port);

    // the daemon is still up and nothing changed
    assert_eq!(
        ids(&root.get("config/encryption-keys").data()),
        ["good-key"]
    );
    assert!(daemon.config().verify(false).unwrap().is_clean());
}

/// Missing, unknown, malformed and duplicate parameters: 400, naming the
/// parameter.
fn bad_parameters_are_400(root: &mut Client) {
    root.post_form("config/encryption-keys", "")
        .expect(400, "parameter 'id': parameter is missing");
    root.post_form("config/encryption-keys", "id=../x")
        .expect(400, "parameter 'id'");
    root.post_form("config/encryption-keys", &format!("id={}", "a".repeat(40)))
        .expect(400, "parameter 'id'");
    root.post_form("config/encryption-keys", "id=good-2&bogus=1")
        .expect(400, "parameter 'bogus'");
    root.post_form("config/encryption-keys", "id=good-2&key=%7Bnot+json")
        .expect(400, "parameter 'key'");
    root.get("config/encryption-keys?include-archived=maybe")
        .expect(400, "parameter 'include-archived'");
    root.get("config/encryption-keys?include-archived=1&include-archived=0")
        .expect(400, "duplicate parameter");
    root.post_form("config/encryption-keys/good-key", "digest=xyz")
        .expect(400, "parameter 'digest'");
    root.get("config/encryption-keys/a%2Fb")
        .expect(400, "parameter 'id'");
    root.get("config/encryption-keys/%ff%fe")
        .expect(400, "parameter 'id'");
    root.get("config/encryption-keys?x=%ff")
        .expect(400, "parameter 'x': value is not valid UTF-8");
    let protected =
        pbs_key_config::KeyConfig::with_key(&[3; 32], b"pass phrase", pbs_api_types::Kdf::PBKDF2)
            .unwrap();
    root.post_json(
        "config/encryption-keys",
        &json!({"id": "prot-1", "key": protected.to_json().unwrap()}),
    )
    .expect(
        400,
        "parameter 'passphrase': the key is passphrase protected",
    );
}

/// Bodies: invalid JSON, not an object, nested values, not UTF-8, wrong
/// type, too large (chunked too).
fn bad_bodies_are_refused(root: &mut Client, port: u16, secret: &str) {
    let post = |client: &mut Client, ctype: &str, body: &[u8]| {
        client.send(
            "POST",
            "config/encryption-keys",
            &[],
            Some((ctype, body.to_vec())),
        )
    };
    post(root, "application/json", b"{\"id\": ").expect(400, "invalid JSON");
    post(root, "application/json", b"[\"id\"]").expect(400, "not a JSON object");
    post(root, "application/json", b"{\"id\": {\"a\": 1}}")
        .expect(400, "parameter 'id': expected a simple value");
    post(root, "application/json", b"{\"id\": \"\xff\xfe\"}").expect(400, "UTF-8");
    post(root, "application/x-www-form-urlencoded", b"id=\xff\xfe").expect(400, "not valid UTF-8");
    post(root, "text/plain", b"id=x-key").expect(415, "unsupported content type");
    let big = vec![b'a'; 64 * 1024 + 1];
    post(root, "application/x-www-form-urlencoded", &big).expect(413, "request body too large");
    // a chunked body without Content-Length is cut at the limit too
    let mut raw =
        b"POST /api2/json/config/encryption-keys HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            .to_vec();
    raw.extend_from_slice(
        format!("Authorization: PBSAPIToken=root@pam!admin:{}\r\n", secret).as_bytes(),
    );
    raw.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
    for _ in 0..5 {
        raw.extend_from_slice(format!("{:x}\r\n", 20000).as_bytes());
        raw.extend_from_slice(&[b'a'; 20000]);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    let answer = raw_exchange(port, &raw);
    assert!(
        answer.starts_with("HTTP/1.1 413"),
        "{}",
        &answer[..answer.len().min(200)]
    );
}

/// Paths, methods, headers: 404, 405, 414, 431, 400.
fn bad_paths_methods_and_headers_are_refused(root: &mut Client, port: u16) {
    root.get("nowhere").expect(404, "no such path");
    root.get("/other/path").expect(404, "below /api2/json");
    root.send("PUT", "config/encryption-keys", &[], None)
        .expect(405, "allowed: GET, POST");
    let long = format!("config/encryption-keys/{}", "a".repeat(5000));
    root.get(&long).expect(414, "request path too long");
    let filler = "x".repeat(20 * 1024);
    root.send("GET", "version", &[("X-Filler", &filler)], None)
        .expect(431, "request headers too large");
    // beyond the read buffer hyper answers 431 itself and closes
    let mut huge = b"GET /api2/json/version HTTP/1.1\r\nHost: x\r\nX-Filler: ".to_vec();
    huge.extend(std::iter::repeat_n(b'y', 100 * 1024));
    huge.extend_from_slice(b"\r\n\r\n");
    let answer = raw_exchange(port, &huge);
    assert!(
        answer.starts_with("HTTP/1.1 431"),
        "{}",
        &answer[..answer.len().min(200)]
    );
    let answer = raw_exchange(port, b"BLAH\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
}

/// Whether a read that waited for the daemon ended because the daemon
/// closed the connection (end of stream, or a reset when the client had
/// written after the close), not because the client's read timed out.
fn closed_by_the_daemon(read: &std::io::Result<usize>) -> bool {
    match read {
        Ok(_) => true,
        Err(err) => !matches!(
            err.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

/// Each stall runs against a daemon whose timeout for that stall is 1 s
/// and whose other timeouts are the long defaults: what the client does
/// without stalling (a TLS handshake, a request head) is never cut off by
/// a short timeout on a loaded machine, so only the stall decides. The
/// client waits 20 s for the close, far beyond the 1 s the daemon takes.
#[test]
fn api_slow_clients_time_out() {
    // a connection that never starts the TLS handshake is closed
    let daemon = Daemon::start(TestDir::new(), &["--handshake-timeout", "1"]);
    let mut tcp = TcpStream::connect(("127.0.0.1", daemon.port())).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let closed = tcp.read_to_end(&mut Vec::new());
    assert!(
        closed_by_the_daemon(&closed),
        "the daemon kept a connection without a handshake open: {closed:?}"
    );
    drop(daemon);

    // a head that never ends, and a connection idle after its handshake,
    // are closed (the head may come after the close on a loaded machine:
    // the write may fail then)
    let daemon = Daemon::start(
        TestDir::new(),
        &["--header-timeout", "1", "--handshake-timeout", "30"],
    );
    for partial_head in [&b"GET /api2/json/version HTTP/1.1\r\nHost: x\r\n"[..], b""] {
        let mut stream = raw_tls(daemon.port());
        let _ = stream.write_all(partial_head);
        let closed = stream.read_to_end(&mut Vec::new());
        assert!(
            closed_by_the_daemon(&closed),
            "the daemon kept a connection open after {:?}: {closed:?}",
            String::from_utf8_lossy(partial_head)
        );
    }
    drop(daemon);

    // a body that never ends: 408 with a message
    let (daemon, access) = start_with_access(&["--body-timeout", "1"]);
    let port = daemon.port();
    let mut stream = raw_tls(port);
    let head = format!(
        "POST /api2/json/config/encryption-keys HTTP/1.1\r\nHost: x\r\nAuthorization: PBSAPIToken=root@pam!admin:{}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nid=slow",
        access.root
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    let answer = String::from_utf8_lossy(&out);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("request body not received within"),
        "{answer}"
    );

    // and the daemon serves on, nothing stored
    let mut client = Client::token(port, "root@pam!admin", &access.root);
    assert_eq!(client.get("version").status, 200);
    assert_eq!(client.get("config/encryption-keys").data(), json!([]));
}

#[test]
fn api_32_parallel_clients_leave_a_consistent_store() {
    let _heavy = heavy();
    let (daemon, access) = start_with_access(&[]);
    let port = daemon.port();
    let secret = Arc::new(access.root.clone());
    let mut root = Client::token(port, "root@pam!admin", &secret);
    for shared in ["shared-a", "shared-b"] {
        root.post_form("config/encryption-keys", &format!("id={shared}"))
            .data();
    }

    let start = Instant::now();
    let threads: Vec<_> = (0..32)
        .map(|n| {
            let secret = Arc::clone(&secret);
            std::thread::spawn(move || {
                let mut client = Client::token(port, "root@pam!admin", &secret);
                let mut kept = Vec::new();
                let mut requests = 0;
                for round in 0..4 {
                    let id = format!("c{n}-r{round}");
                    client
                        .post_form("config/encryption-keys", &format!("id={id}"))
                        .data();
                    // every client also races on the shared keys with digests
                    let body = client
                        .get("config/encryption-keys?include-archived=1")
                        .json();
                    let digest = body["digest"].as_str().unwrap().to_string();
                    let shared = if n % 2 == 0 { "shared-a" } else { "shared-b" };
                    let resp = client.post_form(
                        &format!("config/encryption-keys/{shared}"),
                        &format!("digest={digest}"),
                    );
                    assert!(
                        resp.status == 200 || resp.body.contains("modified configuration"),
                        "{}: {}",
                        resp.status,
                        resp.body
                    );
                    client.get(&format!("config/encryption-keys/{id}")).data();
                    // archive, then delete every other key
                    client
                        .post_form(&format!("config/encryption-keys/{id}"), "")
                        .data();
                    if round % 2 == 0 {
                        client
                            .delete(&format!("config/encryption-keys/{id}"))
                            .data();
                    } else {
                        kept.push(id);
                    }
                    requests += 6;
                }
                (kept, requests)
            })
        })
        .collect();
    let mut expected = vec!["shared-a".to_string(), "shared-b".to_string()];
    let mut requests = 0;
    for thread in threads {
        let (kept, count) = thread.join().unwrap();
        expected.extend(kept);
        requests += count;
    }
    let elapsed = start.elapsed();
    eprintln!(
        "32 parallel clients: {requests} requests in {:.2}s ({:.0} requests/s)",
        elapsed.as_secs_f64(),
        requests as f64 / elapsed.as_secs_f64()
    );
    expected.sort();
    let list = root.get("config/encryption-keys?include-archived=1").data();
    assert_eq!(ids(&list), expected);
    let report = daemon.config().verify(false).unwrap();
    assert!(report.is_clean(), "{report:?}");
    for id in &expected {
        daemon
            .config()
            .encryption_keys()
            .load_key_config(id, false)
            .unwrap();
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn timed_logins(port: u16, count: usize) -> Duration {
    let mut client = Client::new(port);
    let form = format!(
        "username=alice%40pbs&password={}",
        urlencode(ALICE_PASSWORD)
    );
    let samples = (0..count)
        .map(|_| {
            let start = Instant::now();
            let resp = client.post_form("access/ticket", &form);
            assert_eq!(resp.status, 200, "{}", resp.body);
            start.elapsed()
        })
        .collect();
    median(samples)
}

/// After too many failures a user is slowed down, never locked out: an
/// attacker who knows the user name cannot keep the right password out.
#[test]
fn api_a_throttled_user_still_gets_in_with_the_right_password() {
    let (daemon, _access) = start_with_access(&[]);
    let port = daemon.port();
    let mut client = Client::new(port);
    let form = |password: &str| format!("username=alice%40pbs&password={}", urlencode(password));
    for i in 0..5 {
        let resp = client.post_form("access/ticket", &form(&format!("guess-{i}")));
        assert_eq!(resp.status, 401, "{}", resp.body);
    }
    // throttled now: the next check is allowed, and the right password wins
    let resp = client.post_form("access/ticket", &form(ALICE_PASSWORD));
    assert_eq!(resp.status, 200, "{}", resp.body);

    // the success forgot the failures: five more, then guesses within a
    // second of a check are answered 429 without one (on an idle machine
    // all after the first check; a loaded one may be slower than that)
    let attempts: Vec<Attempt> = (0..12)
        .map(|i| Attempt::time(|| client.post_form("access/ticket", &form(&format!("again-{i}")))))
        .collect();
    assert_throttled(&attempts, 5, THROTTLED_CHECK_INTERVAL);
    for attempt in attempts.iter().filter(|a| a.status == 429) {
        assert!(
            attempt.body.contains("try again in 1 seconds"),
            "{}",
            attempt.body
        );
    }
}

#[test]
fn api_thousands_of_bad_logins_do_not_slow_good_ones() {
    let _heavy = heavy();
    let (daemon, access) = start_with_access(&[]);
    let port = daemon.port();
    let baseline = timed_logins(port, 21);

    // 8 attackers, 3000 bad attempts: wrong passwords for an existing user,
    // unknown users, wrong secrets of an existing token
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let attackers: Vec<_> = (0..8)
        .map(|n| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut client = Client::new(port);
                let mut statuses = std::collections::BTreeMap::new();
                for i in 0..375 {
                    let resp = match i % 3 {
                        0 => client.post_form(
                            "access/ticket",
                            &format!("username=bob%40pbs&password=guess-{n}-{i}"),
                        ),
                        1 => client.post_form(
                            "access/ticket",
                            &format!("username=user{n}x{i}%40pbs&password=guess"),
                        ),
                        _ => client.send(
                            "GET",
                            "version",
                            &[(
                                "Authorization",
                                &format!("PBSAPIToken=alice@pbs!full:guess-{i}"),
                            )],
                            None,
                        ),
                    };
                    *statuses.entry(resp.status).or_insert(0) += 1;
                    if stop.load(std::sync::atomic::Ordering::Relaxed) && i > 300 {
                        break;
                    }
                }
                statuses
            })
        })
        .collect();
    // good logins while the attack runs
    let during = timed_logins(port, 21);
    // a good token keeps working too
    let mut root = Client::token(port, "root@pam!admin", &access.root);
    let start = Instant::now();
    for _ in 0..20 {
        assert_eq!(root.get("version").status, 200);
    }
    let token_time = start.elapsed() / 20;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut statuses = std::collections::BTreeMap::new();
    for attacker in attackers {
        for (status, count) in attacker.join().unwrap() {
            *statuses.entry(status).or_insert(0) += count;
        }
    }
    let factor = during.as_secs_f64() / baseline.as_secs_f64();
    eprintln!(
        "good login median: {:.1} ms alone, {:.1} ms during the attack (factor {factor:.2}); \
         token request during the attack: {:.1} ms; bad attempts by status: {statuses:?}",
        baseline.as_secs_f64() * 1000.0,
        during.as_secs_f64() * 1000.0,
        token_time.as_secs_f64() * 1000.0,
    );
    assert!(
        statuses.keys().all(|s| *s == 401 || *s == 429),
        "{statuses:?}"
    );
    assert!(statuses.get(&429).copied().unwrap_or(0) > 0, "{statuses:?}");
    // the slow-down factor is a measurement (printed above, and in the
    // benchmarks of docs/performance.md), not something a test asserts
    assert_eq!(
        Client::token(port, "root@pam!admin", &access.root)
            .get("version")
            .status,
        200
    );
}

#[test]
fn api_creates_its_files_and_stops_cleanly_on_sigterm() {
    let dir = TestDir::new();
    let base = dir.path().to_path_buf();
    let mut daemon = Daemon::start(dir, &[]);
    use std::os::unix::fs::MetadataExt;
    let mode = |name: &str| std::fs::metadata(base.join(name)).unwrap().mode() & 0o777;
    assert_eq!(mode("proxy.key"), 0o640);
    assert_eq!(mode("proxy.pem"), 0o640);
    assert_eq!(mode("authkey.key"), 0o600);
    assert_eq!(mode("csrf.key"), 0o640);
    if nix::unistd::geteuid().is_root() && pbs_config::backup_group().is_ok() {
        let backup = pbs_config::backup_group().unwrap().gid.as_raw();
        let meta = std::fs::metadata(base.join("proxy.key")).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (0, backup));
    }
    let cert = std::fs::read(base.join("proxy.pem")).unwrap();
    let status = daemon.terminate();
    assert!(status.success(), "{status:?}");
    let log = daemon.log();
    assert!(log.contains("shut down"), "{log}");
    // a restart keeps the certificate
    let dir = std::mem::replace(&mut daemon.dir, TestDir::new());
    drop(daemon);
    let daemon = Daemon::start(dir, &[]);
    assert_eq!(std::fs::read(base.join("proxy.pem")).unwrap(), cert);
    drop(daemon);
}

/// Runs `args` with `cli`: they must succeed; returns stdout.
fn cli_ok(cli: &Manager, args: &[&str]) -> String {
    let run = cli.run(args);
    assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
    run.stdout
}

/// The documented first call: a root@pam token with an ACL; returns the
/// token's secret.
fn cli_sets_up_a_root_token(cli: &Manager) -> String {
    let run = |args: &[&str]| cli_ok(cli, args);
    // the documented first call: a root@pam token with an ACL
    let out = run(&[
        "user",
        "generate-token",
        "root@pam",
        "mytoken",
        "--output-format",
        "json",
    ]);
    let token: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(token["tokenid"], "root@pam!mytoken");
    let secret = token["value"].as_str().unwrap().to_string();
    assert!(
        !std::fs::read_to_string(cli.dir().join("token.shadow"))
            .unwrap()
            .contains(&secret)
    );
    run(&[
        "acl",
        "update",
        "/",
        "Admin",
        "--auth-id",
        "root@pam!mytoken",
    ]);

    secret
}

/// A user with a changed password and two ACL entries, listed as set up.
fn cli_sets_up_a_user_with_acls(cli: &Manager) {
    let run = |args: &[&str]| cli_ok(cli, args);
    run(&[
        "user",
        "create",
        "erin@pbs",
        "--password",
        "erin pass 1",
        "--comment",
        "key admin",
    ]);
    let passwd = cli.run_with(&["user", "passwd", "erin@pbs"], Some(b"erin pass 2\n"));
    assert_eq!(passwd.code, 0, "{passwd:?}");
    run(&[
        "acl",
        "update",
        "/system/encryption-keys",
        "Audit",
        "--auth-id",
        "erin@pbs",
    ]);
    // --propagate takes a value, as upstream's
    run(&[
        "acl",
        "update",
        "/system",
        "Audit",
        "--auth-id",
        "erin@pbs",
        "--propagate",
        "false",
    ]);
    let users: Value =
        serde_json::from_str(&run(&["user", "list", "--output-format", "json"])).unwrap();
    let names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["userid"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["root@pam", "erin@pbs"]);
    let acl: Value =
        serde_json::from_str(&run(&["acl", "list", "--output-format", "json"])).unwrap();
    assert_eq!(
        acl,
        json!([
            {"path": "/", "ugid": "root@pam!mytoken", "ugid_type": "user", "propagate": true, "roleid": "Admin"},
            {"path": "/system", "ugid": "erin@pbs", "ugid_type": "user", "propagate": false, "roleid": "Audit"},
            {"path": "/system/encryption-keys", "ugid": "erin@pbs", "ugid_type": "user", "propagate": true, "roleid": "Audit"},
        ])
    );
    assert_eq!(
        std::fs::read_to_string(cli.dir().join("acl.cfg")).unwrap(),
        "acl:1:/:root@pam!mytoken:Admin\nacl:0:/system:erin@pbs:Audit\nacl:1:/system/encryption-keys:erin@pbs:Audit\n"
    );
}

/// Refused: unknown role, unknown user, bad path, password for a PAM user.
fn cli_refuses_bad_access_setup(cli: &Manager) {
    for (args, want) in [
        (
            &["acl", "update", "/", "Superuser", "--auth-id", "erin@pbs"][..],
            "unknown role",
        ),
        (
            &["acl", "update", "/", "Admin", "--auth-id", "zed@pbs"],
            "no such user",
        ),
        (
            &[
                "acl",
                "update",
                "no-slash",
                "Admin",
                "--auth-id",
                "erin@pbs",
            ],
            "invalid ACL path",
        ),
        (
            &["user", "create", "x@pam", "--password", "pw"],
            "only 'pbs' realm",
        ),
        (
            &["user", "generate-token", "zed@pbs", "t1"],
            "does not exist",
        ),
        (
            &["user", "generate-token", "root@pam", "mytoken"],
            "already exists",
        ),
    ] {
        let run = cli.run(args);
        assert!(
            run.code != 0 && run.stderr.contains(want),
            "{args:?}: {run:?}"
        );
    }
}

#[test]
fn cli_sets_up_access_that_the_daemon_honours() {
    let dir = TestDir::new();
    let cli = Manager::new(dir.path());
    let secret = cli_sets_up_a_root_token(&cli);
    cli_sets_up_a_user_with_acls(&cli);
    cli_refuses_bad_access_setup(&cli);

    let daemon = Daemon::start(dir, &[]);
    let mut root = Client::token(daemon.port(), "root@pam!mytoken", &secret);
    root.post_form("config/encryption-keys", "id=from-cli")
        .data();
    let (ticket, _) = login(daemon.port(), "erin@pbs", "erin pass 2");
    let cookie = format!("PBSAuthCookie={ticket}");
    let mut erin = Client::new(daemon.port()).with_auth(&[("Cookie", &cookie)]);
    assert_eq!(
        ids(&erin.get("config/encryption-keys").data()),
        ["from-cli"]
    );

    // deleting the token takes its secret and ACL entries, and the daemon
    // refuses it at once (no stale cache)
    cli_ok(&cli, &["user", "delete-token", "root@pam", "mytoken"]);
    root.get("version").expect(401, "invalid credentials");
    assert!(
        !std::fs::read_to_string(cli.dir().join("acl.cfg"))
            .unwrap()
            .contains("mytoken")
    );
}

#[test]
fn api_limits_connections_per_address() {
    let (daemon, access) = start_with_access(&["--max-connections-per-address", "4"]);
    let port = daemon.port();
    // four idle connections (no TLS handshake yet) take every slot of 127.0.0.1
    let idle: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let refused = tls_connector()
        .configure()
        .unwrap()
        .verify_hostname(false)
        .connect("localhost", tcp);
    assert!(refused.is_err(), "a fifth connection was served");
    // closing them gives the slots back (the server notices at once; the
    // loop only bounds how long that may take)
    drop(idle);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let ok = tls_connector()
            .configure()
            .unwrap()
            .verify_hostname(false)
            .connect("localhost", tcp)
            .is_ok();
        if ok {
            break;
        }
        assert!(Instant::now() < deadline, "slots were not given back");
        std::thread::yield_now();
    }
    let mut root = Client::token(port, "root@pam!admin", &access.root);
    assert_eq!(root.get("version").status, 200);
}

#[test]
fn api_delays_failed_authentications_only() {
    // timing assertions: not beside the load tests
    let _heavy = heavy();
    let (daemon, access) = start_with_access(&["--auth-failure-delay", "1"]);
    let port = daemon.port();
    let mut good = Client::token(port, "root@pam!admin", &access.root);
    assert_eq!(good.get("version").status, 200);
    let mut bad = Client::token(port, "root@pam!admin", "wrong-secret");
    for (client, path) in [(&mut bad, "version"), (&mut Client::new(port), "version")] {
        let start = Instant::now();
        assert_eq!(client.get(path).status, 401);
        assert!(
            start.elapsed() >= Duration::from_millis(500),
            "{:?}",
            start.elapsed()
        );
    }
    drop(daemon);

    // with a delay longer than the client's 20 s read timeout, a good request
    // and a parameter error of an authenticated client still get answers:
    // only failed authentications are delayed
    let (daemon, access) = start_with_access(&["--auth-failure-delay", "60"]);
    let mut good = Client::token(daemon.port(), "root@pam!admin", &access.root);
    assert_eq!(good.get("version").status, 200);
    good.get("config/encryption-keys?bogus=1")
        .expect(400, "parameter 'bogus'");
}
