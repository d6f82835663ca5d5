//! Shared by the `tls_*` and `auth_*` tests: certificates made with rcgen, a daemon started from
//! configuration text, and an SMTP client over a [`MaybeTls`] stream (tokio-rustls underneath).

#![allow(dead_code)] // Each test file uses part of this.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use petrel_core::config::{self, ParseOptions};
use petrel_core::session::Decision;
use petrel_core::session::server::Request;
use petrel_daemon::inbound::ListenerFacts;
use petrel_daemon::service::{HandlerFactory, Service, ServiceConfig, ServiceError};
use petrel_daemon::smtp_in::{Connection, SessionHandler};
use petrel_daemon::tls::{self, ClientTls, MaybeTls, ServerVerification, TlsInfo};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

/// How long any single read may take before a test fails instead of hanging.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A certificate authority able to issue leaves, with its files in a temporary folder.
pub struct TestCa {
    pub params: CertificateParams,
    pub key: KeyPair,
    pub cert_pem: String,
    pub cert_path: PathBuf,
}

/// PEM files of a certificate (chain) and its key.
pub struct Leaf {
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    pub chain_pem: String,
    pub key_pem: String,
}

/// A temporary folder with a CA, a leaf for `mx.test`, a leaf for `other.test`, a client
/// certificate, and a second CA that issued nothing the daemon trusts.
pub struct Pkis {
    pub dir: tempfile::TempDir,
    pub ca: TestCa,
    pub mx: Leaf,
    pub other: Leaf,
    pub client: Leaf,
    pub rogue_client: Leaf,
}

impl Pkis {
    pub fn new() -> Pkis {
        let dir = tempfile::tempdir().unwrap();
        let ca = make_ca(dir.path(), "ca", "Petrel Test CA");
        let rogue = make_ca(dir.path(), "rogue-ca", "Rogue CA");
        let mx = make_leaf(dir.path(), &ca, "mx", "mx.test", false);
        let other = make_leaf(dir.path(), &ca, "other", "other.test", false);
        let client = make_leaf(dir.path(), &ca, "client", "client.test", true);
        let rogue_client = make_leaf(dir.path(), &rogue, "rogue-client", "client.test", true);
        Pkis {
            dir,
            ca,
            mx,
            other,
            client,
            rogue_client,
        }
    }

    /// A path in the temporary folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `pki` and `ca` declarations for the configuration: `mx.test`, `other.test`, `testca`.
    pub fn declarations(&self) -> String {
        format!(
            "pki mx.test cert \"{}\"\npki mx.test key \"{}\"\n\
             pki other.test cert \"{}\"\npki other.test key \"{}\"\n\
             ca testca cert \"{}\"\n",
            self.mx.cert_path.display(),
            self.mx.key_path.display(),
            self.other.cert_path.display(),
            self.other.key_path.display(),
            self.ca.cert_path.display(),
        )
    }

    /// A client configuration that trusts the test CA, optionally with a client certificate.
    pub fn client_tls(&self, identity: Option<&Leaf>) -> ClientTls {
        let roots = tls::load_ca(&self.ca.cert_path).unwrap();
        let pki = identity.map(|l| tls::load_pki("client", &l.cert_path, &l.key_path).unwrap());
        tls::client_config(ServerVerification::Roots(Arc::new(roots)), pki.as_ref()).unwrap()
    }
}

