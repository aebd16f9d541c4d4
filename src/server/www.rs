//! The key management page: the files of `src/www/`, built into the binary
//! and served at `https://HOST:8007/` (`docs/ui.md`).
//!
//! Everything below [`API_PREFIX`] is the API's; every other path is
//! answered here, and only from the fixed table [`ASSETS`]: the request
//! path is compared with its names and never reaches the file system. GET
//! only (another method on a served name is 405 with `Allow: GET`), 404
//! for any other path. Nothing here reads credentials, cookies or a
//! request body, so serving the page adds no way into the API.
//!
//! Caching: the page itself (`/`) is `no-cache`, so a browser asks for it
//! every time; it names the other files below `/assets/<hash>/`, where
//! `<hash>` covers the bytes of every file, and those are cached for a
//! year. A new release has a new hash and loads at once; modules import
//! each other by relative names, so they stay within one release.
//!
//! Every answer, the 404 and 405 ones too, carries [`SECURITY_HEADERS`]:
//! a Content-Security-Policy that runs scripts and styles from this origin
//! only (no inline script, no `style` attribute, no `eval`) and requires
//! Trusted Types (no HTML from strings), no framing, `nosniff`, no
//! referrer.

use std::sync::LazyLock;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE, HeaderName, HeaderValue};
use hyper::{Method, Response, StatusCode};

/// The API's part of the URL space: requests below it go to the router.
pub const API_PREFIX: &str = "/api2";

/// Where the page's files are served, before the release hash.
pub const ASSETS_BASE: &str = "/assets";

/// The Content-Security-Policy of every answer here.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'none'; \
     base-uri 'none'; frame-ancestors 'none'; require-trusted-types-for 'script'; \
     trusted-types 'none'";

/// Headers on every answer here.
pub const SECURITY_HEADERS: &[(&str, &str)] = &[
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
];

const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const SVG: &str = "image/svg+xml";

/// One file of the page.
pub struct Asset {
    /// Its name below `src/www/` (and below `/assets/<hash>/`).
    pub name: &'static str,
    /// Its content type.
    pub content_type: &'static str,
    /// Its bytes.
    pub data: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $content_type:expr) => {
        Asset {
            name: $name,
            content_type: $content_type,
            data: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/www/", $name)),
        }
    };
}

/// The page's template: `/`, with `@ASSETS@`, `@TICKET_LIFETIME@` and
/// `@VERSION@` filled in.
const INDEX_TEMPLATE: &str =
    include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/src/www/index.html"));

/// Every file below `/assets/<hash>/` (a test checks that this is every
/// file of `src/www/` but `index.html`, and that every module import
/// names one of them).
pub const ASSETS: &[Asset] = &[
    asset!("app.css", CSS),
    asset!("favicon.svg", SVG),
    asset!("js/api.js", JS),
    asset!("js/app.js", JS),
    asset!("js/audit.js", JS),
    asset!("js/dialog.js", JS),
    asset!("js/dom.js", JS),
    asset!("js/export.js", JS),
    asset!("js/format.js", JS),
    asset!("js/keys.js", JS),
    asset!("js/login.js", JS),
    asset!("js/paperkey.js", JS),
    asset!("js/permissions.js", JS),
    asset!("js/restore.js", JS),
    asset!("js/rotate.js", JS),
    asset!("js/savekey.js", JS),
    asset!("js/session.js", JS),
    asset!("js/trash.js", JS),
];

/// The page of this build: its asset path and its filled-in index.
struct Site {
    /// `/assets/<hash>`.
    assets: String,
    /// The page at `/`.
    index: Bytes,
}

static SITE: LazyLock<Site> = LazyLock::new(|| {
    let assets = format!("{ASSETS_BASE}/{}", release_hash());
    let index = INDEX_TEMPLATE
        .replace("@ASSETS@", &assets)
        .replace(
            "@TICKET_LIFETIME@",
            &crate::auth_helpers::TICKET_LIFETIME.to_string(),
        )
        .replace("@VERSION@", env!("CARGO_PKG_VERSION"));
    Site {
        assets,
        index: Bytes::from(index),
    }
});

/// The first 16 hex digits of SHA-256 over every asset's name, length and
/// bytes, and the page template: changes whenever any file changes.
fn release_hash() -> String {
    let mut hasher = openssl::sha::Sha256::new();
    for asset in ASSETS {
        hasher.update(asset.name.as_bytes());
        hasher.update(&(asset.data.len() as u64).to_le_bytes());
        hasher.update(asset.data);
    }
    hasher.update(INDEX_TEMPLATE.as_bytes());
    hex::encode(&hasher.finish()[..8])
}

