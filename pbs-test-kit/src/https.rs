//! Talking HTTPS to the daemon on 127.0.0.1 (its certificate is
//! self-signed, so nothing is verified):
//! - [`Client`]: the client of the tests and the soak run, one keep-alive
//!   connection over hyper, reconnecting as needed, every answer within a
//!   time limit;
//! - [`connect`]: one hyper connection, for load runs that drive many;
//! - [`once`]: one request on its own connection (`Connection: close`),
//!   the answer as the server sent it, head and body;
//! - [`tls_stream`]: a raw TLS stream, for requests no HTTP library sends.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::pin::Pin;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use openssl::ssl::{SslConnector, SslMethod, SslStream, SslVerifyMode};
use serde_json::Value;

/// How long [`Client`] waits for an answer unless told otherwise.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(20);

/// A TLS connector that accepts the daemon's self-signed certificate.
pub fn tls_connector() -> SslConnector {
    let mut builder = SslConnector::builder(SslMethod::tls()).unwrap();
    builder.set_verify(SslVerifyMode::NONE);
    builder.build()
}

/// A raw TLS connection to `port` whose reads time out after
/// `read_timeout`.
pub fn tls_stream(port: u16, read_timeout: Duration) -> std::io::Result<SslStream<TcpStream>> {
    let tcp = TcpStream::connect(("127.0.0.1", port))?;
    tcp.set_read_timeout(Some(read_timeout))?;
    tls_connector()
        .configure()
        .map_err(std::io::Error::other)?
        .verify_hostname(false)
        .connect("localhost", tcp)
        .map_err(std::io::Error::other)
}

/// A request path: `/...` as it is, anything else below `/api2/json/`.
fn uri(path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/api2/json/{path}")
    }
}

/// An answer read to its end by [`once`].
#[derive(Debug)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The whole answer as sent: status line, headers and body.
    pub text: String,
}

impl Answer {
    /// The body (what follows the head).
    pub fn body(&self) -> &str {
        self.text
            .split_once("\r\n\r\n")
            .map_or("", |(_, body)| body)
    }

    /// The body as JSON; panics if it is not.
    pub fn json(&self) -> Value {
        serde_json::from_str(self.body())
            .unwrap_or_else(|err| panic!("not JSON ({err}): {}", self.text))
    }
}

/// One request on its own TLS connection (`Connection: close`, reads time
/// out after 30 s), with `headers` and a (content type, body), the content
/// type a form if there is no body. An error when the connection is
/// refused or ends without a status line (a killed daemon); panics on an
/// answer that is not UTF-8.
pub fn once(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, &str)>,
) -> std::io::Result<Answer> {
    let mut stream = tls_stream(port, Duration::from_secs(30))?;
    let (content_type, data) = body.unwrap_or(("application/x-www-form-urlencoded", ""));
    let mut request = format!(
        "{method} {} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
         Content-Type: {content_type}\r\nContent-Length: {}\r\n",
        uri(path),
        data.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(data);
    stream.write_all(request.as_bytes())?;
    let mut answer = Vec::new();
    // the server closes: whatever came until then is the answer
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8(answer).expect("UTF-8 answer");
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("no status line: {text:?}"),
            )
        })?;
    Ok(Answer { status, text })
}

/// One hyper HTTP/1.1 connection over TLS to `port`; its connection task
/// runs on the current tokio runtime.
pub async fn try_connect(port: u16) -> Result<SendRequest<Full<Bytes>>, String> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|err| format!("connect: {err}"))?;
    let ssl = tls_connector()
        .configure()
        .unwrap()
        .verify_hostname(false)
        .into_ssl("localhost")
        .unwrap();
    let mut stream = tokio_openssl::SslStream::new(ssl, tcp).unwrap();
    Pin::new(&mut stream)
        .connect()
        .await
        .map_err(|err| format!("TLS handshake: {err}"))?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|err| format!("HTTP handshake: {err}"))?;
    tokio::spawn(connection);
    Ok(sender)
}

/// [`try_connect`], panicking on failure.
pub async fn connect(port: u16) -> SendRequest<Full<Bytes>> {
    try_connect(port)
        .await
        .unwrap_or_else(|err| panic!("{err}"))
}

/// A response of [`Client`]: status, headers and body text.
#[derive(Debug)]
pub struct Resp {
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: hyper::HeaderMap,
    /// The body, as text.
    pub body: String,
}