fn make_ca(dir: &Path, file: &str, cn: &str) -> TestCa {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, cn);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let cert = params.self_signed(&key).unwrap();
    let cert_path = dir.join(format!("{file}.pem"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    TestCa {
        params,
        key,
        cert_pem: cert.pem(),
        cert_path,
    }
}

fn make_leaf(dir: &Path, ca: &TestCa, file: &str, name: &str, client: bool) -> Leaf {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![if client {
        ExtendedKeyUsagePurpose::ClientAuth
    } else {
        ExtendedKeyUsagePurpose::ServerAuth
    }];
    let issuer = Issuer::from_params(&ca.params, &ca.key);
    let cert = params.signed_by(&key, &issuer).unwrap();
    // A full chain, as `pki … cert` files usually are.
    let chain_pem = format!("{}{}", cert.pem(), ca.cert_pem);
    let cert_path = dir.join(format!("{file}.fullchain.pem"));
    let key_path = dir.join(format!("{file}.key"));
    std::fs::write(&cert_path, &chain_pem).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    Leaf {
        cert_path,
        key_path,
        chain_pem,
        key_pem: key.serialize_pem(),
    }
}

/// Parses configuration text and builds the service configuration, as petreld does at start.
pub fn service_config(text: &str) -> Result<ServiceConfig, ServiceError> {
    let config = config::parse("smtpd.conf", text, &ParseOptions::default())
        .unwrap_or_else(|e| panic!("configuration does not parse: {e}\n{text}"));
    ServiceConfig::from_config(&config, "mx.test")
}

/// A running daemon; stops when dropped.
pub struct Daemon {
    pub addrs: Vec<SocketAddr>,
    stop: watch::Sender<bool>,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Starts a daemon from configuration text; every listener gets a free loopback port, in the
/// order of the `listen on` lines. AUTH failures are answered after 50 ms instead of 1 s.
pub async fn start(text: &str) -> Daemon {
    let mut sc = service_config(text).unwrap_or_else(|e| panic!("{e}"));
    for l in &mut sc.listeners {
        l.addr.set_port(0);
        l.security.auth = l
            .security
            .auth
            .take()
            .map(|a| a.with_failure_delay(Duration::from_millis(50)));
    }
    let service = Service::bind(sc).unwrap();
    let addrs = service.local_addrs();
    let (stop, rx) = watch::channel(false);
    tokio::spawn(service.run(Arc::new(AcceptAll), rx));
    Daemon { addrs, stop }
}

/// Sessions whose every request is accepted: these tests are about TLS and AUTH, not mail.
pub struct AcceptAll;

/// The handler [`AcceptAll`] makes.
pub struct AcceptHandler;

impl HandlerFactory for AcceptAll {
    type Handler = AcceptHandler;
    fn handler(&self, _conn: &Connection, _listener: &ListenerFacts) -> AcceptHandler {
        AcceptHandler
    }
}

impl SessionHandler for AcceptHandler {
    async fn decide(&mut self, _request: Request) -> Decision {
        Decision::Accept
    }
    async fn data(&mut self, _chunk: Vec<u8>) {}
    async fn aborted(&mut self) {}
}

/// An SMTP client that reads exactly what the server sends, buffering only within replies, so
/// that a test can tell whether anything came after a given reply.
pub struct Client {
    pub stream: MaybeTls<TcpStream>,
    buf: Vec<u8>,
}

impl Client {
    /// Connects in plaintext.
    pub async fn connect(addr: SocketAddr) -> Client {
        let tcp = TcpStream::connect(addr).await.unwrap();
        Client {
            stream: MaybeTls::Plain(tcp),
            buf: Vec::new(),
        }
    }

    /// Connects and does the TLS handshake at once (smtps).
    pub async fn connect_tls(
        addr: SocketAddr,
        tls: &ClientTls,
        host: &str,
    ) -> std::io::Result<(Client, TlsInfo)> {
        let mut c = Client::connect(addr).await;
        let info = c.stream.connect(tls, host, READ_TIMEOUT).await?;
        Ok((c, info))
    }

    /// Reads one complete reply (all its lines); `None` when the connection ends first.
    pub async fn try_reply(&mut self) -> Option<String> {
        let mut reply = String::new();
        loop {
            let line = self.line().await?;
            let last = line.as_bytes().get(3) != Some(&b'-');
            reply.push_str(&line);
            if last {
                return Some(reply);
            }
        }
    }

    /// Reads one complete reply.
    pub async fn reply(&mut self) -> String {
        self.try_reply()
            .await
            .expect("connection closed before a reply")
    }

    async fn line(&mut self) -> Option<String> {
        loop {
            if let Some(end) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=end).collect();
                return Some(String::from_utf8(line).unwrap());
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(READ_TIMEOUT, self.stream.read(&mut chunk))
                .await
                .expect("no reply within the timeout")
                .ok()?;
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Writes raw bytes in one write.
    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
        self.stream.flush().await.unwrap();
    }

    /// Writes raw bytes, reporting failure (the server may already have closed).
    pub async fn try_send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await
    }

    /// Sends a command line and reads its reply.
    pub async fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes()).await;
        self.reply().await
    }

    /// Reads the greeting, says EHLO, and returns the EHLO reply.
    pub async fn greet(&mut self) -> String {
        let greeting = self.reply().await;
        assert!(greeting.starts_with("220 mx.test "), "{greeting}");
        self.cmd("EHLO client.test").await
    }

    /// STARTTLS then the handshake. Fails if the server sent anything after its 220 in
    /// plaintext (the bytes would be in `buf`, or would break the handshake).
    pub async fn starttls(&mut self, tls: &ClientTls, host: &str) -> std::io::Result<TlsInfo> {
        let reply = self.cmd("STARTTLS").await;
        assert_eq!(reply, "220 2.0.0 Ready to start TLS\r\n");
        self.upgrade(tls, host).await
    }

    /// The handshake alone, after a 220 read by the caller.
    pub async fn upgrade(&mut self, tls: &ClientTls, host: &str) -> std::io::Result<TlsInfo> {
        assert!(
            self.buf.is_empty(),
            "plaintext after the 220: {:?}",
            String::from_utf8_lossy(&self.buf)
        );
        self.stream.connect(tls, host, READ_TIMEOUT).await
    }

    /// The certificate chain the server presented.
    pub fn server_chain(&self) -> Vec<Vec<u8>> {
        match &self.stream {
            MaybeTls::Client(s) => s
                .get_ref()
                .1
                .peer_certificates()
                .unwrap_or_default()
                .iter()
                .map(|c| c.to_vec())
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Reads until the server closes; returns what came meanwhile (errors count as closed).
    pub async fn rest(&mut self) -> String {
        let mut all = std::mem::take(&mut self.buf);
        let mut chunk = [0u8; 4096];
        loop {
            match tokio::time::timeout(READ_TIMEOUT, self.stream.read(&mut chunk)).await {
                Ok(Ok(0) | Err(_)) => break,
                Ok(Ok(n)) => all.extend_from_slice(&chunk[..n]),
                Err(_) => panic!("the server did not close the connection"),
            }
        }
        String::from_utf8_lossy(&all).into_owned()
    }
}

/// base64 of `text`.
pub fn b64(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}