/// The path the assets of this build are served below (`/assets/<hash>`).
pub fn assets_path() -> &'static str {
    &SITE.assets
}

/// Whether `path` is the page's rather than the API's.
pub fn serves(path: &str) -> bool {
    !(path == API_PREFIX || path.starts_with(&format!("{API_PREFIX}/")))
}

/// The file of `path`: content type, bytes and cache policy.
fn lookup(path: &str) -> Option<(&'static str, Bytes, &'static str)> {
    if path == "/" {
        return Some((HTML, SITE.index.clone(), "no-cache"));
    }
    let name = path.strip_prefix(SITE.assets.as_str())?.strip_prefix('/')?;
    ASSETS.iter().find(|asset| asset.name == name).map(|asset| {
        (
            asset.content_type,
            Bytes::from_static(asset.data),
            "public, max-age=31536000, immutable",
        )
    })
}

fn response(
    status: StatusCode,
    content_type: &str,
    body: Bytes,
    cache: &str,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    if let Ok(value) = HeaderValue::from_str(content_type) {
        headers.insert(CONTENT_TYPE, value);
    }
    if let Ok(value) = HeaderValue::from_str(cache) {
        headers.insert(CACHE_CONTROL, value);
    }
    response
}

/// The answer to `method path` (a path [`serves`] accepts; the query
/// string is not looked at).
pub fn serve(method: &Method, path: &str) -> Response<Full<Bytes>> {
    let text = "text/plain; charset=utf-8";
    match lookup(path) {
        None => response(
            StatusCode::NOT_FOUND,
            text,
            Bytes::from_static(
                b"no such path - the key management page is at /, the API below /api2/json/",
            ),
            "no-store",
        ),
        Some(_) if method != Method::GET => {
            let mut answer = response(
                StatusCode::METHOD_NOT_ALLOWED,
                text,
                Bytes::from(format!(
                    "method {method} not allowed on this path (allowed: GET)"
                )),
                "no-store",
            );
            answer
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET"));
            answer
        }
        Some((content_type, body, cache)) => response(StatusCode::OK, content_type, body, cache),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use http_body_util::BodyExt;

    use super::*;

    fn body(response: Response<Full<Bytes>>) -> String {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let bytes = runtime
            .block_on(response.into_body().collect())
            .unwrap()
            .to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    fn www_dir() -> &'static Path {
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src/www"))
    }

    /// Every file below `dir`, as names relative to `base`.
    fn files(dir: &Path, base: &Path, out: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files(&path, base, out);
            } else {
                let name = path.strip_prefix(base).unwrap().to_str().unwrap();
                out.insert(name.to_string());
            }
        }
    }

    #[test]
    fn the_table_holds_every_file_of_src_www() {
        let mut on_disk = BTreeSet::new();
        files(www_dir(), www_dir(), &mut on_disk);
        on_disk.remove("index.html");
        let served: BTreeSet<String> = ASSETS.iter().map(|a| a.name.to_string()).collect();
        assert_eq!(on_disk, served, "src/www and ASSETS differ");
    }

    /// The relative module specifiers of `import ... from './x.js'` and
    /// `import('./x.js')`.
    fn imports(source: &str) -> Vec<String> {
        let mut out = Vec::new();
        for quote in ['\'', '"'] {
            for part in source.split(&format!("{quote}./")).skip(1) {
                if let Some((name, _)) = part.split_once(quote)
                    && name.ends_with(".js")
                {
                    out.push(name.to_string());
                }
            }
        }
        out
    }

    #[test]
    fn every_module_import_names_a_served_module() {
        let names: BTreeSet<&str> = ASSETS.iter().map(|a| a.name).collect();
        for asset in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            let source = std::str::from_utf8(asset.data).unwrap();
            for import in imports(source) {
                let name = format!("js/{import}");
                assert!(
                    names.contains(name.as_str()),
                    "{} imports {import}, which is not served",
                    asset.name
                );
            }
            // every import is relative: nothing is fetched from elsewhere
            for line in source.lines() {
                let line = line.trim_start();
                if line.starts_with("import ") && line.contains(" from ") {
                    assert!(line.contains("from './"), "{}: {line}", asset.name);
                }
            }
        }
    }

    #[test]
    fn the_page_has_no_inline_script_or_style_and_names_its_assets() {
        let index = std::str::from_utf8(&SITE.index).unwrap();
        assert!(!index.contains('@'), "unfilled placeholder: {index}");
        for (tag, attribute) in [("<script", " src=\""), ("<link", " href=\"")] {
            for part in index.split(tag).skip(1) {
                let head = part.split('>').next().unwrap();
                let url = head
                    .split(attribute)
                    .nth(1)
                    .and_then(|rest| rest.split('"').next())
                    .unwrap_or_else(|| panic!("{tag} without {attribute}: {head}"));
                assert!(url.starts_with(&SITE.assets), "{url}");
                assert!(lookup(url).is_some(), "{url} is not served");
            }
        }
        for tag in [
            "<script", "<style", "<link", "<img", "<body", "<div", "<form",
        ] {
            for part in index.split(tag).skip(1) {
                let head = part.split('>').next().unwrap();
                assert!(!head.contains(" style="), "{tag}{head}");
                assert!(!head.contains(" on"), "inline handler: {tag}{head}");
            }
        }
        for part in index.split("<script").skip(1) {
            let (_, rest) = part.split_once('>').unwrap();
            assert!(rest.starts_with("</script>"), "inline script: {part}");
        }
        for asset in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            let source = std::str::from_utf8(asset.data).unwrap();
            for sink in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "eval(",
                "new Function",
                "document.write",
                ".style.",
            ] {
                assert!(!source.contains(sink), "{} uses {sink}", asset.name);
            }
        }
    }

    #[test]
    fn answers_carry_the_security_headers_and_cache_policy() {
        let index = serve(&Method::GET, "/");
        assert_eq!(index.status(), 200);
        assert_eq!(index.headers()[CACHE_CONTROL], "no-cache");
        assert_eq!(index.headers()[CONTENT_TYPE], HTML);
        let app = format!("{}/js/app.js", assets_path());
        let script = serve(&Method::GET, &app);
        assert_eq!(script.status(), 200);
        assert_eq!(script.headers()[CONTENT_TYPE], JS);
        assert!(
            script.headers()[CACHE_CONTROL]
                .to_str()
                .unwrap()
                .contains("immutable")
        );
        for answer in [index, script, serve(&Method::GET, "/nope")] {
            for (name, value) in SECURITY_HEADERS {
                assert_eq!(answer.headers()[*name], *value, "{name}");
            }
        }
        assert!(CONTENT_SECURITY_POLICY.contains("script-src 'self';"));
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe"));
    }

    #[test]
    fn only_get_on_fixed_names() {
        let app = format!("{}/js/app.js", assets_path());
        for method in [Method::POST, Method::PUT, Method::DELETE, Method::HEAD] {
            for path in ["/", app.as_str()] {
                let answer = serve(&method, path);
                assert_eq!(answer.status(), 405, "{method} {path}");
                assert_eq!(answer.headers()[ALLOW], "GET");
            }
        }
        let stale = format!("{ASSETS_BASE}/0000000000000000/js/app.js");
        let inside = format!("{}/js/../app.css", assets_path());
        let encoded = format!("{}/js%2Fapp.js", assets_path());
        let bare = format!("{}/", assets_path());
        for path in [
            "/index.html",
            "/app.css",
            "/js/app.js",
            "/assets",
            "/assets/",
            bare.as_str(),
            stale.as_str(),
            inside.as_str(),
            encoded.as_str(),
            "/../Cargo.toml",
            "/src/www/index.html",
            "//",
            "",
        ] {
            let answer = serve(&Method::GET, path);
            assert_eq!(answer.status(), 404, "{path}");
            assert_eq!(answer.headers()[CACHE_CONTROL], "no-store");
            assert!(body(answer).starts_with("no such path"), "{path}");
        }
        assert!(body(serve(&Method::GET, "/")).contains("<!DOCTYPE html>"));
    }

    #[test]
    fn the_api_keeps_its_paths() {
        for path in [
            "/api2",
            "/api2/",
            "/api2/json",
            "/api2/json/version",
            "/api2/extjs/x",
        ] {
            assert!(!serves(path), "{path}");
        }
        for path in ["/", "/api2x", "/api", "/assets/x/js/app.js", "/favicon.ico"] {
            assert!(serves(path), "{path}");
        }
    }

    #[test]
    fn the_release_hash_is_stable_and_short() {
        assert_eq!(release_hash(), release_hash());
        assert_eq!(release_hash().len(), 16);
        assert_eq!(assets_path(), format!("{ASSETS_BASE}/{}", release_hash()));
    }
}
