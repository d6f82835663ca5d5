//! Delivery over LMTP (RFC 2033), to a TCP port or a unix socket.
//!
//! One connection per batch: LHLO, MAIL, one RCPT per recipient, DATA, and after the end of data
//! one reply per accepted recipient, which is that recipient's outcome. The protocol is the
//! core's [`ClientSession`] with [`Protocol::Lmtp`]; this module only moves bytes and time.
//!
//! The RCPT argument is the recipient's address with `rcpt-to`, otherwise the local user name
//! alone (`RCPT TO:<bob>`), as OpenSMTPD's `mail.lmtp -u` sends and as Dovecot and Cyrus expect.
//! The message goes as queued (CRLF), without the trace fields the other methods add: the LMTP
//! server is the final delivery agent and adds its own.
//!
//! Failing to connect, a lost connection and timeouts are temporary failures for every
//! recipient not yet answered; a 4xx reply is temporary and a 5xx permanent for its recipient.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use petrel_core::Time;
use petrel_core::session::client::{
    ClientConfig, ClientEvent, ClientSession, ClientTls, Message, OutcomeKind, Protocol,
    TransactionReport,
};
use petrel_core::smtp::{ForwardPath, MailParams, Mailbox, RcptParams, ReversePath};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpStream, UnixStream};

use super::error::{DeliveryError, fan_out};
use super::{Options, Recipient};
use crate::clock::{Clock, SystemClock};

/// Where an LMTP server listens.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum LmtpDest {
    /// `host:port` or `[address]:port`.
    Tcp {
        /// A host name or an address (IPv6 without brackets).
        host: String,
        /// The port.
        port: u16,
    },
    /// A unix socket, by absolute path.
    Unix(PathBuf),
}

/// An LMTP destination that does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid LMTP destination {dest:?}: {reason}")]
pub struct BadLmtpDest {
    /// The text given.
    pub dest: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl LmtpDest {
    /// Parses `host:port`, `[ipv6]:port` or `/path/to/socket`, the forms of `action … lmtp`.
    pub fn parse(s: &str) -> Result<LmtpDest, BadLmtpDest> {
        let bad = |reason| BadLmtpDest {
            dest: s.to_owned(),
            reason,
        };
        if s.starts_with('/') {
            return Ok(LmtpDest::Unix(PathBuf::from(s)));
        }
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (host, after) = rest.split_once(']').ok_or_else(|| bad("missing ]"))?;
            let port = after
                .strip_prefix(':')
                .ok_or_else(|| bad("a port is required"))?;
            let host = host
                .get(..5)
                .filter(|p| p.eq_ignore_ascii_case("IPv6:"))
                .map_or(host, |_| &host[5..]);
            (host, port)
        } else {
            s.rsplit_once(':')
                .ok_or_else(|| bad("a port is required"))?
        };
        if host.is_empty() {
            return Err(bad("empty host"));
        }
        let port = port.parse().map_err(|_| bad("invalid port"))?;
        Ok(LmtpDest::Tcp {
            host: host.to_owned(),
            port,
        })
    }
}

impl fmt::Display for LmtpDest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LmtpDest::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            LmtpDest::Tcp { host, port } => write!(f, "{host}:{port}"),
            LmtpDest::Unix(path) => write!(f, "{}", path.display()),
        }
    }
}

