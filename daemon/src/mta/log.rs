//! Log lines of smtp-out, in OpenSMTPD's style: the session id as 16 hex digits, then
//! `mta EVENT key=value …`, one line per event. They go to `tracing` under the target
//! `petrel::mta`, at info level (errors at warn).

use std::net::SocketAddr;

use petrel_core::relay::Target;
use petrel_core::session::client::{Outcome, OutcomeKind};

/// The log target of every smtp-out line.
pub const TARGET: &str = "petrel::mta";

fn id(session: u64) -> String {
    format!("{session:016x}")
}

/// `mta connecting address=smtp://192.0.2.1:25 host=mx.example.org`.
#[must_use]
pub fn connecting(session: u64, target: &Target) -> String {
    format!(
        "{} mta connecting address={} host={}",
        id(session),
        target.url(),
        target.host()
    )
}

/// `mta connected source=192.0.2.10:40123`.
#[must_use]
pub fn connected(session: u64, local: SocketAddr) -> String {
    format!("{} mta connected source={local}", id(session))
}

/// `mta tls ciphers=… verify=yes|no`.
#[must_use]
pub fn tls(session: u64, description: &str, verify: bool) -> String {
    format!(
        "{} mta tls ciphers={description} verify={}",
        id(session),
        if verify { "yes" } else { "no" }
    )
}

/// `mta error reason=…`: the session could not be used.
#[must_use]
pub fn error(session: u64, reason: &str) -> String {
    format!("{} mta error reason={}", id(session), one_line(reason))
}

/// What OpenSMTPD writes as the result of a delivery.
fn result(kind: OutcomeKind) -> &'static str {
    match kind {
        OutcomeKind::Delivered => "Ok",
        OutcomeKind::Temporary => "TempFail",
        OutcomeKind::Permanent => "PermFail",
    }
}

/// One recipient's delivery:
/// `mta delivery evpid=… from=<a@b> to=<c@d> source="192.0.2.10" relay="192.0.2.1 (mx.example.org)" result="Ok" stat="250 2.0.0 Ok"`.
#[must_use]
pub fn delivery(
    session: u64,
    evpid: Option<u64>,
    from: &str,
    to: &str,
    local: SocketAddr,
    target: &Target,
    outcome: &Outcome,
) -> String {
    let evpid = evpid.map_or_else(|| "-".to_owned(), |e| format!("{e:016x}"));
    format!(
        "{} mta delivery evpid={evpid} from={from} to={to} source=\"{}\" relay=\"{} ({})\" \
         result=\"{}\" stat=\"{}\"",
        id(session),
        local.ip(),
        target.addr.ip(),
        target.host(),
        result(outcome.kind),
        one_line(&outcome.reply.to_string()).replace('"', "'"),
    )
}

/// `mta disconnected reason=… messages=N`.
#[must_use]
pub fn disconnected(session: u64, reason: &str, messages: usize) -> String {
    format!(
        "{} mta disconnected reason={} messages={messages}",
        id(session),
        one_line(reason)
    )
}

/// Multi-line replies on one log line.
fn one_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

/// Emits a line at info level.
pub fn info(line: &str) {
    tracing::info!(target: TARGET, "{line}");
}

/// Emits a line at warn level.
pub fn warn(line: &str) {
    tracing::warn!(target: TARGET, "{line}");
}
