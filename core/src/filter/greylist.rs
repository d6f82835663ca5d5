//! Greylisting: decisions as a pure function of (state, triplet, now).
//!
//! A client that has never been seen with a given sender and recipient is told to try again
//! later (`451 4.7.1`). Real MTAs keep the message queued and retry; most spam software and
//! one-shot senders do not. A retry after [`delay`](GreylistSettings::delay) and within
//! [`retry_window`](GreylistSettings::retry_window) of the first attempt passes, and from then
//! on the triplet — and the client network it came from — passes at once for
//! [`pass_lifetime`](GreylistSettings::pass_lifetime) since it was last seen.
//!
//! The algorithm is postgrey's, with an explicit `passed` flag where postgrey infers it from the
//! timestamps:
//!
//! 1. a network with a passed triplet seen within the pass lifetime passes (and is renewed);
//! 2. an unknown triplet is recorded and deferred for the whole delay;
//! 3. a passed triplet seen within the pass lifetime passes and is renewed; after it, the
//!    record starts again as if unknown;
//! 4. a waiting triplet retried later than the retry window starts again; one retried after
//!    the delay passes; one retried too early is deferred for the rest of the delay — without
//!    moving its first attempt, or a client retrying every minute would never get through.
//!
//! A record that [`GreylistState::purge`] removes is one that could only start again, so
//! purging never changes a decision. Bypass tables, authenticated sessions, the local socket and
//! the postmaster are the caller's business: it does not ask.
//!
//! The state is kept by the shell; [`GreylistState::to_text`] and [`GreylistState::from_text`]
//! give it a line-based text form to survive restarts.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::net::IpAddr;
use std::time::Duration;

use thiserror::Error;

pub use crate::config::GreylistSettings;
use crate::rules::Cidr;
use crate::smtp::{EnhancedCode, Reply};
use crate::time::Time;

/// What greylisting is keyed on: the client's network, the sender and the recipient, each
/// normalised so that a legitimate retry finds the record of its first attempt.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Triplet {
    /// The client's network in CIDR notation (`192.0.2.0/24`, `2001:db8:1:2::/64`).
    pub network: String,
    /// The normalised envelope sender (see [`normalize_sender`]); empty for the null sender.
    pub sender: String,
    /// The envelope recipient, lowercased.
    pub recipient: String,
}

impl Triplet {
    /// The triplet of a client address, a sender (the mailbox without angle brackets, empty for
    /// the null sender) and a recipient, masked and normalised as `settings` say.
    #[must_use]
    pub fn new(ip: IpAddr, sender: &str, recipient: &str, settings: &GreylistSettings) -> Triplet {
        Triplet {
            network: network_of(ip, settings),
            sender: normalize_sender(sender),
            recipient: recipient.to_lowercase(),
        }
    }
}

impl fmt::Display for Triplet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/<{}>/<{}>", self.network, self.sender, self.recipient)
    }
}

/// The network a client is greylisted as: its address masked to the configured prefix length.
/// An IPv4-mapped IPv6 address (a dual-stack socket's view of an IPv4 client) counts as IPv4.
#[must_use]
pub fn network_of(ip: IpAddr, settings: &GreylistSettings) -> String {
    Cidr::network_of(ip, settings.ipv4_mask, settings.ipv6_mask).to_string()
}

/// The sender as greylisting compares it, postgrey-style: lowercased, and in the local part a
/// BATV tag unwrapped (`prvs=TAG=local` becomes `local`), a `+extension` dropped and every run
/// of digits replaced by `#`. Mailing lists and bounce processors put a fresh id or signature
/// into the sender of every attempt (VERP, BATV); without this their retries would never match.
/// A sender without `@` (the null sender among them) is only lowercased.
#[must_use]
pub fn normalize_sender(sender: &str) -> String {
    let lower = sender.to_lowercase();
    let Some((local, domain)) = lower.rsplit_once('@') else {
        return lower;
    };
    let local = unwrap_batv(local);
    // `+` first in the local part is no extension: keep it rather than leave nothing.
    let local = match local.split_once('+') {
        Some((base, _)) if !base.is_empty() => base,
        _ => local,
    };
    let mut out = String::with_capacity(lower.len());
    let mut in_digits = false;
    for c in local.chars() {
        if c.is_ascii_digit() {
            if !in_digits {
                out.push('#');
            }
            in_digits = true;
        } else {
            out.push(c);
            in_digits = false;
        }
    }
    out.push('@');
    out.push_str(domain);
    out
}