impl Resp {
    /// The body as JSON; panics if it is not.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|err| panic!("not JSON ({err}): {:?}", self.body))
    }

    /// The `data` of a 200 answer.
    #[track_caller]
    pub fn data(&self) -> Value {
        assert_eq!(self.status, 200, "{}", self.body);
        self.json()["data"].clone()
    }

    /// Asserts the status and that the body contains `text`.
    #[track_caller]
    pub fn expect(&self, status: u16, text: &str) {
        assert_eq!(self.status, status, "body: {}", self.body);
        assert!(
            self.body.contains(text),
            "{status}: expected {text:?} in {:?}",
            self.body
        );
    }
}

/// An HTTPS client with one keep-alive connection, reconnecting as needed;
/// blocking (it runs its own single-thread runtime).
pub struct Client {
    runtime: tokio::runtime::Runtime,
    port: u16,
    sender: Option<SendRequest<Full<Bytes>>>,
    auth: Vec<(String, String)>,
    timeout: Duration,
}

impl Client {
    /// A client of the daemon on `port`, with no credentials.
    pub fn new(port: u16) -> Self {
        Self {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            port,
            sender: None,
            auth: Vec::new(),
            timeout: CLIENT_TIMEOUT,
        }
    }

    /// Sends these headers with every request.
    pub fn with_auth(mut self, headers: &[(&str, &str)]) -> Self {
        self.auth = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self
    }

    /// Waits at most `timeout` for each answer (default [`CLIENT_TIMEOUT`]).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// A client with the API token `tokenid` and its `secret`.
    pub fn token(port: u16, tokenid: &str, secret: &str) -> Self {
        Self::new(port).with_auth(&[("Authorization", &format!("PBSAPIToken={tokenid}:{secret}"))])
    }

    /// `method path` with extra headers and an optional (content type,
    /// body); an error when there is no connection or no answer in time
    /// (the connection is then dropped, the next request opens a new one).
    pub fn try_send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Resp, String> {
        let port = self.port;
        let uri = uri(path);
        let mut builder = hyper::Request::builder()
            .method(method)
            .uri(&uri)
            .header("Host", "localhost");
        for (name, value) in self.auth.iter() {
            builder = builder.header(name.as_str(), value.as_str());
        }
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let body = match body {
            Some((content_type, data)) => {
                builder = builder.header("Content-Type", content_type);
                Full::new(Bytes::from(data))
            }
            None => Full::new(Bytes::new()),
        };
        let request = builder.body(body).unwrap();
        let mut sender = self.sender.take();
        let exchange = async move {
            let ready = match sender.as_mut() {
                Some(s) => s.ready().await.is_ok(),
                None => false,
            };
            let mut sender = match (ready, sender) {
                (true, Some(sender)) => sender,
                _ => try_connect(port).await?,
            };
            let response = sender
                .send_request(request)
                .await
                .map_err(|err| format!("HTTP request: {err}"))?;
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|err| format!("HTTP body: {err}"))?
                .to_bytes();
            let resp = Resp {
                status,
                headers,
                body: String::from_utf8_lossy(&body).into_owned(),
            };
            Ok::<_, String>((resp, sender))
        };
        // an answer must come: a daemon that holds a request back (or
        // hangs) is an error, not a stall
        let timeout = self.timeout;
        let (resp, sender) = self
            .runtime
            .block_on(async { tokio::time::timeout(timeout, exchange).await })
            .map_err(|_| format!("no answer to {method} {uri} within {timeout:?}"))?
            .map_err(|err| format!("{method} {uri}: {err}"))?;
        self.sender = Some(sender);
        Ok(resp)
    }

    /// [`Client::try_send`]; panics on an error.
    #[track_caller]
    pub fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, Vec<u8>)>,
    ) -> Resp {
        self.try_send(method, path, headers, body)
            .unwrap_or_else(|err| panic!("{err}"))
    }

    /// `GET path`.
    #[track_caller]
    pub fn get(&mut self, path: &str) -> Resp {
        self.send("GET", path, &[], None)
    }

    /// `DELETE path`.
    #[track_caller]
    pub fn delete(&mut self, path: &str) -> Resp {
        self.send("DELETE", path, &[], None)
    }

    /// `POST path` with a form body.
    #[track_caller]
    pub fn post_form(&mut self, path: &str, form: &str) -> Resp {
        self.send("POST", path, &[], Some(form_body(form)))
    }

    /// `POST path` with a JSON body.
    #[track_caller]
    pub fn post_json(&mut self, path: &str, body: &Value) -> Resp {
        self.send(
            "POST",
            path,
            &[],
            Some(("application/json", body.to_string().into_bytes())),
        )
    }
}

/// A form body for [`Client::send`].
pub fn form_body(form: &str) -> (&'static str, Vec<u8>) {
    (
        "application/x-www-form-urlencoded",
        form.as_bytes().to_vec(),
    )
}

/// `text` percent-encoded for a form or a query: everything but ASCII
/// letters, digits and `-_.` as `%XX`.
pub fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