/// Delivers `message` to `rcpts` through the LMTP server at `dest`; one result per recipient.
pub async fn deliver(
    dest: &LmtpDest,
    rcpt_to: bool,
    sender: &str,
    message: &[u8],
    rcpts: &[&Recipient],
    options: &Options,
) -> Vec<Result<(), DeliveryError>> {
    let mut results: Vec<Option<Result<(), DeliveryError>>> = rcpts.iter().map(|_| None).collect();
    let from = match reverse_path(sender) {
        Ok(from) => from,
        Err(e) => return fan_out(e, rcpts.len()).into_iter().map(Err).collect(),
    };
    // Recipients that cannot be written as an LMTP path fail alone.
    let mut sent = Vec::new();
    let mut paths = Vec::new();
    for (i, rcpt) in rcpts.iter().enumerate() {
        match forward_path(rcpt, rcpt_to) {
            Ok(path) => {
                sent.push(i);
                paths.push((path, RcptParams::default()));
            }
            Err(e) => results[i] = Some(Err(e)),
        }
    }
    if !paths.is_empty() {
        let smtputf8 = !sender.is_ascii() || rcpts.iter().any(|r| !r.address.is_ascii());
        let msg = Message {
            from,
            params: MailParams {
                smtputf8,
                ..MailParams::default()
            },
            rcpts: paths,
            content: Arc::from(message),
        };
        let done: Vec<Result<(), DeliveryError>> = match transact(dest, msg, options).await {
            Ok(report) => report
                .rcpts
                .into_iter()
                .map(|o| {
                    let reply = o.reply.to_string().replace('\n', " ");
                    let said = if o.remote { "said" } else { "failed:" };
                    match o.kind {
                        OutcomeKind::Delivered => Ok(()),
                        OutcomeKind::Temporary => Err(DeliveryError::Temporary(format!(
                            "LMTP server {dest} {said} {reply}"
                        ))),
                        OutcomeKind::Permanent => Err(DeliveryError::Permanent(format!(
                            "LMTP server {dest} {said} {reply}"
                        ))),
                    }
                })
                .collect(),
            Err(e) => fan_out(e, sent.len()).into_iter().map(Err).collect(),
        };
        for (i, r) in sent.into_iter().zip(done) {
            results[i] = Some(r);
        }
    }
    results
        .into_iter()
        .map(|r| {
            r.unwrap_or_else(|| Err(DeliveryError::Temporary("LMTP server gave no reply".into())))
        })
        .collect()
}

fn reverse_path(sender: &str) -> Result<ReversePath, DeliveryError> {
    if sender.is_empty() {
        return Ok(ReversePath::Null);
    }
    Mailbox::parse(sender, true)
        .map(ReversePath::Mailbox)
        .map_err(|e| DeliveryError::BadAddress {
            address: sender.to_owned(),
            reason: e.to_string(),
        })
}

fn forward_path(rcpt: &Recipient, rcpt_to: bool) -> Result<ForwardPath, DeliveryError> {
    if rcpt_to {
        return Mailbox::parse(&rcpt.address, true)
            .map(ForwardPath::Mailbox)
            .map_err(|e| DeliveryError::BadAddress {
                address: rcpt.address.clone(),
                reason: e.to_string(),
            });
    }
    let name = &rcpt.user.name;
    if name.is_empty()
        || name
            .chars()
            .any(|c| c.is_control() || c == ' ' || c == '<' || c == '>')
    {
        return Err(DeliveryError::BadAddress {
            address: name.clone(),
            reason: "not usable as an LMTP recipient".into(),
        });
    }
    // The core's paths are mailboxes or the bare `<postmaster>`; the latter is the only form
    // written without a domain, and it prints exactly `<name>`, which is what LMTP servers
    // expect for a local user.
    Ok(ForwardPath::Postmaster(name.clone()))
}

/// Connects and runs one transaction.
async fn transact(
    dest: &LmtpDest,
    msg: Message,
    options: &Options,
) -> Result<TransactionReport, DeliveryError> {
    let connect_failed = |e: std::io::Error| {
        DeliveryError::Temporary(format!("cannot connect to LMTP server {dest}: {e}"))
    };
    let timeout = options.lmtp_connect_timeout;
    let timed_out = || {
        DeliveryError::Temporary(format!(
            "cannot connect to LMTP server {dest}: timed out after {}s",
            timeout.as_secs()
        ))
    };
    match dest {
        LmtpDest::Tcp { host, port } => {
            let mut stream =
                tokio::time::timeout(timeout, TcpStream::connect((host.as_str(), *port)))
                    .await
                    .map_err(|_| timed_out())?
                    .map_err(connect_failed)?;
            let _ = stream.set_nodelay(true);
            run(&mut stream, dest, msg, options).await
        }
        LmtpDest::Unix(path) => {
            let mut stream = tokio::time::timeout(timeout, UnixStream::connect(path))
                .await
                .map_err(|_| timed_out())?
                .map_err(connect_failed)?;
            run(&mut stream, dest, msg, options).await
        }
    }
}