/// `prvs=TAG=local` → `local` (Bounce Address Tag Validation signs every message differently).
fn unwrap_batv(local: &str) -> &str {
    local
        .strip_prefix("prvs=")
        .and_then(|rest| rest.split_once('='))
        .filter(|(tag, original)| !tag.is_empty() && !original.is_empty())
        .map_or(local, |(_, original)| original)
}

/// What greylisting remembers of one triplet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    /// The first attempt of the current round (a round starts again after the retry window or
    /// the pass lifetime).
    pub first_seen: Time,
    /// The latest attempt; never before `first_seen`.
    pub last_seen: Time,
    /// Whether a retry came after the delay: the triplet then passes until `last_seen` is older
    /// than the pass lifetime.
    pub passed: bool,
}

/// The answer for one triplet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Let the recipient through.
    Pass,
    /// Refuse it temporarily; a retry after `retry_in` will pass.
    Defer {
        /// How long until a retry passes.
        retry_in: Duration,
    },
}

impl Verdict {
    /// True for [`Verdict::Pass`].
    #[must_use]
    pub fn is_pass(&self) -> bool {
        matches!(self, Verdict::Pass)
    }

    /// The seconds a deferred client is told to wait: `retry_in` rounded up (a retry a fraction
    /// of a second early would be deferred again), at least 1. None for a pass.
    #[must_use]
    pub fn retry_secs(&self) -> Option<u64> {
        match self {
            Verdict::Pass => None,
            Verdict::Defer { retry_in } => {
                let secs = retry_in.as_millis().div_ceil(1000).max(1);
                Some(u64::try_from(secs).unwrap_or(u64::MAX))
            }
        }
    }

    /// The RCPT reply of a deferral: `451 4.7.1 Greylisted, try again in N seconds`. 451 and not
    /// 421, which would close the session and affect every recipient; never 5xx. None for a
    /// pass.
    #[must_use]
    pub fn reply(&self) -> Option<Reply> {
        let secs = self.retry_secs()?;
        Some(Reply::new(
            451,
            EnhancedCode::new(4, 7, 1),
            format!("Greylisted, try again in {secs} seconds"),
        ))
    }

    /// [`Verdict::reply`] as one line of text, without the line ending.
    #[must_use]
    pub fn reply_text(&self) -> Option<String> {
        self.reply().map(|r| r.to_string())
    }
}

/// Every greylisting record: triplets, and the client networks that passed.
///
/// Kept in ordered maps so that the text form, and so the state file, is the same for the same
/// state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GreylistState {
    triplets: BTreeMap<Triplet, Record>,
    /// Networks with a passed triplet, by when they last passed.
    networks: BTreeMap<String, Time>,
}

impl GreylistState {
    /// An empty state: everyone is a stranger.
    #[must_use]
    pub fn new() -> GreylistState {
        GreylistState::default()
    }

    /// Decides on an attempt of `triplet` at `now` and records it (see the module
    /// documentation for the algorithm). A `now` earlier than a recorded time counts as no
    /// time passed.
    pub fn decide(&mut self, settings: &GreylistSettings, triplet: &Triplet, now: Time) -> Verdict {
        let alive = |seen: Time| now.saturating_since(seen) <= settings.pass_lifetime;
        if let Some(seen) = self.networks.get_mut(&triplet.network)
            && alive(*seen)
        {
            *seen = (*seen).max(now);
            // The triplet's own pass is renewed too, but an expired one is not brought back:
            // it would outlive the network's.
            if let Some(record) = self.triplets.get_mut(triplet)
                && record.passed
                && alive(record.last_seen)
            {
                record.last_seen = record.last_seen.max(now);
            }
            return Verdict::Pass;
        }
        let Some(record) = self.triplets.get_mut(triplet) else {
            self.triplets.insert(triplet.clone(), Record::first(now));
            return Verdict::Defer {
                retry_in: settings.delay,
            };
        };
        let waited = now.saturating_since(record.first_seen);
        let restart = if record.passed {
            !alive(record.last_seen)
        } else {
            waited > settings.retry_window
        };
        if restart {
            *record = Record::first(now);
            return Verdict::Defer {
                retry_in: settings.delay,
            };
        }
        record.last_seen = record.last_seen.max(now);
        if record.passed || waited >= settings.delay {
            record.passed = true;
            let seen = self.networks.entry(triplet.network.clone()).or_insert(now);
            *seen = (*seen).max(now);
            Verdict::Pass
        } else {
            Verdict::Defer {
                retry_in: settings.delay - waited,
            }
        }
    }

