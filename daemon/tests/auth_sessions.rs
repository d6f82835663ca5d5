//! AUTH PLAIN and LOGIN end to end over loopback TCP, against credentials tables with bcrypt
//! and SHA-crypt hashes.

mod tls_support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use petrel_core::session::Decision;
use petrel_core::session::server::{AuthPolicy, Request, ServerConfig};
use petrel_daemon::auth::{self, AuthOutcome, Authenticator, CredentialsTable, PasswordScheme};
use petrel_daemon::smtp_in::{self, Connection, SessionHandler, SessionSecurity};
use petrel_daemon::tls::{self, MaybeTls, ServerTlsSettings, TlsInfo};
use tls_support::{Client, Daemon, Pkis, b64, service_config, start};

/// A daemon with a credentials file (alice: bcrypt, bob: SHA-512-crypt) and a listener on
/// `tls <listen options>`.
struct Setup {
    pkis: Pkis,
    creds: PathBuf,
    daemon: Daemon,
}

async fn setup(listen: &str) -> Setup {
    let pkis = Pkis::new();
    let creds = pkis.path("creds");
    std::fs::write(
        &creds,
        format!(
            "# user  hash\nalice {}\nbob   {}\n",
            auth::hash_password("alice-pw", PasswordScheme::Bcrypt),
            auth::hash_password("bob-pw", PasswordScheme::Sha512Crypt),
        ),
    )
    .unwrap();
    let daemon = start(&format!(
        "{}table creds file:{}\nlisten on 127.0.0.1 tls pki mx.test {listen}\n",
        pkis.declarations(),
        creds.display()
    ))
    .await;
    Setup {
        pkis,
        creds,
        daemon,
    }
}

impl Setup {
    /// A client that has done STARTTLS and EHLO again.
    async fn tls_client(&self) -> Client {
        tls_client(self.daemon.addrs[0], &self.pkis).await
    }
}

async fn tls_client(addr: SocketAddr, pkis: &Pkis) -> Client {
    let mut c = Client::connect(addr).await;
    c.greet().await;
    c.starttls(&pkis.client_tls(None), "mx.test").await.unwrap();
    let ehlo = c.cmd("EHLO client.test").await;
    assert!(ehlo.contains("250-AUTH PLAIN LOGIN\r\n"), "{ehlo}");
    c
}

const AUTH_OK: &str = "235 2.7.0 Authentication successful\r\n";
const AUTH_FAILED: &str = "535 5.7.8 Authentication credentials invalid\r\n";

#[tokio::test]
async fn plain_with_bcrypt_and_login_with_sha512_crypt() {
    let s = setup("auth <creds>").await;
    let mut c = s.tls_client().await;
    let reply = c
        .cmd(&format!("AUTH PLAIN {}", b64("\0alice\0alice-pw")))
        .await;
    assert_eq!(reply, AUTH_OK);
    assert_eq!(
        c.cmd("MAIL FROM:<alice@mx.test>").await,
        "250 2.1.0 Sender ok\r\n"
    );

    let mut c = s.tls_client().await;
    assert_eq!(c.cmd("AUTH LOGIN").await, "334 VXNlcm5hbWU6\r\n");
    assert_eq!(c.cmd(&b64("bob")).await, "334 UGFzc3dvcmQ6\r\n");
    assert_eq!(c.cmd(&b64("bob-pw")).await, AUTH_OK);
    assert!(
        c.cmd("AUTH PLAIN").await.starts_with("503 "),
        "already authenticated"
    );

    // PLAIN without an initial response, and an authorisation identity equal to the user.
    let mut c = s.tls_client().await;
    assert_eq!(c.cmd("AUTH PLAIN").await, "334 \r\n");
    assert_eq!(c.cmd(&b64("bob\0bob\0bob-pw")).await, AUTH_OK);
}