/// Drives the client machine over `stream` until it closes; returns the transaction's report.
async fn run<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    dest: &LmtpDest,
    msg: Message,
    options: &Options,
) -> Result<TransactionReport, DeliveryError> {
    let clock = SystemClock;
    let config = ClientConfig {
        helo: options.hostname.clone().unwrap_or_else(|| {
            rustix::system::uname()
                .nodename()
                .to_string_lossy()
                .into_owned()
        }),
        protocol: Protocol::Lmtp,
        tls: ClientTls::Off,
        auth: None,
        pipelining: true,
        // DATA is what every LMTP server implements; a local hop gains nothing from BDAT.
        chunking: false,
        timeouts: options.lmtp_timeouts,
        trace: false,
    };
    let mut session = ClientSession::new(Arc::new(config), false, clock.now());
    session.send(msg, clock.now());
    session.quit(clock.now());
    let mut report = None;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        while let Some(bytes) = session.poll_transmit() {
            if let Err(e) = stream.write_all(&bytes).await {
                tracing::debug!(%dest, error = %e, "LMTP write failed");
                session.handle_eof(clock.now());
                break;
            }
        }
        while let Some(event) = session.poll_event() {
            match event {
                ClientEvent::Done(r) => report = Some(r),
                ClientEvent::Failed(e) => {
                    tracing::debug!(%dest, stage = ?e.stage, reply = %e.reply, "LMTP session failed");
                }
                ClientEvent::Close => {
                    let _ = stream.shutdown().await;
                    return report.ok_or_else(|| {
                        DeliveryError::Temporary(format!(
                            "LMTP server {dest} closed the session before the message was sent"
                        ))
                    });
                }
                // TLS is off, so never asked for; idle means waiting for the QUIT reply; tracing
                // is off.
                ClientEvent::StartTls | ClientEvent::Ready | ClientEvent::Trace(_) => {}
            }
        }
        // Output and events come only from inputs, so both are drained: wait for the next.
        let wait = session.poll_timeout().map(|t| until(clock.now(), t));
        match read(stream, &mut buf, wait).await {
            Some(Ok(0)) | Some(Err(_)) => session.handle_eof(clock.now()),
            Some(Ok(n)) => session.handle_input(&buf[..n], clock.now()),
            None => session.handle_timeout(clock.now()),
        }
    }
}

async fn read<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut [u8],
    wait: Option<Duration>,
) -> Option<std::io::Result<usize>> {
    match wait {
        Some(d) => tokio::time::timeout(d, stream.read(buf)).await.ok(),
        None => Some(stream.read(buf).await),
    }
}

fn until(now: Time, deadline: Time) -> Duration {
    deadline.saturating_since(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lmtp_destinations() {
        assert_eq!(
            LmtpDest::parse("localhost:24").unwrap(),
            LmtpDest::Tcp {
                host: "localhost".into(),
                port: 24
            }
        );
        assert_eq!(
            LmtpDest::parse("[IPv6:::1]:2424").unwrap().to_string(),
            "[::1]:2424"
        );
        assert_eq!(
            LmtpDest::parse("/run/dovecot/lmtp").unwrap(),
            LmtpDest::Unix("/run/dovecot/lmtp".into())
        );
        assert!(LmtpDest::parse("localhost").is_err());
        assert!(LmtpDest::parse(":24").is_err());
        assert!(LmtpDest::parse("host:port").is_err());
    }
}