    /// Drops the records that could only start again: waiting triplets whose retry window is
    /// over, passed triplets and networks not seen for the pass lifetime.
    pub fn purge(&mut self, settings: &GreylistSettings, now: Time) {
        let alive = |seen: Time| now.saturating_since(seen) <= settings.pass_lifetime;
        self.triplets.retain(|_, r| {
            if r.passed {
                alive(r.last_seen)
            } else {
                now.saturating_since(r.first_seen) <= settings.retry_window
            }
        });
        self.networks.retain(|_, seen| alive(*seen));
    }

    /// The record of a triplet.
    #[must_use]
    pub fn record(&self, triplet: &Triplet) -> Option<&Record> {
        self.triplets.get(triplet)
    }

    /// When a network with a passed triplet last passed.
    #[must_use]
    pub fn network_last_seen(&self, network: &str) -> Option<Time> {
        self.networks.get(network).copied()
    }

    /// The number of triplet records.
    #[must_use]
    pub fn triplet_count(&self) -> usize {
        self.triplets.len()
    }

    /// The number of passed networks.
    #[must_use]
    pub fn network_count(&self) -> usize {
        self.networks.len()
    }

    /// True when nothing is recorded.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.triplets.is_empty() && self.networks.is_empty()
    }

    /// The text form, one record per line after a version line:
    ///
    /// ```text
    /// petrel-greylist 1
    /// network LAST_SEEN NETWORK
    /// triplet FIRST_SEEN LAST_SEEN passed|waiting NETWORK <SENDER> <RECIPIENT>
    /// ```
    ///
    /// Times are milliseconds since the epoch. Addresses are in angle brackets (`<>` is the
    /// null sender) with `%`, `<`, `>`, spaces, control characters and non-ASCII bytes written
    /// `%XX`, so every field is one word.
    #[must_use]
    pub fn to_text(&self) -> String {
        let mut out = String::from(HEADER);
        out.push('\n');
        for (network, seen) in &self.networks {
            let _ = writeln!(out, "network {} {network}", seen.as_millis());
        }
        for (t, r) in &self.triplets {
            let _ = writeln!(
                out,
                "triplet {} {} {} {} <{}> <{}>",
                r.first_seen.as_millis(),
                r.last_seen.as_millis(),
                if r.passed { "passed" } else { "waiting" },
                t.network,
                Escaped(&t.sender),
                Escaped(&t.recipient),
            );
        }
        out
    }

    /// Reads the text form of [`GreylistState::to_text`].
    ///
    /// # Errors
    ///
    /// A missing or unknown version line, or any line that is not a well-formed record (bad
    /// time, network not in canonical CIDR form, badly escaped address, last seen before first
    /// seen, a record given twice), with its line number. A state file is written whole and
    /// renamed into place, so damage means something else wrote it: nothing of it is trusted.
    pub fn from_text(text: &str) -> Result<GreylistState, StateError> {
        let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
        match lines.next() {
            Some((_, HEADER)) => {}
            Some((_, other)) if other.starts_with("petrel-greylist ") => {
                return Err(StateError::at(
                    1,
                    format!("unsupported version line {other:?}"),
                ));
            }
            _ => return Err(StateError::at(1, format!("expected {HEADER:?}"))),
        }
        let mut state = GreylistState::new();
        for (n, line) in lines {
            let fields: Vec<&str> = line.split(' ').collect();
            match fields.as_slice() {
                ["network", seen, network] => {
                    let seen = time(seen).map_err(|r| StateError::at(n, r))?;
                    let network = canonical_network(network).map_err(|r| StateError::at(n, r))?;
                    if state.networks.insert(network, seen).is_some() {
                        return Err(StateError::at(n, "network given twice".into()));
                    }
                }
                ["triplet", first, last, passed, network, sender, recipient] => {
                    let (triplet, record) =
                        triplet_line(first, last, passed, network, sender, recipient)
                            .map_err(|r| StateError::at(n, r))?;
                    if state.triplets.insert(triplet, record).is_some() {
                        return Err(StateError::at(n, "triplet given twice".into()));
                    }
                }
                _ => return Err(StateError::at(n, format!("not a record: {line:?}"))),
            }
        }
        Ok(state)
    }
}

