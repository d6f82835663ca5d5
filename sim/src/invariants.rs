//! The invariants every run is judged by:
//!
//! - **no loss**: every recipient of a message acknowledged with 250 ends delivered, bounced to
//!   its sender, or still queued on some Petrel host's disk within the queue's lifetime;
//! - **settled in time**: nothing is still queued past its lifetime;
//! - **at most once, except in the at-least-once window**: a second copy to a recipient (or a
//!   copy and a bounce) is allowed only where SMTP allows it — the connection was lost after
//!   the final dot, a host crashed, or the network failed — and such duplicates are counted;
//! - **bytes intact**: every delivered copy is the submitted content with only `Received:`
//!   headers added in front;
//! - **retries on schedule**: no retry earlier than the backoff allows (and, where the world
//!   has no faults, none later than it says);
//! - **bounces only to senders**: a delivery status notification goes only to the non-null
//!   sender of the message it reports on;
//! - **delivered**, where a family says every recipient can be: no bounce at all.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use petrel_daemon::queue::{Inline, Store};

use crate::clock::EPOCH_MS;
use crate::disk::SimDisk;
use crate::record::{FaultEvent, Log, Recorder};
use crate::world::{DATA_DIR, WorldSpec};

/// How retries are checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Schedule {
    /// Not at all (several MX hosts, crashes: attempts cannot be counted from outside).
    Off,
    /// No retry before the schedule.
    NotEarly,
    /// Every retry when the schedule says, give or take the time a session takes.
    Exact,
}

/// What a scenario lets the invariants expect.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Expect {
    /// Recipients rewritten on the way (a forwarder's aliases): submitted -> final.
    pub aliases: BTreeMap<String, String>,
    /// Faults in the world open the at-least-once window for every message.
    pub allow_dups: bool,
    /// How retries are checked.
    pub schedule: Schedule,
    /// The first retry interval of relaying (the schedule is `created + base × n²`).
    pub retry_base: Duration,
    /// The queue's lifetime.
    pub ttl: Duration,
    /// Every recipient must be delivered or bounced by the end (nothing may stay queued).
    pub must_settle: bool,
    /// Every recipient must be delivered: a bounce is a violation (`undelivered`).
    pub must_deliver: bool,
    /// Clients none of whose messages may be acknowledged (one-shot senders a greylisting
    /// host must turn away).
    pub never_acked: Vec<String>,
    /// Clients every one of whose messages must be acknowledged in the end (senders that
    /// retry, which a greylisting host must let in).
    pub must_ack: Vec<String>,
}

impl Default for Expect {
    fn default() -> Self {
        Expect {
            aliases: BTreeMap::new(),
            allow_dups: false,
            schedule: Schedule::Off,
            retry_base: Duration::from_secs(400),
            ttl: Duration::from_secs(4 * 86_400),
            must_settle: true,
            must_deliver: false,
            never_acked: Vec::new(),
            must_ack: Vec::new(),
        }
    }
}

/// A broken invariant.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Violation {
    /// Which invariant (`lost`, `duplicate`, `content`, `schedule`, `bounce`, `stuck`,
    /// `undelivered`, `world`).
    pub kind: String,
    /// What happened.
    pub detail: String,
}

/// Counts of a run.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// Messages the clients tried to submit.
    pub submitted: usize,
    /// Messages acknowledged with 250.
    pub acked: usize,
    /// Recipients of acknowledged messages.
    pub recipients: usize,
    /// Recipients delivered.
    pub delivered: usize,
    /// Recipients bounced to their sender.
    pub bounced: usize,
    /// Recipients still queued at the end.
    pub queued: usize,
    /// Extra copies inside the at-least-once window.
    pub duplicates: usize,
    /// Delay notices received.
    pub delay_notices: usize,
    /// RCPT commands the remote MX hosts saw.
    pub rcpt_attempts: usize,
}

/// The judgement of a run.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Verdict {
    /// Broken invariants (empty: passed).
    pub violations: Vec<Violation>,
    /// Counts.
    pub stats: Stats,
}