#[tokio::test]
async fn wrong_passwords_and_unknown_users_get_535() {
    let s = setup("auth <creds>").await;
    let mut c = s.tls_client().await;
    // A failure is answered only after the (here shortened) constant delay.
    let started = std::time::Instant::now();
    let reply = c.cmd(&format!("AUTH PLAIN {}", b64("\0nobody\0x"))).await;
    assert_eq!(reply, AUTH_FAILED);
    assert!(started.elapsed() >= std::time::Duration::from_millis(50));
    for attempt in [
        "\0alice\0bob-pw",
        "\0bob\0alice-pw",
        "\0carol\0alice-pw",
        "\0alice\0",
        // Acting for another user is not supported.
        "bob\0alice\0alice-pw",
    ] {
        let reply = c.cmd(&format!("AUTH PLAIN {}", b64(attempt))).await;
        assert_eq!(reply, AUTH_FAILED, "{attempt:?}");
    }
    assert_eq!(c.cmd("AUTH LOGIN").await, "334 VXNlcm5hbWU6\r\n");
    assert_eq!(c.cmd(&b64("alice")).await, "334 UGFzc3dvcmQ6\r\n");
    assert_eq!(c.cmd(&b64("Alice-pw")).await, AUTH_FAILED);
    // Still not authenticated.
    assert!(c.cmd("MAIL FROM:<alice@mx.test>").await.starts_with("530 "));
}

#[tokio::test]
async fn no_auth_before_tls_and_no_mail_before_auth() {
    let s = setup("auth <creds>").await;
    let mut c = Client::connect(s.daemon.addrs[0]).await;
    let ehlo = c.greet().await;
    assert!(!ehlo.contains("AUTH"), "{ehlo}");
    let reply = c
        .cmd(&format!("AUTH PLAIN {}", b64("\0alice\0alice-pw")))
        .await;
    assert!(reply.starts_with("538 5.7.11 "), "{reply}");

    let mut c = s.tls_client().await;
    let reply = c.cmd("MAIL FROM:<alice@mx.test>").await;
    assert!(reply.starts_with("530 5.7.0 "), "{reply}");
}

#[tokio::test]
async fn auth_optional_lets_unauthenticated_clients_send() {
    let s = setup("auth-optional <creds>").await;
    let mut c = s.tls_client().await;
    assert_eq!(
        c.cmd("MAIL FROM:<x@client.test>").await,
        "250 2.1.0 Sender ok\r\n"
    );
}

#[tokio::test]
async fn the_file_is_reread_when_it_changes_and_454_while_it_cannot_be() {
    let s = setup("auth <creds>").await;
    let mut c = s.tls_client().await;
    // A new user, added without restarting.
    let mut text = std::fs::read_to_string(&s.creds).unwrap();
    text.push_str(&format!(
        "carol {}\n",
        auth::hash_password("carol-pw", PasswordScheme::Sha256Crypt)
    ));
    std::fs::write(&s.creds, &text).unwrap();
    assert_eq!(
        c.cmd(&format!("AUTH PLAIN {}", b64("\0carol\0carol-pw")))
            .await,
        AUTH_OK
    );

    let mut c = s.tls_client().await;
    std::fs::remove_file(&s.creds).unwrap();
    let reply = c
        .cmd(&format!("AUTH PLAIN {}", b64("\0alice\0alice-pw")))
        .await;
    assert_eq!(reply, "454 4.7.0 Temporary authentication failure\r\n");
    std::fs::write(&s.creds, "alice not-a-hash\n").unwrap();
    let reply = c
        .cmd(&format!("AUTH PLAIN {}", b64("\0alice\0alice-pw")))
        .await;
    assert!(reply.starts_with("454 4.7.0 "), "{reply}");
    std::fs::write(&s.creds, text).unwrap();
    assert_eq!(
        c.cmd(&format!("AUTH PLAIN {}", b64("\0alice\0alice-pw")))
            .await,
        AUTH_OK
    );
}

#[tokio::test]
async fn inline_tables_hold_credentials_too() {
    let pkis = Pkis::new();
    let hash = auth::hash_password("dave-pw", PasswordScheme::Sha256Crypt);
    let daemon = start(&format!(
        "{}table creds {{ dave = \"{hash}\" }}\nlisten on 127.0.0.1 smtps pki mx.test auth <creds>\n",
        pkis.declarations(),
    ))
    .await;
    let (mut c, _) = Client::connect_tls(daemon.addrs[0], &pkis.client_tls(None), "mx.test")
        .await
        .unwrap();
    assert!(c.greet().await.contains("AUTH PLAIN LOGIN"));
    assert_eq!(
        c.cmd(&format!("AUTH PLAIN {}", b64("\0dave\0dave-pw")))
            .await,
        AUTH_OK
    );
}