impl Record {
    /// The record of a first attempt.
    fn first(now: Time) -> Record {
        Record {
            first_seen: now,
            last_seen: now,
            passed: false,
        }
    }
}

/// The first line of the text form; the number changes with the format.
const HEADER: &str = "petrel-greylist 1";

/// Why a state text could not be read.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("line {line}: {reason}")]
pub struct StateError {
    /// The line, from 1.
    pub line: usize,
    /// What is wrong with it.
    pub reason: String,
}

impl StateError {
    fn at(line: usize, reason: String) -> StateError {
        StateError { line, reason }
    }
}

fn triplet_line(
    first: &str,
    last: &str,
    passed: &str,
    network: &str,
    sender: &str,
    recipient: &str,
) -> Result<(Triplet, Record), String> {
    let first_seen = time(first)?;
    let last_seen = time(last)?;
    if last_seen < first_seen {
        return Err("last seen before first seen".into());
    }
    let passed = match passed {
        "passed" => true,
        "waiting" => false,
        other => return Err(format!("expected passed or waiting, found {other:?}")),
    };
    let triplet = Triplet {
        network: canonical_network(network)?,
        sender: address(sender)?,
        recipient: address(recipient)?,
    };
    let record = Record {
        first_seen,
        last_seen,
        passed,
    };
    Ok((triplet, record))
}

fn time(field: &str) -> Result<Time, String> {
    if field.is_empty() || !field.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("invalid time {field:?}"));
    }
    field
        .parse()
        .map(Time::from_millis)
        .map_err(|_| format!("invalid time {field:?}"))
}

/// A network exactly as [`network_of`] writes it, so that a record read back is found again.
fn canonical_network(field: &str) -> Result<String, String> {
    let canonical = field
        .parse::<Cidr>()
        .ok()
        .map(|c| Cidr::network_of(c.addr(), c.prefix(), c.prefix()).to_string());
    match canonical {
        Some(network) if network == field => Ok(network),
        _ => Err(format!("invalid network {field:?}")),
    }
}

/// Whether a byte is written as `%XX` in an address field.
fn escaped(b: u8) -> bool {
    !(0x21..=0x7e).contains(&b) || matches!(b, b'%' | b'<' | b'>')
}

/// An address written for the text form (without its angle brackets).
struct Escaped<'a>(&'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in self.0.as_bytes() {
            if escaped(b) {
                write!(f, "%{b:02X}")?;
            } else {
                f.write_char(char::from(b))?;
            }
        }
        Ok(())
    }
}

