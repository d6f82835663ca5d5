//! A loopback SMTP server for the smtp-out tests: petrel's own server machine in a tokio task,
//! with a policy closure answering its requests and knobs for misbehaviour (drop the
//! connection in the middle of the data, answer slowly, STARTTLS with a test certificate).
//! Every session is recorded: what the client sent in each read, what was stored.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use petrel_core::Time;
use petrel_core::session::server::{
    ConnectionInfo, Envelope, Request, ServerConfig, ServerEvent, ServerSession,
};
use petrel_core::session::{Credentials, Decision};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

/// Answers the server machine's requests.
pub type Policy = Arc<dyn Fn(&Request) -> Decision + Send + Sync>;

/// A policy that accepts everything.
pub fn accept_all() -> Policy {
    Arc::new(|_| Decision::Accept)
}

/// How the server behaves.
#[derive(Clone)]
pub struct Behaviour {
    /// The machine's settings.
    pub config: ServerConfig,
    /// The answers.
    pub policy: Policy,
    /// Close the connection, without a word, when a read from the client contains this text
    /// (a line of the content: the connection drops in the middle of DATA or BDAT).
    pub drop_on: Option<String>,
    /// With `drop_on`: drop only this many times (shared count), then behave.
    pub drops_left: Option<Arc<AtomicUsize>>,
    /// Wait this long before answering the end of data.
    pub delay_commit: Option<Duration>,
    /// STARTTLS (and the config's TLS policy should offer it).
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// TLS from the first byte (smtps), with the `tls` acceptor.
    pub implicit_tls: bool,
}

impl Behaviour {
    /// The default server, accepting everything.
    pub fn new() -> Behaviour {
        Behaviour {
            config: ServerConfig {
                hostname: "mx.test".into(),
                ..ServerConfig::default()
            },
            policy: accept_all(),
            drop_on: None,
            drops_left: None,
            delay_commit: None,
            tls: None,
            implicit_tls: false,
        }
    }

    /// With this policy.
    pub fn policy(mut self, policy: impl Fn(&Request) -> Decision + Send + Sync + 'static) -> Self {
        self.policy = Arc::new(policy);
        self
    }
}

/// A message the server stored.
#[derive(Clone, Debug)]
pub struct Stored {
    /// Its envelope.
    pub envelope: Envelope,
    /// Its content.
    pub content: Vec<u8>,
}

/// One session as the server saw it.
#[derive(Clone, Debug, Default)]
pub struct SessionLog {
    /// Each read from the client, as text.
    pub reads: Vec<String>,
    /// Messages stored.
    pub stored: Vec<Stored>,
    /// Credentials presented.
    pub auth: Vec<Credentials>,
    /// TLS was established.
    pub tls: bool,
}

impl SessionLog {
    /// The client's lines, in order (content included).
    pub fn lines(&self) -> Vec<String> {
        self.reads
            .concat()
            .split("\r\n")
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

/// A running server.
pub struct SmtpServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its sessions, in the order they started.
    pub sessions: Arc<Mutex<Vec<SessionLog>>>,
    /// Sessions open now, and the most ever open at once.
    pub concurrency: Arc<Mutex<(usize, usize)>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SmtpServer {
    /// Starts a server on 127.0.0.1 (any port).
    pub async fn start(behaviour: Behaviour) -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let sessions = Arc::new(Mutex::new(Vec::new()));
        let logs = sessions.clone();
        let concurrency = Arc::new(Mutex::new((0, 0)));
        let counts = concurrency.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, peer)) = listener.accept().await else {
                    return;
                };
                let index = {
                    let mut logs = logs.lock().unwrap();
                    logs.push(SessionLog::default());
                    logs.len() - 1
                };
                let behaviour = behaviour.clone();
                let logs = logs.clone();
                let counts = counts.clone();
                {
                    let mut c = counts.lock().unwrap();
                    c.0 += 1;
                    c.1 = c.1.max(c.0);
                }
                tokio::spawn(async move {
                    let _ = serve(Box::new(stream), peer, &behaviour, &logs, index).await;
                    counts.lock().unwrap().0 -= 1;
                });
            }
        });
        SmtpServer {
            addr,
            sessions,
            concurrency,
            task,
        }
    }

    /// A copy of the session logs.
    pub fn sessions(&self) -> Vec<SessionLog> {
        self.sessions.lock().unwrap().clone()
    }

    /// The most sessions that were ever open at once.
    pub fn peak_sessions(&self) -> usize {
        self.concurrency.lock().unwrap().1
    }

    /// Every message stored, over all sessions.
    pub fn stored(&self) -> Vec<Stored> {
        self.sessions().into_iter().flat_map(|s| s.stored).collect()
    }
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