#[test]
fn credentials_problems_are_reported_at_start() {
    let pkis = Pkis::new();
    let listen = |auth: &str| {
        format!(
            "{}table creds file:{}\nlisten on 127.0.0.1 tls pki mx.test {auth}\n",
            pkis.declarations(),
            pkis.path("creds").display()
        )
    };
    let err = service_config(&listen("auth")).unwrap_err().to_string();
    assert!(
        err.contains("`auth` without a credentials table (system passwords) is not supported"),
        "{err}"
    );
    let err = service_config(&listen("auth <creds>"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("{}: cannot read", pkis.path("creds").display())),
        "{err}"
    );
    std::fs::write(pkis.path("creds"), "alice\nbob\n").unwrap();
    let err = service_config(&listen("auth-optional <creds>"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("maps user names to password hashes"), "{err}");
}

/// Records what the driver tells the handler.
#[derive(Default)]
struct Recorder {
    events: Arc<Mutex<Vec<String>>>,
}

impl SessionHandler for Recorder {
    async fn decide(&mut self, request: Request) -> Decision {
        if let Request::Auth { .. } = request {
            self.events
                .lock()
                .unwrap()
                .push("auth went to the handler".into());
        }
        Decision::Accept
    }
    async fn data(&mut self, _chunk: Vec<u8>) {}
    async fn aborted(&mut self) {}
    async fn tls_started(&mut self, info: &TlsInfo) {
        self.events
            .lock()
            .unwrap()
            .push(format!("tls {}", info.version));
    }
    async fn auth_result(&mut self, user: &str, outcome: &AuthOutcome) {
        self.events
            .lock()
            .unwrap()
            .push(format!("auth {user} {}", *outcome == AuthOutcome::Accepted));
    }
}

#[tokio::test]
async fn the_handler_learns_the_tls_parameters_and_the_user() {
    let pkis = Pkis::new();
    let pki = tls::load_pki("mx.test", &pkis.mx.cert_path, &pkis.mx.key_path).unwrap();
    let table = CredentialsTable::parse(
        "creds",
        std::path::Path::new("inline"),
        &format!(
            "erin {}\n",
            auth::hash_password("erin-pw", PasswordScheme::Bcrypt)
        ),
    )
    .unwrap();
    let security = SessionSecurity {
        tls: Some(tls::server_config(&ServerTlsSettings::new(vec![pki], "mx.test")).unwrap()),
        implicit_tls: true,
        auth: Some(
            Authenticator::with_table("creds", table).with_failure_delay(std::time::Duration::ZERO),
        ),
        ..SessionSecurity::default()
    };
    let config = Arc::new(ServerConfig {
        hostname: "mx.test".into(),
        auth: AuthPolicy::Required,
        ..ServerConfig::default()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut recorder = Recorder::default();
    let events = recorder.events.clone();
    let server = tokio::spawn(async move {
        let (tcp, peer) = listener.accept().await.unwrap();
        let conn = Connection {
            id: 1,
            peer,
            local: addr,
            local_user: None,
        };
        let (_stop, shutdown) = tokio::sync::watch::channel(false);
        let mut stream = MaybeTls::Plain(tcp);
        smtp_in::drive(
            &mut stream,
            config,
            &security,
            &conn,
            &mut recorder,
            &petrel_daemon::clock::SystemClock,
            shutdown,
        )
        .await
        .unwrap()
    });
    let (mut c, _) = Client::connect_tls(addr, &pkis.client_tls(None), "mx.test")
        .await
        .unwrap();
    c.greet().await;
    assert_eq!(
        c.cmd(&format!("AUTH PLAIN {}", b64("\0erin\0wrong"))).await,
        AUTH_FAILED
    );
    assert_eq!(
        c.cmd(&format!("AUTH PLAIN {}", b64("\0erin\0erin-pw")))
            .await,
        AUTH_OK
    );
    assert_eq!(c.cmd("QUIT").await, "221 2.0.0 Bye\r\n");
    assert_eq!(server.await.unwrap(), smtp_in::Ending::Closed);
    assert_eq!(
        *events.lock().unwrap(),
        ["tls TLSv1.3", "auth erin false", "auth erin true"]
    );
}