fn header_block(content: &[u8]) -> &[u8] {
    match find(content, b"\r\n\r\n") {
        Some(i) => &content[..i + 2],
        None => content,
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn id_after(hay: &[u8], at: usize) -> Option<u64> {
    let digits: String = hay[at..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .map(|&b| b as char)
        .collect();
    digits.parse().ok()
}

/// The `X-Sim-Id` of a message's own header block.
#[must_use]
pub fn top_id(content: &[u8]) -> Option<u64> {
    let headers = header_block(content);
    for line in headers.split(|&b| b == b'\n') {
        if let Some(rest) = line.strip_prefix(b"X-Sim-Id: ") {
            return id_after(rest, 0);
        }
    }
    None
}

/// The first `X-Sim-Id` anywhere (a report quoting the original's headers).
#[must_use]
pub fn embedded_id(content: &[u8]) -> Option<u64> {
    let key = b"X-Sim-Id: ";
    find(content, key).and_then(|i| id_after(content, i + key.len()))
}

/// The recipients a report says failed, and whether it is a failure report at all
/// (`None`: a delay notice or something else).
fn failed_recipients(content: &[u8]) -> Option<Vec<String>> {
    let text = String::from_utf8_lossy(content);
    let mut failed = Vec::new();
    let mut any = false;
    for block in text.split("\r\n\r\n") {
        if !block.contains("Action: failed") {
            continue;
        }
        any = true;
        for line in block.lines() {
            for key in ["Final-Recipient: rfc822; ", "Original-Recipient: rfc822; "] {
                if let Some(addr) = line.strip_prefix(key) {
                    failed.push(addr.trim().to_ascii_lowercase());
                }
            }
        }
    }
    any.then_some(failed)
}

/// `content` without the `Received:` headers in front of it.
fn strip_received(content: &[u8]) -> &[u8] {
    let mut at = 0;
    let mut in_received = false;
    loop {
        let rest = &content[at..];
        let line_end = match find(rest, b"\r\n") {
            Some(i) => i + 2,
            None => return rest,
        };
        let line = &rest[..line_end];
        if line.starts_with(b"Received:") {
            in_received = true;
        } else if in_received && (line.starts_with(b" ") || line.starts_with(b"\t")) {
        } else {
            return rest;
        }
        at += line_end;
    }
}

/// Where each (message, recipient) stands, from what the MX hosts received.
#[derive(Debug, Default)]
struct Index {
    /// Copies per (message, final recipient).
    delivered: BTreeMap<(u64, String), usize>,
    /// Copies of which the MX host gave no 250 (it hung up after the dot).
    unacked: BTreeSet<(u64, String)>,
    /// Failure reports per (message, recipient as the report names it).
    bounced: BTreeMap<(u64, String), usize>,
    delay_notices: usize,
    violations: Vec<Violation>,
}

fn violation(kind: &str, detail: String) -> Violation {
    Violation {
        kind: kind.into(),
        detail,
    }
}

fn index(log: &Log) -> Index {
    let mut ix = Index::default();
    for r in &log.received {
        if let Some(id) = top_id(&r.content) {
            if r.refused {
                continue;
            }
            match log.submissions.get(&id) {
                Some(sub) => {
                    let body = strip_received(&r.content);
                    if body != sub.content.as_slice() {
                        let at = body
                            .iter()
                            .zip(&sub.content)
                            .position(|(a, b)| a != b)
                            .unwrap_or(body.len().min(sub.content.len()));
                        ix.violations.push(violation(
                            "content",
                            format!(
                                "message {id} reached {} altered: {} bytes instead of {}, first difference at byte {at}",
                                r.sink,
                                body.len(),
                                sub.content.len()
                            ),
                        ));
                    }
                }
                None => ix.violations.push(violation(
                    "content",
                    format!(
                        "{} received message {id}, which was never submitted",
                        r.sink
                    ),
                )),
            }
            for rcpt in &r.rcpts {
                let key = (id, rcpt.to_ascii_lowercase());
                *ix.delivered.entry(key.clone()).or_default() += 1;
                if !r.acked {
                    ix.unacked.insert(key);
                }
            }
            continue;
        }
        // Not a message of a client: it must be a report on one, from the null sender.
        if !r.sender.is_empty() {
            ix.violations.push(violation(
                "bounce",
                format!(
                    "{} received a message from <{}> that no client sent",
                    r.sink, r.sender
                ),
            ));
            continue;
        }
        let Some(id) = embedded_id(&r.content) else {
            ix.violations.push(violation(
                "bounce",
                format!("{} received a report that quotes no message", r.sink),
            ));
            continue;
        };
        let Some(sub) = log.submissions.get(&id) else {
            continue;
        };
        if sub.sender.is_empty() {
            // The only report a message from the null sender may cause goes to a postmaster.
            if r.rcpts
                .iter()
                .all(|a| a.to_ascii_lowercase().starts_with("postmaster@"))
            {
                if !r.refused && failed_recipients(&r.content).is_some() {
                    for rcpt in &sub.rcpts {
                        *ix.bounced
                            .entry((id, rcpt.to_ascii_lowercase()))
                            .or_default() += 1;
                    }
                }
            } else {
                ix.violations.push(violation(
                    "bounce",
                    format!(
                        "message {id} came from the null sender, yet a report on it went to {:?}",
                        r.rcpts
                    ),
                ));
            }
            continue;
        }
        for rcpt in &r.rcpts {
            if !rcpt.eq_ignore_ascii_case(&sub.sender) {
                ix.violations.push(violation(
                    "bounce",
                    format!(
                        "a report on message {id} went to <{rcpt}>, not its sender <{}>",
                        sub.sender
                    ),
                ));
            }
        }
        match failed_recipients(&r.content) {
            Some(failed) => {
                if r.refused {
                    continue;
                }
                let failed: BTreeSet<String> = failed.into_iter().collect();
                for f in failed {
                    *ix.bounced.entry((id, f)).or_default() += 1;
                }
            }
            None => ix.delay_notices += 1,
        }
    }
    ix
}

/// True when every client has finished and every recipient of every acknowledged message is
/// delivered or bounced: the run can stop.
#[must_use]
pub fn settled(spec: &WorldSpec, log: &Log) -> bool {
    if log.clients_done < spec.clients.len() {
        return false;
    }
    let ix = index(log);
    log.submissions.values().all(|sub| {
        sub.acked_at.is_none()
            || sub.rcpts.iter().all(|rcpt| {
                let (d, b) = outcome(&ix, &spec.expect, sub.id, rcpt);
                d + b > 0
            })
    })
}

/// Copies delivered and failure reports for a recipient of a message.
fn outcome(ix: &Index, expect: &Expect, id: u64, rcpt: &str) -> (usize, usize) {
    let rcpt = rcpt.to_ascii_lowercase();
    let fin = expect
        .aliases
        .get(&rcpt)
        .cloned()
        .unwrap_or_else(|| rcpt.clone());
    let get = |m: &BTreeMap<(u64, String), usize>, a: &str| m.get(&(id, a.to_owned())).copied();
    let delivered = get(&ix.delivered, &fin).unwrap_or(0);
    let bounced = get(&ix.bounced, &rcpt)
        .into_iter()
        .chain(get(&ix.bounced, &fin))
        .max()
        .unwrap_or(0);
    (delivered, bounced)
}

/// What the Petrel hosts' disks still hold: (message, recipient) pairs, and the messages a
/// report is queued for.
#[derive(Debug, Default)]
struct Queued {
    rcpts: BTreeSet<(u64, String)>,
    reports: BTreeSet<u64>,
}

fn queued(disks: &BTreeMap<String, SimDisk>, violations: &mut Vec<Violation>) -> Queued {
    let mut q = Queued::default();
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().build() else {
        return q;
    };
    for (name, disk) in disks {
        let fork = disk.fork();
        let root = Path::new(DATA_DIR).join("queue");
        let result = rt.block_on(async {
            let (store, recovered) = Store::open(Arc::new(fork), Inline, root, 1).await?;
            let mut found = Vec::new();
            for r in recovered {
                let content = store.read_content(r.msg).await?;
                found.push((content, r.envelopes));
            }
            Ok::<_, petrel_daemon::queue::StoreError>(found)
        });
        match result {
            Ok(found) => {
                for (content, envelopes) in found {
                    if let Some(id) = top_id(&content) {
                        for e in envelopes {
                            q.rcpts.insert((id, e.rcpt.to_ascii_lowercase()));
                            q.rcpts.insert((id, e.dest.to_ascii_lowercase()));
                        }
                    } else if let Some(id) = embedded_id(&content) {
                        q.reports.insert(id);
                    }
                }
            }
            Err(e) => violations.push(violation("world", format!("{name}: queue unreadable: {e}"))),
        }
    }
    q
}

/// What a host's clock read at simulated time `t`, in milliseconds.
fn clock_at(log: &Log, host: &str, t: Duration) -> i64 {
    let jumps: i64 = log
        .faults
        .iter()
        .filter(|(at, f)| *at <= t && matches!(f, FaultEvent::ClockJump(h, _) if h == host))
        .map(|(_, f)| match f {
            FaultEvent::ClockJump(_, ms) => *ms,
            _ => 0,
        })
        .sum();
    EPOCH_MS as i64 + t.as_millis() as i64 + jumps
}

/// Judges a run from its record and the Petrel hosts' disks at the end.
#[must_use]
pub fn judge(
    spec: &WorldSpec,
    rec: &Recorder,
    disks: &BTreeMap<String, SimDisk>,
    ips: &BTreeMap<String, IpAddr>,
    end: Duration,
) -> Verdict {
    let log = rec.lock();
    let expect = &spec.expect;
    let mut verdict = Verdict::default();
    for e in &log.errors {
        verdict.violations.push(violation("world", e.clone()));
    }
    let ix = index(&log);
    verdict.violations.extend(ix.violations.iter().cloned());
    let stats = &mut verdict.stats;
    stats.submitted = log.submissions.len();
    stats.delay_notices = ix.delay_notices;
    stats.rcpt_attempts = log.rcpts.len();
    let mut on_disk: Option<Queued> = None;
    let crashed = log
        .faults
        .iter()
        .any(|(_, f)| matches!(f, FaultEvent::Crash(_)));
    for sub in log.submissions.values() {
        let Some(_) = sub.acked_at else {
            if expect.must_ack.contains(&sub.client) {
                verdict.violations.push(violation(
                    "must-ack",
                    format!(
                        "message {} from {} was never acknowledged, though that client retries",
                        sub.id, sub.client
                    ),
                ));
            }
            continue;
        };
        if expect.never_acked.contains(&sub.client) {
            verdict.violations.push(violation(
                "never-acked",
                format!(
                    "message {} from {} was acknowledged, though that client must be turned away",
                    sub.id, sub.client
                ),
            ));
        }
        stats.acked += 1;
        for rcpt in &sub.rcpts {
            stats.recipients += 1;
            let (d, b) = outcome(&ix, expect, sub.id, rcpt);
            let lower = rcpt.to_ascii_lowercase();
            let fin = expect.aliases.get(&lower).cloned().unwrap_or(lower.clone());
            let window = expect.allow_dups
                || crashed
                || sub.ambiguous > 0
                || ix.unacked.contains(&(sub.id, fin.clone()));
            if d > 0 {
                stats.delivered += 1;
            } else if b > 0 {
                stats.bounced += 1;
                if expect.must_deliver {
                    verdict.violations.push(violation(
                        "undelivered",
                        format!("message {} to <{rcpt}> was bounced, not delivered", sub.id),
                    ));
                }
            }
            let extra = (d + b).saturating_sub(1);
            if extra > 0 {
                if window {
                    stats.duplicates += extra;
                } else {
                    verdict.violations.push(violation(
                        "duplicate",
                        format!(
                            "message {} to <{rcpt}>: {d} copies delivered and {b} bounces, outside any at-least-once window",
                            sub.id
                        ),
                    ));
                }
            }
            if d + b > 0 {
                continue;
            }
            let q = on_disk.get_or_insert_with(|| queued(disks, &mut verdict.violations));
            let is_queued = q.reports.contains(&sub.id)
                || q.rcpts.contains(&(sub.id, lower.clone()))
                || q.rcpts.contains(&(sub.id, fin.clone()));
            if is_queued {
                stats.queued += 1;
                let lifetime_over = end > sub.data_at + expect.ttl + Duration::from_secs(3600);
                if expect.must_settle || lifetime_over {
                    verdict.violations.push(violation(
                        "stuck",
                        format!(
                            "message {} to <{rcpt}> is still queued at {}s (submitted at {}s)",
                            sub.id,
                            end.as_secs(),
                            sub.data_at.as_secs()
                        ),
                    ));
                }
            } else {
                verdict.violations.push(violation(
                    "lost",
                    format!(
                        "message {} to <{rcpt}> was acknowledged by {} ({}) and then neither delivered, bounced nor queued",
                        sub.id,
                        sub.petrel,
                        sub.queue_id.as_deref().unwrap_or("?")
                    ),
                ));
            }
        }
    }
    if expect.schedule != Schedule::Off {
        check_schedule(spec, &log, ips, &mut verdict.violations);
    }
    verdict
}

fn check_schedule(
    spec: &WorldSpec,
    log: &Log,
    ips: &BTreeMap<String, IpAddr>,
    violations: &mut Vec<Violation>,
) {
    let expect = &spec.expect;
    let base = expect.retry_base.as_millis() as i64;
    let ttl = expect.ttl.as_millis() as i64;
    // Two network hops per command at most a few ticks each, a session of a dozen commands.
    let slack = 40 * spec.tick.as_millis() as i64 + 5_000;
    let mut by_key: BTreeMap<(String, String), Vec<u64>> = BTreeMap::new();
    for sub in log.submissions.values() {
        for rcpt in &sub.rcpts {
            by_key
                .entry((sub.sender.to_ascii_lowercase(), rcpt.to_ascii_lowercase()))
                .or_default()
                .push(sub.id);
        }
    }
    for sub in log.submissions.values() {
        if sub.acked_at.is_none() || log.starts.get(&sub.petrel).copied().unwrap_or(1) > 1 {
            continue;
        }
        let Some(ip) = ips.get(&sub.petrel) else {
            continue;
        };
        let created = clock_at(log, &sub.petrel, sub.data_at);
        for rcpt in &sub.rcpts {
            let lower = rcpt.to_ascii_lowercase();
            if by_key
                .get(&(sub.sender.to_ascii_lowercase(), lower.clone()))
                .is_some_and(|ids| ids.len() > 1)
            {
                continue;
            }
            let fin = expect.aliases.get(&lower).cloned().unwrap_or(lower);
            let attempts: Vec<Duration> = log
                .rcpts
                .iter()
                .filter(|a| {
                    a.peer == *ip
                        && a.sender.eq_ignore_ascii_case(&sub.sender)
                        && a.rcpt.eq_ignore_ascii_case(&fin)
                })
                .map(|a| a.at)
                .collect();
            for (i, at) in attempts.iter().enumerate() {
                let i = i as i64;
                let due = (created + base * i * i).min(created + ttl);
                // The Petrel host decided to try a little before the MX host saw the RCPT:
                // a backward jump in between must not make the try look early.
                let window = Duration::from_millis(slack as u64);
                let before = at.saturating_sub(window);
                let decided = clock_at(log, &sub.petrel, *at)
                    .max(clock_at(log, &sub.petrel, before) + (*at - before).as_millis() as i64);
                let clock = clock_at(log, &sub.petrel, *at);
                if decided + slack < due {
                    violations.push(violation(
                        "schedule",
                        format!(
                            "message {} to <{fin}>: try {} came {}s after submission, the schedule allows it no sooner than {}s",
                            sub.id,
                            i + 1,
                            (decided - created) / 1000,
                            (due - created) / 1000
                        ),
                    ));
                    break;
                }
                if expect.schedule == Schedule::Exact && clock > due + slack + 120_000 {
                    violations.push(violation(
                        "schedule",
                        format!(
                            "message {} to <{fin}>: try {} came {}s after submission, the schedule says {}s",
                            sub.id,
                            i + 1,
                            (clock - created) / 1000,
                            (due - created) / 1000
                        ),
                    ));
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_received_headers_only() {
        let c = b"Received: from a\r\n\tby b; date\r\nReceived: x\r\nX-Sim-Id: 3\r\n\r\nbody\r\n";
        assert_eq!(strip_received(c), b"X-Sim-Id: 3\r\n\r\nbody\r\n");
        assert_eq!(top_id(c), Some(3));
    }

    #[test]
    fn finds_failed_recipients_of_a_report() {
        let c = b"Content-Type: multipart/report\r\n\r\n--b\r\n\r\nReporting-MTA: dns; x\r\n\r\nOriginal-Recipient: rfc822; a@b\r\nFinal-Recipient: rfc822; c@d\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\nX-Sim-Id: 9\r\n";
        assert_eq!(
            failed_recipients(c),
            Some(vec!["a@b".to_owned(), "c@d".to_owned()])
        );
        assert_eq!(embedded_id(c), Some(9));
        assert_eq!(top_id(c), None);
    }
}