fn now() -> Time {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    Time::from_millis(ms as u64)
}

async fn flush(
    stream: &mut Box<dyn Stream>,
    session: &mut ServerSession,
) -> std::io::Result<Vec<u8>> {
    let mut written = Vec::new();
    while let Some(bytes) = session.poll_transmit() {
        stream.write_all(&bytes).await?;
        written.extend_from_slice(&bytes);
    }
    stream.flush().await?;
    Ok(written)
}

async fn serve(
    mut stream: Box<dyn Stream>,
    peer: SocketAddr,
    behaviour: &Behaviour,
    logs: &Arc<Mutex<Vec<SessionLog>>>,
    index: usize,
) -> std::io::Result<()> {
    if behaviour.implicit_tls {
        let acceptor = behaviour.tls.clone().expect("smtps without a certificate");
        stream = Box::new(acceptor.accept(stream).await?);
        logs.lock().unwrap()[index].tls = true;
    }
    let info = ConnectionInfo {
        peer: peer.ip().to_string(),
        tls: behaviour.implicit_tls,
    };
    let mut session = ServerSession::new(Arc::new(behaviour.config.clone()), info, now());
    let mut content = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        flush(&mut stream, &mut session).await?;
        if let Some(event) = session.poll_event() {
            match event {
                ServerEvent::Request(id, request) => {
                    if let Request::Auth { credentials, .. } = &request {
                        logs.lock().unwrap()[index].auth.push(credentials.clone());
                    }
                    if let (Request::Commit { .. }, Some(d)) = (&request, behaviour.delay_commit) {
                        tokio::time::sleep(d).await;
                    }
                    let decision = (behaviour.policy)(&request);
                    if let Request::Commit { envelope, .. } = &request {
                        let ok = matches!(decision, Decision::Accept)
                            || matches!(&decision, Decision::Reply(r) | Decision::Disconnect(r)
                                if r.is_positive());
                        if ok {
                            logs.lock().unwrap()[index].stored.push(Stored {
                                envelope: envelope.clone(),
                                content: std::mem::take(&mut content),
                            });
                        }
                    }
                    session.answer(id, decision, now());
                }
                ServerEvent::DataChunk(chunk) => content.extend_from_slice(&chunk),
                ServerEvent::DataAborted => content.clear(),
                ServerEvent::StartTls => {
                    flush(&mut stream, &mut session).await?;
                    let acceptor = behaviour
                        .tls
                        .clone()
                        .expect("STARTTLS without a certificate");
                    stream = Box::new(acceptor.accept(stream).await?);
                    logs.lock().unwrap()[index].tls = true;
                    session.tls_established(now());
                }
                ServerEvent::Close => {
                    flush(&mut stream, &mut session).await?;
                    let _ = stream.shutdown().await;
                    return Ok(());
                }
                ServerEvent::Trace(_) => {}
            }
            continue;
        }
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        logs.lock().unwrap()[index]
            .reads
            .push(String::from_utf8_lossy(&buf[..n]).into_owned());
        if let Some(marker) = &behaviour.drop_on
            && String::from_utf8_lossy(&buf[..n]).contains(marker.as_str())
        {
            let drop = match &behaviour.drops_left {
                None => true,
                Some(left) => left
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok(),
            };
            if drop {
                return Ok(());
            }
        }
        session.handle_input(&buf[..n], now());
    }
}

/// A loopback port nothing listens on: connections to it are refused.
pub fn closed_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}
