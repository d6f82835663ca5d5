//! `petrelctl`'s human-readable output: each answer in words, with times shown both as UTC
//! dates and relative to `now` ("in 6m", "2h ago"). `--json` prints the answers as they are.

use std::fmt::Write;

use petrel_core::Time;
use petrel_core::queue::date::DateTime;

use super::protocol::{Answer, EnvelopeView, StatsView};

/// The answer as text for a person, one or more lines ending in a newline.
#[must_use]
pub fn render(answer: &Answer, now: u64) -> String {
    let mut out = String::new();
    match answer {
        Answer::Queue(envelopes) if envelopes.is_empty() => out.push_str("the queue is empty\n"),
        Answer::Queue(envelopes) => {
            for e in envelopes {
                queue_line(&mut out, e, now);
            }
        }
        Answer::Envelope(e) => envelope(&mut out, e, now),
        Answer::Message(m) => {
            let _ = writeln!(out, "message {}: {} octets", m.msgid, m.size);
            let _ = writeln!(out, "envelopes: {}", m.envelopes.join(" "));
            out.push('\n');
            for line in m.headers.lines() {
                let _ = writeln!(out, "{line}");
            }
        }
        Answer::Stats(s) => stats(&mut out, s),
        Answer::Filters(filters) if filters.is_empty() => {
            out.push_str("no filters are configured\n");
        }
        Answer::Filters(filters) => {
            for f in filters {
                let _ = writeln!(
                    out,
                    "{}: {}, {}, {} restart(s){}",
                    f.name,
                    f.state,
                    f.policy,
                    f.restarts,
                    f.pid.map(|p| format!(", pid {p}")).unwrap_or_default()
                );
                if !f.command.is_empty() {
                    let _ = writeln!(out, "  command: {}", f.command);
                }
                if !f.phases.is_empty() {
                    let _ = writeln!(out, "  phases: {}", f.phases.join(" "));
                }
                if let Some(e) = &f.last_error {
                    let _ = writeln!(out, "  last error: {e}");
                }
            }
        }
        Answer::Hosts(hosts) if hosts.is_empty() => {
            out.push_str("no deliveries to remote hosts in progress\n");
        }
        Answer::Hosts(hosts) => {
            for h in hosts {
                let _ = writeln!(
                    out,
                    "{}: {} of {} connection(s) in use, {} batch(es) waiting",
                    h.destination, h.active, h.max, h.waiting
                );
            }
        }
        Answer::Trace(t) => {
            let _ = writeln!(
                out,
                "{} {} {}{}",
                date(t.at / 1000),
                t.event,
                t.id.as_deref().unwrap_or("-"),
                if t.detail.is_empty() {
                    String::new()
                } else {
                    format!(" {}", t.detail)
                }
            );
        }
        Answer::Done { message, .. } => {
            let _ = writeln!(out, "{message}");
        }
    }
    out
}

/// One line of `monitor`: the counters that move.
#[must_use]
pub fn monitor_line(s: &StatsView) -> String {
    format!(
        "sessions {:>5} (open {:>4})  queued {:>6}  delivered {:>6}  deferred {:>5}  failed {:>5}  in queue {:>5}\n",
        s.sessions,
        s.sessions_active,
        s.messages_queued,
        s.delivered,
        s.deferred,
        s.failed,
        s.queue_envelopes
    )
}

fn queue_line(out: &mut String, e: &EnvelopeView, now: u64) {
    let dest = if e.dest == e.rcpt {
        String::new()
    } else {
        format!(" ({})", e.dest)
    };
    let next = match e.state.as_str() {
        "in-delivery" => "being delivered".to_owned(),
        "paused" => format!("due {} once resumed", relative(e.next_try, now)),
        _ => format!("next try {}", relative(e.next_try, now)),
    };
    let _ = write!(
        out,
        "{} age {} <{}> -> <{}>{} {}, {} attempt(s), {}",
        e.id,
        duration(now.saturating_sub(e.created)),
        e.sender,
        e.rcpt,
        dest,
        e.state,
        e.attempts,
        next
    );
    if let Some(err) = &e.last_error {
        let _ = write!(out, ", last error: {err}");
    }
    out.push('\n');
}

