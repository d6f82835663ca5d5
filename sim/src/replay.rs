//! Replaying a recorded SMTP transcript against a simulated Petrel host.
//!
//! A transcript is the client's side and the server's reply codes, one line each:
//!
//! ```text
//! # comments and blank lines are ignored
//! S: 220
//! C: EHLO client.test
//! S: 250
//! C: DATA
//! S: 354
//! C: Subject: hello
//! C:
//! C: ..a stuffed line
//! C: .
//! S: 250
//! ```
//!
//! `C:` lines are sent as they are (with CRLF); each `S:` line reads one reply and compares
//! its code (the text varies: queue ids, host names). Lines sent after a 354 are not answered
//! until the lone `.`. The Petrel host relays everything; its remote MX accepts.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::clock::SimClock;
use crate::disk::SimDisk;
use crate::dns::SimDns;
use crate::peers::{self, Behaviour};
use crate::platform::SimPlatform;
use crate::record::Recorder;

/// A line of a transcript.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Line {
    /// Sent by the client.
    Client(String),
    /// A reply with this code is expected.
    Server(u16),
}

/// Why a transcript cannot be replayed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// A line is neither `C:`, `S: NNN`, a comment nor blank.
    #[error("line {line}: {reason}")]
    Parse {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The simulation itself failed.
    #[error("simulation: {0}")]
    Simulation(String),
}

/// Parses a transcript.
///
/// # Errors
/// A line that is not part of the format.
pub fn parse(text: &str) -> Result<Vec<Line>, ReplayError> {
    let mut lines = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        if raw.trim().is_empty() || raw.starts_with('#') {
            continue;
        }
        if let Some(rest) = raw.strip_prefix("C:") {
            lines.push(Line::Client(
                rest.strip_prefix(' ').unwrap_or(rest).to_owned(),
            ));
        } else if let Some(rest) = raw.strip_prefix("S:") {
            let code = rest
                .trim()
                .get(..3)
                .and_then(|c| c.parse().ok())
                .ok_or_else(|| ReplayError::Parse {
                    line: i + 1,
                    reason: format!("expected a reply code: {raw}"),
                })?;
            lines.push(Line::Server(code));
        } else {
            return Err(ReplayError::Parse {
                line: i + 1,
                reason: format!("expected `C:` or `S:`: {raw}"),
            });
        }
    }
    Ok(lines)
}

/// What a replay found.
#[derive(Clone, Debug, Default)]
pub struct ReplayReport {
    /// Replies compared.
    pub replies: usize,
    /// Replies whose code differed: (position among the replies, expected, got, full reply).
    pub mismatches: Vec<(usize, u16, u16, String)>,
    /// The session as it went, `C:`/`S:` lines.
    pub transcript: Vec<String>,
}

impl ReplayReport {
    /// True when every reply had the expected code.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.mismatches.is_empty() && self.replies > 0
    }
}

const PETREL: &str = "petrel1.test";

/// Replays `lines` against a simulated Petrel host.
///
/// # Errors
/// The simulation failed (the Petrel host did not start, the session hung).
pub fn replay(lines: &[Line]) -> Result<ReplayReport, ReplayError> {
    let mut sim = turmoil::Builder::new()
        .tick_duration(Duration::from_millis(100))
        .simulation_duration(Duration::from_secs(3600))
        .rng_seed(1)
        .build();
    let rec = Recorder::new(false);
    let dns = SimDns::new();
    let config = format!(
        "listen on 0.0.0.0 port 25 hostname {PETREL}\n\
         action \"out\" relay helo {PETREL}\n\
         match from any for any action \"out\"\n"
    );
    let platform = SimPlatform {
        disk: SimDisk::new(),
        clock: SimClock::new(),
        dns: dns.clone(),
        seed: 1,
    };
    {
        let rec = rec.clone();
        sim.host(PETREL, move || {
            crate::world::petrel_host(
                PETREL.to_owned(),
                config.clone(),
                platform.clone(),
                rec.clone(),
            )
        });
    }
    {
        let rec = rec.clone();
        sim.host("mx.sim.test", move || {
            peers::sink("mx.sim.test".into(), Behaviour::Accept, rec.clone())
        });
    }
    let report = Arc::new(Mutex::new(ReplayReport::default()));
    let petrel_ip = sim.lookup(PETREL);
    let sink_ip = sim.lookup("mx.sim.test");
    dns.records(|r| {
        r.add_ip(PETREL, petrel_ip);
        r.add_ip("mx.sim.test", sink_ip);
    });
    let script = lines.to_vec();
    let out = report.clone();
    sim.client("replayer.test", async move {
        let stream = turmoil::net::TcpStream::connect((petrel_ip, 25)).await?;
        let (r, mut w) = stream.into_split();
        let mut r = BufReader::new(r);
        for line in script {
            match line {
                Line::Client(text) => {
                    out.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .transcript
                        .push(format!("C: {text}"));
                    w.write_all(format!("{text}\r\n").as_bytes()).await?;
                }
                Line::Server(expected) => {
                    let mut reply = String::new();
                    loop {
                        let mut buf = Vec::new();
                        let n = tokio::time::timeout(
                            Duration::from_secs(600),
                            r.read_until(b'\n', &mut buf),
                        )
                        .await??;
                        if n == 0 {
                            return Err("the server closed the connection".into());
                        }
                        let text = String::from_utf8_lossy(&buf).trim_end().to_owned();
                        let last = text.as_bytes().get(3) != Some(&b'-');
                        reply.push_str(&text);
                        if last {
                            break;
                        }
                        reply.push('\n');
                    }
                    let code: u16 = reply.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
                    let mut out = out.lock().unwrap_or_else(|e| e.into_inner());
                    out.transcript.push(format!("S: {reply}"));
                    let n = out.replies;
                    out.replies += 1;
                    if code != expected {
                        out.mismatches.push((n, expected, code, reply));
                    }
                }
            }
        }
        Ok(())
    });
    sim.run()
        .map_err(|e| ReplayError::Simulation(e.to_string()))?;
    let report = report.lock().unwrap_or_else(|e| e.into_inner()).clone();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_client_lines_and_reply_codes() {
        let lines = parse("# x\nS: 220\nC: EHLO a\nS: 250 ok\nC:\nC: .\n").unwrap();
        assert_eq!(
            lines,
            vec![
                Line::Server(220),
                Line::Client("EHLO a".into()),
                Line::Server(250),
                Line::Client(String::new()),
                Line::Client(".".into()),
            ]
        );
        assert!(parse("X: nope\n").is_err());
    }
}
