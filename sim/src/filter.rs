//! Simulated filters: a simulated host cannot start processes, so `filter … proc-exec
//! "sim-filter …"` runs this in-process filter instead, over in-memory pipes, speaking the
//! filter protocol as a process would. It echoes every data-line, proceeds at every phase, and
//! — as its command line asks — misbehaves at random, from a seeded generator so that a run
//! replays exactly:
//!
//! ```text
//! sim-filter [--seed N] [--crash PERCENT] [--hang PERCENT] [--garbage PERCENT]
//! ```
//!
//! Per request: `--crash` exits (closes its pipes), `--hang` stops answering anything,
//! `--garbage` writes a line that is not the protocol.

use std::sync::atomic::{AtomicU64, Ordering};

use petrel_daemon::filter::process::{FilterHandle, FilterIo, FilterSpawner, ProcSpec};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::rng::Rng;

/// How a simulated filter misbehaves, in percent per request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Faults {
    seed: u64,
    crash: u64,
    hang: u64,
    garbage: u64,
}

impl Faults {
    fn parse(command: &str) -> Result<Faults, String> {
        let mut words = command.split_whitespace();
        if words.next() != Some("sim-filter") {
            return Err(format!(
                "a simulated host runs only sim-filter, not {command:?}"
            ));
        }
        let mut f = Faults::default();
        while let Some(option) = words.next() {
            let value: u64 = words
                .next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("sim-filter: {option} wants a number"))?;
            match option {
                "--seed" => f.seed = value,
                "--crash" => f.crash = value,
                "--hang" => f.hang = value,
                "--garbage" => f.garbage = value,
                _ => return Err(format!("sim-filter: unknown option {option}")),
            }
        }
        Ok(f)
    }
}

/// Starts [simulated filters](self); each start draws from its own generator, derived from the
/// filter's seed and how many were started before it.
#[derive(Debug, Default)]
pub struct SimSpawner {
    base: u64,
    started: AtomicU64,
}

impl SimSpawner {
    /// A spawner for a host whose run (or restart) has seed `base`.
    #[must_use]
    pub fn new(base: u64) -> SimSpawner {
        SimSpawner {
            base,
            started: AtomicU64::new(0),
        }
    }
}

struct TaskHandle(tokio::task::JoinHandle<()>);

impl FilterHandle for TaskHandle {
    fn pid(&self) -> Option<u32> {
        None
    }

    fn stop(&mut self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        self.0.abort();
        Box::pin(std::future::ready(()))
    }
}

impl FilterSpawner for SimSpawner {
    fn spawn(&self, spec: &ProcSpec) -> Result<FilterIo, String> {
        let faults = Faults::parse(&spec.command)?;
        let n = self.started.fetch_add(1, Ordering::Relaxed);
        let rng = Rng::new(faults.seed ^ self.base ^ (n + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let (daemon_in, filter_in) = tokio::io::duplex(64 * 1024);
        let (filter_out, daemon_out) = tokio::io::duplex(64 * 1024);
        let task = tokio::spawn(run(faults, rng, filter_in, filter_out));
        Ok(FilterIo {
            input: Box::new(daemon_in),
            output: Box::new(daemon_out),
            errors: None,
            handle: Box::new(TaskHandle(task)),
        })
    }
}

async fn run(
    faults: Faults,
    mut rng: Rng,
    input: tokio::io::DuplexStream,
    mut out: tokio::io::DuplexStream,
) {
    let mut lines = BufReader::new(input);
    let mut line = Vec::new();
    // The handshake: the config block, then register for every filter phase and data-lines.
    loop {
        line.clear();
        if lines.read_until(b'\n', &mut line).await.unwrap_or(0) == 0 {
            return;
        }
        if line.starts_with(b"config|ready") {
            break;
        }
    }
    let mut hello = String::new();
    for phase in [
        "connect",
        "helo",
        "ehlo",
        "mail-from",
        "rcpt-to",
        "data",
        "data-line",
        "commit",
    ] {
        hello.push_str(&format!("register|filter|smtp-in|{phase}\n"));
    }
    hello.push_str("register|report|smtp-in|*\nregister|ready\n");
    if out.write_all(hello.as_bytes()).await.is_err() {
        return;
    }
    let mut hung = false;
    loop {
        line.clear();
        if lines.read_until(b'\n', &mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        if hung || !text.starts_with(b"filter|") {
            continue;
        }
        // Faults are drawn per command, and once per message (at its last line), not per
        // line: a fault rate per line would spoil nearly every message.
        let is_data = text.windows(11).any(|w| w == b"|data-line|");
        let draw = !is_data || text.ends_with(b"|.");
        if draw && rng.chance(faults.crash) {
            return;
        }
        if draw && rng.chance(faults.hang) {
            hung = true;
            continue;
        }
        if draw && rng.chance(faults.garbage) {
            let _ = out.write_all(b"a line that is not the protocol\n").await;
            continue;
        }
        let fields: Vec<&[u8]> = text.splitn(8, |&b| b == b'|').collect();
        if fields.len() < 8 {
            continue;
        }
        let (phase, session, token, param) = (fields[4], fields[5], fields[6], fields[7]);
        let mut answer = Vec::new();
        if phase == b"data-line" {
            answer.extend_from_slice(b"filter-dataline|");
            answer.extend_from_slice(session);
            answer.push(b'|');
            answer.extend_from_slice(token);
            answer.push(b'|');
            answer.extend_from_slice(param);
        } else {
            answer.extend_from_slice(b"filter-result|");
            answer.extend_from_slice(session);
            answer.push(b'|');
            answer.extend_from_slice(token);
            answer.extend_from_slice(b"|proceed");
        }
        answer.push(b'\n');
        if out.write_all(&answer).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_read_and_checked() {
        assert_eq!(
            Faults::parse("sim-filter --seed 7 --crash 3 --hang 2 --garbage 1"),
            Ok(Faults {
                seed: 7,
                crash: 3,
                hang: 2,
                garbage: 1
            })
        );
        assert!(Faults::parse("filter-rspamd").is_err());
        assert!(Faults::parse("sim-filter --crash").is_err());
        assert!(Faults::parse("sim-filter --explode 3").is_err());
    }
}