/// `<escaped address>` back to the address.
fn address(field: &str) -> Result<String, String> {
    let bad = || format!("invalid address {field:?}");
    let inner = field
        .strip_prefix('<')
        .and_then(|f| f.strip_suffix('>'))
        .ok_or_else(bad)?;
    let mut bytes = Vec::with_capacity(inner.len());
    let mut rest = inner.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'%' {
            let hex = tail
                .get(..2)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(bad)?;
            bytes.push(hex);
            rest = &tail[2..];
        } else if escaped(b) {
            return Err(bad());
        } else {
            bytes.push(b);
            rest = tail;
        }
    }
    String::from_utf8(bytes).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MIN: u64 = 60;
    const HOUR: u64 = 3_600;
    const DAY: u64 = 86_400;
    /// An arbitrary start, so that no test depends on times near zero.
    const T0: u64 = 1_700_000_000;

    fn at(secs: u64) -> Time {
        Time::from_secs(T0 + secs)
    }

    fn settings() -> GreylistSettings {
        GreylistSettings::default()
    }

    fn triplet(ip: &str, sender: &str) -> Triplet {
        Triplet::new(ip.parse().unwrap(), sender, "Bob@Example.NET", &settings())
    }

    fn defer(secs: u64) -> Verdict {
        Verdict::Defer {
            retry_in: Duration::from_secs(secs),
        }
    }

    #[test]
    fn a_first_attempt_is_deferred_for_the_delay() {
        let mut state = GreylistState::new();
        let t = triplet("192.0.2.7", "alice@example.org");
        assert_eq!(state.decide(&settings(), &t, at(0)), defer(5 * MIN));
        let record = state.record(&t).unwrap();
        assert_eq!((record.first_seen, record.last_seen), (at(0), at(0)));
        assert!(!record.passed);
        assert_eq!(state.network_count(), 0);
    }

    #[test]
    fn a_retry_too_early_is_deferred_for_the_rest_without_moving_the_first_attempt() {
        let mut state = GreylistState::new();
        let t = triplet("192.0.2.7", "alice@example.org");
        state.decide(&settings(), &t, at(0));
        assert_eq!(state.decide(&settings(), &t, at(MIN)), defer(4 * MIN));
        assert_eq!(state.decide(&settings(), &t, at(4 * MIN)), defer(MIN));
        let record = state.record(&t).unwrap();
        assert_eq!((record.first_seen, record.last_seen), (at(0), at(4 * MIN)));
        let early = Time::from_millis(at(5 * MIN).as_millis() - 1);
        assert_eq!(
            state.decide(&settings(), &t, early),
            Verdict::Defer {
                retry_in: Duration::from_millis(1)
            }
        );
    }

    #[test]
    fn a_retry_after_the_delay_passes_and_passes_its_network() {
        let mut state = GreylistState::new();
        let t = triplet("192.0.2.7", "alice@example.org");
        state.decide(&settings(), &t, at(0));
        assert_eq!(state.decide(&settings(), &t, at(5 * MIN)), Verdict::Pass);
        let record = state.record(&t).unwrap();
        assert!(record.passed);
        assert_eq!(record.last_seen, at(5 * MIN));
        assert_eq!(state.network_last_seen("192.0.2.0/24"), Some(at(5 * MIN)));
    }

    #[test]
    fn the_retry_window_is_inclusive_and_a_later_retry_starts_again() {
        let mut state = GreylistState::new();
        let t = triplet("192.0.2.7", "alice@example.org");
        state.decide(&settings(), &t, at(0));
        let mut on_time = state.clone();
        assert_eq!(on_time.decide(&settings(), &t, at(4 * HOUR)), Verdict::Pass);
        let late = Time::from_millis(at(4 * HOUR).as_millis() + 1);
        assert_eq!(state.decide(&settings(), &t, late), defer(5 * MIN));
        let record = state.record(&t).unwrap();
        assert_eq!((record.first_seen, record.passed), (late, false));
    }

    #[test]
    fn a_passed_triplet_passes_while_renewed_and_starts_again_after_the_lifetime() {
        // Grouping by host: the network rule must not hide the triplet rule here.
        let s = GreylistSettings {
            ipv4_mask: 32,
            ..settings()
        };
        let t = Triplet::new("192.0.2.7".parse().unwrap(), "a@example.org", "b@x", &s);
        let mut state = GreylistState::new();
        state.decide(&s, &t, at(0));
        assert_eq!(state.decide(&s, &t, at(10 * MIN)), Verdict::Pass);
        // Every pass renews: 30 + 30 + 30 days apart, each within 36 days of the last.
        for day in [30, 60, 90] {
            assert_eq!(state.decide(&s, &t, at(day * DAY)), Verdict::Pass);
        }
        // Drop the network so only the triplet's own record speaks.
        state.networks.clear();
        assert_eq!(state.decide(&s, &t, at(90 * DAY + 36 * DAY)), Verdict::Pass);
        let expired = at(90 * DAY + 72 * DAY + 1);
        state.networks.clear();
        assert_eq!(state.decide(&s, &t, expired), defer(5 * MIN));
        let record = state.record(&t).unwrap();
        assert_eq!((record.first_seen, record.passed), (expired, false));
    }

    #[test]
    fn a_passed_network_passes_every_triplet_from_it_while_renewed() {
        let mut state = GreylistState::new();
        let s = settings();
        let known = triplet("192.0.2.7", "alice@example.org");
        state.decide(&s, &known, at(0));
        state.decide(&s, &known, at(5 * MIN));
        // Another sender from another host of the same /24: passes at once, nothing recorded.
        let neighbour = triplet("192.0.2.200", "carol@example.com");
        assert_eq!(state.decide(&s, &neighbour, at(HOUR)), Verdict::Pass);
        assert!(state.record(&neighbour).is_none());
        assert_eq!(state.network_last_seen("192.0.2.0/24"), Some(at(HOUR)));
        // The next /24 is a stranger.
        let stranger = triplet("192.0.3.1", "alice@example.org");
        assert_eq!(state.decide(&s, &stranger, at(HOUR)), defer(5 * MIN));
        // Renewed at 1 h: still passing 36 days later, not a millisecond after that.
        assert_eq!(
            state.decide(&s, &neighbour, at(HOUR + 36 * DAY)),
            Verdict::Pass
        );
        let after = Time::from_millis(at(HOUR + 72 * DAY).as_millis() + 1);
        assert_eq!(state.decide(&s, &neighbour, after), defer(5 * MIN));
    }

    #[test]
    fn a_network_pass_renews_a_live_triplet_but_not_an_expired_one() {
        let mut state = GreylistState::new();
        let s = settings();
        let a = triplet("192.0.2.7", "alice@example.org");
        let b = triplet("192.0.2.8", "bob@example.org");
        state.decide(&s, &a, at(0));
        state.decide(&s, &a, at(5 * MIN));
        state.decide(&s, &b, at(20 * DAY));
        state.decide(&s, &b, at(20 * DAY + 5 * MIN));
        // `a` is renewed through its network while alive…
        state.decide(&s, &a, at(30 * DAY));
        assert_eq!(state.record(&a).unwrap().last_seen, at(30 * DAY));
        // …but once expired (66 days + 1 ms since), a pass of the network leaves it expired.
        state.decide(&s, &b, at(50 * DAY));
        let later = Time::from_millis(at(66 * DAY).as_millis() + 1);
        assert_eq!(state.decide(&s, &a, later), Verdict::Pass);
        assert_eq!(state.record(&a).unwrap().last_seen, at(30 * DAY));
    }

    #[test]
    fn time_going_back_counts_as_no_time() {
        let mut state = GreylistState::new();
        let t = triplet("192.0.2.7", "alice@example.org");
        state.decide(&settings(), &t, at(MIN));
        assert_eq!(state.decide(&settings(), &t, at(0)), defer(5 * MIN));
        assert_eq!(state.record(&t).unwrap().last_seen, at(MIN));
    }

    #[test]
    fn purge_drops_only_what_could_only_start_again() {
        let s = settings();
        let mut state = GreylistState::new();
        let waiting = triplet("192.0.2.1", "w@example.org");
        let passed = triplet("198.51.100.1", "p@example.org");
        state.decide(&s, &passed, at(0));
        state.decide(&s, &passed, at(5 * MIN));
        state.decide(&s, &waiting, at(HOUR));
        state.purge(&s, at(5 * HOUR));
        assert_eq!((state.triplet_count(), state.network_count()), (2, 1));
        state.purge(&s, Time::from_millis(at(5 * HOUR).as_millis() + 1));
        assert!(state.record(&waiting).is_none());
        assert!(state.record(&passed).is_some());
        state.purge(&s, at(5 * MIN + 36 * DAY));
        assert_eq!((state.triplet_count(), state.network_count()), (1, 1));
        state.purge(
            &s,
            Time::from_millis(at(5 * MIN + 36 * DAY).as_millis() + 1),
        );
        assert!(state.is_empty());
    }

    #[test]
    fn triplets_are_normalised() {
        let s = settings();
        let t = Triplet::new(
            "::ffff:192.0.2.77".parse().unwrap(),
            "Alice@Example.ORG",
            "Bob@Example.NET",
            &s,
        );
        assert_eq!(t.network, "192.0.2.0/24");
        assert_eq!(t.sender, "alice@example.org");
        assert_eq!(t.recipient, "bob@example.net");
        let v6 = Triplet::new("2001:db8:1:2:3:4:5:6".parse().unwrap(), "", "b@x", &s);
        assert_eq!(v6.network, "2001:db8:1:2::/64");
        assert_eq!(v6.sender, "");
        let exact = GreylistSettings {
            ipv4_mask: 32,
            ipv6_mask: 128,
            ..s
        };
        assert_eq!(
            network_of("192.0.2.77".parse().unwrap(), &exact),
            "192.0.2.77/32"
        );
    }

    #[test]
    fn senders_survive_verp_batv_and_extensions() {
        let cases = [
            ("list+bounces@example.org", "list@example.org"),
            ("bounce-1234-5678@lists.example", "bounce-#-#@lists.example"),
            ("user123@example.org", "user#@example.org"),
            ("prvs=0123abcdef=Owner@Example.org", "owner@example.org"),
            (
                "prvs=1234567890=news+tag-42@example.org",
                "news@example.org",
            ),
            ("prvs=@example.org", "prvs=@example.org"),
            ("+only@example.org", "+only@example.org"),
            ("MAILER-DAEMON", "mailer-daemon"),
            ("\"a@b\"@example.org", "\"a@b\"@example.org"),
            ("", ""),
        ];
        for (sender, normal) in cases {
            assert_eq!(normalize_sender(sender), normal, "{sender}");
        }
        // The digits of the domain are kept: it names who sends.
        assert_eq!(normalize_sender("a1@mx1.example"), "a#@mx1.example");
    }

    #[test]
    fn replies() {
        assert_eq!(Verdict::Pass.reply_text(), None);
        assert_eq!(
            defer(300).reply_text().as_deref(),
            Some("451 4.7.1 Greylisted, try again in 300 seconds")
        );
        let partial = Verdict::Defer {
            retry_in: Duration::from_millis(299_001),
        };
        assert_eq!(partial.retry_secs(), Some(300));
        let nothing = Verdict::Defer {
            retry_in: Duration::ZERO,
        };
        assert_eq!(
            nothing.reply_text().as_deref(),
            Some("451 4.7.1 Greylisted, try again in 1 seconds")
        );
        let reply = defer(60).reply().unwrap();
        assert!(reply.is_transient());
        assert_eq!(reply.enhanced, Some(EnhancedCode::new(4, 7, 1)));
    }

    #[test]
    fn text_form() {
        let s = settings();
        let mut state = GreylistState::new();
        let t = Triplet::new(
            "192.0.2.7".parse().unwrap(),
            "",
            "\"john doe\"@example.net",
            &s,
        );
        state.decide(&s, &t, Time::from_millis(1_000));
        state.decide(&s, &t, Time::from_millis(301_000));
        let u = Triplet::new(
            "2001:db8::1".parse().unwrap(),
            "caf\u{e9}%<x>@example.org",
            "b@x",
            &s,
        );
        state.decide(&s, &u, Time::from_millis(5_000));
        let text = state.to_text();
        assert_eq!(
            text,
            "petrel-greylist 1\n\
             network 301000 192.0.2.0/24\n\
             triplet 1000 301000 passed 192.0.2.0/24 <> <\"john%20doe\"@example.net>\n\
             triplet 5000 5000 waiting 2001:db8::/64 <caf%C3%A9%25%3Cx%3E@example.org> <b@x>\n"
        );
        assert_eq!(GreylistState::from_text(&text), Ok(state));
        assert_eq!(
            GreylistState::from_text("petrel-greylist 1\n"),
            Ok(GreylistState::new())
        );
    }

    #[test]
    fn damaged_text_is_refused_with_its_line() {
        let line_of = |text: &str| GreylistState::from_text(text).unwrap_err().line;
        assert_eq!(line_of(""), 1);
        assert_eq!(line_of("petrel-greylist 2\n"), 1);
        assert_eq!(line_of("garbage\n"), 1);
        let ok = "petrel-greylist 1\nnetwork 5 192.0.2.0/24\n";
        for (bad, line) in [
            ("network 5 192.0.2.7/24", 3),
            ("network x 192.0.2.0/24", 3),
            ("network 5 192.0.2.0/24", 3),
            ("network 5  192.0.2.0/24", 3),
            ("triplet 1 2 passed 192.0.2.0/24 <a@b> c@d", 3),
            ("triplet 1 2 maybe 192.0.2.0/24 <a@b> <c@d>", 3),
            ("triplet 2 1 passed 192.0.2.0/24 <a@b> <c@d>", 3),
            ("triplet 1 2 passed 192.0.2.0/24 <a%2@b> <c@d>", 3),
            ("triplet 1 2 passed 192.0.2.0/24 <a%FF@b> <c@d>", 3),
            ("triplet 1 2 passed 192.0.2.0/24 <a<@b> <c@d>", 3),
            ("triplet 1 2 passed 192.0.2.0/24 <a@b> <c@d> extra", 3),
            ("", 3),
        ] {
            let text = format!("{ok}{bad}\n");
            let err = GreylistState::from_text(&text).unwrap_err();
            assert_eq!(err.line, line, "{bad:?}: {err}");
        }
        let twice = "petrel-greylist 1\n\
                     triplet 1 2 passed 192.0.2.0/24 <a@b> <c@d>\n\
                     triplet 3 4 waiting 192.0.2.0/24 <a@b> <c@d>\n";
        let err = GreylistState::from_text(twice).unwrap_err();
        assert_eq!(err.to_string(), "line 3: triplet given twice");
    }

    // -----------------------------------------------------------------------------------------
    // Properties

    /// Triplets from a few networks and addresses, so that sequences revisit them; addresses
    /// include what the text form must escape.
    fn any_triplet() -> impl Strategy<Value = Triplet> {
        (
            prop::sample::select(vec![
                "192.0.2.1",
                "192.0.2.99",
                "198.51.100.1",
                "2001:db8::1",
            ]),
            prop_oneof![
                prop::sample::select(vec!["", "a@example.org", "b+x@example.org"])
                    .prop_map(str::to_owned),
                "[ -~\u{e9}\u{4e2d}]{0,12}",
            ],
            prop::sample::select(vec!["r@example.net", "s@example.net"]),
        )
            .prop_map(|(ip, sender, rcpt)| {
                Triplet::new(ip.parse().unwrap(), &sender, rcpt, &settings())
            })
    }

    /// Attempts: which triplet, and the seconds since the previous attempt (from instants to
    /// beyond the pass lifetime).
    fn attempts() -> impl Strategy<Value = Vec<(Triplet, u64)>> {
        let gap = prop_oneof![
            4 => 0u64..600,
            2 => 0u64..(6 * HOUR),
            1 => 0u64..(40 * DAY),
        ];
        prop::collection::vec((any_triplet(), gap), 0..40)
    }

    fn run(state: &mut GreylistState, attempts: &[(Triplet, u64)]) -> Vec<Verdict> {
        let mut now = at(0);
        attempts
            .iter()
            .map(|(t, gap)| {
                now = now + Duration::from_secs(*gap);
                state.decide(&settings(), t, now)
            })
            .collect()
    }

    proptest! {
        #[test]
        fn the_text_form_reads_back(attempts in attempts()) {
            let mut state = GreylistState::new();
            run(&mut state, &attempts);
            let text = state.to_text();
            prop_assert_eq!(GreylistState::from_text(&text), Ok(state));
        }

        #[test]
        fn decisions_are_deterministic(attempts in attempts()) {
            let (mut a, mut b) = (GreylistState::new(), GreylistState::new());
            prop_assert_eq!(run(&mut a, &attempts), run(&mut b, &attempts));
            prop_assert_eq!(a, b);
        }

        /// A sender retrying every `period` seconds passes exactly at its first attempt at
        /// least `delay` after the first one.
        #[test]
        fn a_steady_retrier_passes_at_its_first_attempt_after_the_delay(
            period in prop_oneof![Just(60u64), 1u64..400],
            delay_secs in 1u64..3_600,
        ) {
            let s = GreylistSettings { delay: Duration::from_secs(delay_secs), ..settings() };
            let t = Triplet::new("203.0.113.5".parse().unwrap(), "a@b", "c@d", &s);
            let mut state = GreylistState::new();
            let first_pass = delay_secs.div_ceil(period);
            for n in 0..=first_pass {
                let verdict = state.decide(&s, &t, at(n * period));
                if n < first_pass {
                    let expected = Duration::from_secs(delay_secs - n * period);
                    prop_assert_eq!(verdict, Verdict::Defer { retry_in: expected });
                } else {
                    prop_assert_eq!(verdict, Verdict::Pass);
                }
            }
        }

        /// Purging at any point changes no decision.
        #[test]
        fn purging_changes_no_decision(attempts in attempts(), purge_every in 1usize..6) {
            let s = settings();
            let (mut kept, mut purged) = (GreylistState::new(), GreylistState::new());
            let mut now = at(0);
            for (i, (t, gap)) in attempts.iter().enumerate() {
                now = now + Duration::from_secs(*gap);
                if i % purge_every == 0 {
                    purged.purge(&s, now);
                }
                prop_assert_eq!(kept.decide(&s, t, now), purged.decide(&s, t, now));
            }
            kept.purge(&s, now);
            purged.purge(&s, now);
            prop_assert_eq!(kept, purged);
        }
    }
}