fn envelope(out: &mut String, e: &EnvelopeView, now: u64) {
    let _ = writeln!(out, "envelope {} (message {})", e.id, e.msgid);
    let _ = writeln!(out, "  sender:     <{}>", e.sender);
    let _ = writeln!(out, "  recipient:  <{}>", e.rcpt);
    if e.dest != e.rcpt {
        let _ = writeln!(out, "  delivered for: <{}>", e.dest);
    }
    let _ = writeln!(
        out,
        "  action:     {}",
        e.action.as_deref().unwrap_or("(not routed)")
    );
    let _ = writeln!(out, "  state:      {}", e.state);
    let _ = writeln!(
        out,
        "  received:   {} ({} ago)",
        date(e.created),
        duration(now.saturating_sub(e.created))
    );
    let _ = writeln!(out, "  attempts:   {}", e.attempts);
    if let Some(t) = e.last_try {
        let _ = writeln!(out, "  last try:   {} ({})", date(t), relative(t, now));
    }
    if let Some(err) = &e.last_error {
        let _ = writeln!(out, "  last error: {err}");
    }
    match e.state.as_str() {
        "in-delivery" => out.push_str("  next try:   being delivered now\n"),
        "paused" => {
            let _ = writeln!(
                out,
                "  next try:   paused (due {} once resumed)",
                relative(e.next_try, now)
            );
        }
        _ => {
            let _ = writeln!(
                out,
                "  next try:   {} ({})",
                date(e.next_try),
                relative(e.next_try, now)
            );
        }
    }
    let _ = writeln!(
        out,
        "  bounces at: {} ({}) if not delivered by then",
        date(e.expires),
        relative(e.expires, now)
    );
    if e.history.is_empty() {
        out.push_str("  history:    no attempt since the daemon started\n");
    } else {
        out.push_str("  history:\n");
        for h in &e.history {
            let _ = writeln!(
                out,
                "    {} {}{}: {}",
                date(h.at),
                h.result,
                h.remote
                    .as_deref()
                    .map(|r| format!(" via {r}"))
                    .unwrap_or_default(),
                h.reply
            );
        }
    }
}

fn stats(out: &mut String, s: &StatsView) {
    let paused: Vec<&str> = [
        (s.smtp_paused, "smtp"),
        (s.mda_paused, "mda"),
        (s.mta_paused, "mta"),
    ]
    .into_iter()
    .filter_map(|(p, name)| p.then_some(name))
    .collect();
    let _ = writeln!(out, "uptime:          {}", duration(s.uptime));
    let _ = writeln!(
        out,
        "sessions:        {} ({} open)",
        s.sessions, s.sessions_active
    );
    let _ = writeln!(out, "messages queued: {}", s.messages_queued);
    let _ = writeln!(out, "delivered:       {}", s.delivered);
    let _ = writeln!(out, "deferred:        {}", s.deferred);
    let _ = writeln!(out, "failed:          {}", s.failed);
    let _ = writeln!(out, "notifications:   {}", s.notifications);
    let _ = writeln!(out, "removed:         {}", s.removed);
    let _ = writeln!(
        out,
        "queue:           {} message(s), {} envelope(s)",
        s.queue_messages, s.queue_envelopes
    );
    let _ = writeln!(out, "filter events:   {}", s.filter_events);
    let _ = writeln!(
        out,
        "paused:          {}",
        if paused.is_empty() {
            "nothing".to_owned()
        } else {
            paused.join(", ")
        }
    );
}

/// `2026-11-22 06:00:00Z`.
pub(crate) fn date(secs: u64) -> String {
    let d = DateTime::from_time(Time::from_secs(secs));
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}Z",
        d.year, d.month, d.day, d.hour, d.minute, d.second
    )
}

/// `in 5m`, `3h 2m ago`, `now`.
fn relative(t: u64, now: u64) -> String {
    match t.cmp(&now) {
        std::cmp::Ordering::Equal => "now".to_owned(),
        std::cmp::Ordering::Greater => format!("in {}", duration(t - now)),
        std::cmp::Ordering::Less => format!("{} ago", duration(now - t)),
    }
}

/// `45s`, `5m 3s`, `2h 10m`, `4d 3h`.
fn duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m {s}s")
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_relative_times() {
        assert_eq!(duration(45), "45s");
        assert_eq!(duration(303), "5m 3s");
        assert_eq!(duration(7800), "2h 10m");
        assert_eq!(duration(4 * 86_400 + 3 * 3600 + 59), "4d 3h");
        assert_eq!(relative(100, 100), "now");
        assert_eq!(relative(160, 100), "in 1m 0s");
        assert_eq!(relative(40, 100), "1m 0s ago");
        assert_eq!(date(0), "1970-01-01 00:00:00Z");
    }
}
