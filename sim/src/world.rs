//! A simulated world: Petrel hosts running the daemon's engine, remote MX hosts, submitting
//! clients and a DNS, on turmoil, with faults applied at given times. [`run`] plays a
//! [`WorldSpec`] to its end and judges it.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use petrel_core::config::{self, ParseOptions};
use petrel_daemon::engine::{Engine, EngineOptions};
use petrel_daemon::queue::scheduler::QueueEvent;
use petrel_daemon::tables::ProcTableOptions;

use crate::clock::SimClock;
use crate::disk::SimDisk;
use crate::dns::{DnsFault, SimDns};
use crate::invariants::{self, Expect, Verdict};
use crate::peers::{self, Behaviour, Outgoing};
use crate::platform::SimPlatform;
use crate::record::{FaultEvent, Recorder};

/// A run stops as a runaway when the remote MX hosts receive more than this many messages
/// per submitted message.
const RUNAWAY_FACTOR: usize = 20;

/// turmoil's default maximum latency of a segment (its minimum is zero).
const DEFAULT_LATENCY: Duration = Duration::from_millis(100);

/// Where a Petrel host keeps its queue on its simulated disk.
pub const DATA_DIR: &str = "/var/petrel";

/// A Petrel host.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PetrelSpec {
    /// Its host name (also its name in the simulation).
    pub name: String,
    /// Its `smtpd.conf`.
    pub config: String,
}

/// A remote MX host.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SinkSpec {
    /// Its host name.
    pub name: String,
    /// How it behaves.
    pub behaviour: Behaviour,
}

/// A submitting client.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ClientSpec {
    /// Its host name.
    pub name: String,
    /// The Petrel host it submits to.
    pub petrel: String,
    /// Its messages, in order.
    pub messages: Vec<Outgoing>,
    /// Content written in small pieces of random sizes.
    pub chunked: bool,
    /// How many times each message is tried before the client gives up.
    pub tries: u32,
}

/// A fault to apply.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub enum Fault {
    /// Cut traffic between two hosts.
    Partition(String, String),
    /// Restore it.
    Repair(String, String),
    /// Crash a host (its disk loses what was not synced).
    Crash(String),
    /// Start a crashed host again.
    Restart(String),
    /// Move a host's clock by milliseconds.
    ClockJump(String, i64),
    /// Make a DNS name fail until an elapsed time (`None`: for ever).
    Dns(String, DnsFault, Option<Duration>),
    /// Make every segment between two hosts take this long, both ways (`None`: turmoil's
    /// default latency again, 0 to 100 ms).
    Latency(String, String, Option<Duration>),
}

/// Everything about a world.
#[derive(Clone, Debug, serde::Serialize)]
pub struct WorldSpec {
    /// The scenario family.
    pub family: String,
    /// The seed it was drawn from.
    pub seed: u64,
    /// turmoil's tick: every network hop takes at least one.
    pub tick: Duration,
    /// The run stops at this simulated time at the latest.
    pub limit: Duration,
    /// Petrel hosts.
    pub petrels: Vec<PetrelSpec>,
    /// Remote MX hosts.
    pub sinks: Vec<SinkSpec>,
    /// Clients.
    pub clients: Vec<ClientSpec>,
    /// MX records: (domain, preference, host).
    pub mx: Vec<(String, u16, String)>,
    /// Domains with a null MX.
    pub null_mx: Vec<String>,
    /// More address records, in order: (name, the host whose address it gets). A name given
    /// several hosts resolves to all their addresses, in this order.
    pub addresses: Vec<(String, String)>,
    /// Faults by time.
    pub faults: Vec<(Duration, Fault)>,
    /// What the invariants may expect.
    pub expect: Expect,
}

/// What a run came to.
#[derive(Debug, serde::Serialize)]
pub struct RunResult {
    /// The family.
    pub family: String,
    /// The seed.
    pub seed: u64,
    /// Simulated time played.
    pub sim_time: Duration,
    /// Wall time taken.
    pub wall: Duration,
    /// The judgement.
    pub verdict: Verdict,
    /// Transcripts and events, when tracing.
    #[serde(skip)]
    pub trace: Vec<String>,
}

impl RunResult {
    /// True when no invariant was broken.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.verdict.violations.is_empty()
    }
}

/// Captures the daemons' log lines into the trace, stamped with simulated time.
#[derive(Clone)]
struct TraceWriter {
    rec: Recorder,
    buf: Arc<Mutex<Vec<u8>>>,
}

impl std::io::Write for TraceWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let mut buf = self.buf.lock().unwrap_or_else(|e| e.into_inner());
        buf.extend_from_slice(data);
        while let Some(i) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=i).collect();
            let text = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
            self.rec.trace("log", || text);
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for TraceWriter {
    type Writer = TraceWriter;
    fn make_writer(&'a self) -> TraceWriter {
        self.clone()
    }
}

pub(crate) async fn petrel_host(
    name: String,
    config_text: String,
    platform: SimPlatform,
    rec: Recorder,
) -> Result<(), Box<dyn std::error::Error>> {
    let config = config::parse("smtpd.conf", &config_text, &ParseOptions::default())
        .map_err(|e| format!("{name}: smtpd.conf: {e}"))?;
    let options = EngineOptions {
        hostname: name.clone(),
        data_dir: DATA_DIR.into(),
        base: "/etc/petrel".into(),
        ..EngineOptions::default()
    };
    let engine = Engine::start_on(&config, options, ProcTableOptions::default(), &platform)
        .await
        .map_err(|e| {
            rec.lock().errors.push(format!("{name}: {e}"));
            format!("{name}: {e}")
        })?;
    rec.trace(&name, || "started".into());
    let mut events = engine.scheduler().subscribe();
    loop {
        match events.recv().await {
            Ok(event) => rec.trace(&name, || queue_event(&event)),
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                std::future::pending::<()>().await;
            }
        }
    }
}

fn queue_event(event: &QueueEvent) -> String {
    format!("queue {event:?}")
}

/// Plays `spec` to its end (all mail settled, or the time limit) and judges it; `tracing`
/// keeps every transcript and log line.
#[must_use]
pub fn run(spec: &WorldSpec, tracing: bool) -> RunResult {
    let started = std::time::Instant::now();
    let rec = Recorder::new(tracing);
    let outcome = if tracing {
        let writer = TraceWriter {
            rec: rec.clone(),
            buf: Arc::default(),
        };
        let subscriber = tracing_subscriber::fmt()
            .with_writer(writer)
            .without_time()
            .with_ansi(false)
            .with_target(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        tracing::subscriber::with_default(subscriber, || play(spec, &rec))
    } else {
        play(spec, &rec)
    };
    let (sim_time, disks, ips) = match outcome {
        Ok(v) => v,
        Err(e) => {
            rec.lock().errors.push(e);
            (Duration::ZERO, BTreeMap::new(), BTreeMap::new())
        }
    };
    let verdict = invariants::judge(spec, &rec, &disks, &ips, sim_time);
    let trace = std::mem::take(&mut rec.lock().trace);
    RunResult {
        family: spec.family.clone(),
        seed: spec.seed,
        sim_time,
        wall: started.elapsed(),
        verdict,
        trace,
    }
}

/// The Petrel hosts' disks by name, and every host's address by name.
type Played = (
    Duration,
    BTreeMap<String, SimDisk>,
    BTreeMap<String, IpAddr>,
);

fn play(spec: &WorldSpec, rec: &Recorder) -> Result<Played, String> {
    let mut sim = turmoil::Builder::new()
        .tick_duration(spec.tick)
        .simulation_duration(spec.limit + Duration::from_secs(24 * 3600))
        .rng_seed(spec.seed)
        .tcp_capacity(4096)
        .build();
    let dns = SimDns::new();
    let mut disks = BTreeMap::new();
    let mut clocks = BTreeMap::new();
    for p in &spec.petrels {
        let disk = SimDisk::new();
        let clock = SimClock::new();
        disks.insert(p.name.clone(), disk.clone());
        clocks.insert(p.name.clone(), clock.clone());
        let starts = Arc::new(AtomicU64::new(0));
        let (name, text, dns, rec) = (p.name.clone(), p.config.clone(), dns.clone(), rec.clone());
        let seed = spec.seed;
        sim.host(p.name.as_str(), move || {
            let n = starts.fetch_add(1, Ordering::Relaxed);
            *rec.lock().starts.entry(name.clone()).or_insert(0) += 1;
            let platform = SimPlatform {
                disk: disk.clone(),
                clock: clock.clone(),
                dns: dns.clone(),
                seed: seed
                    .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                    .wrapping_add(n.wrapping_mul(0x1000_0000_01b3))
                    ^ name.len() as u64,
            };
            petrel_host(name.clone(), text.clone(), platform, rec.clone())
        });
    }
    for s in &spec.sinks {
        let (name, behaviour, rec) = (s.name.clone(), s.behaviour.clone(), rec.clone());
        sim.host(s.name.as_str(), move || {
            peers::sink(name.clone(), behaviour.clone(), rec.clone())
        });
    }
    let mut ips = BTreeMap::new();
    for name in spec
        .petrels
        .iter()
        .map(|p| &p.name)
        .chain(spec.sinks.iter().map(|s| &s.name))
    {
        ips.insert(name.clone(), sim.lookup(name.as_str()));
    }
    for (i, c) in spec.clients.iter().enumerate() {
        let petrel = ips
            .get(&c.petrel)
            .copied()
            .ok_or_else(|| format!("client {} names no Petrel host {}", c.name, c.petrel))?;
        let (name, target, messages, chunked, tries, rec) = (
            c.name.clone(),
            c.petrel.clone(),
            c.messages.clone(),
            c.chunked,
            c.tries,
            rec.clone(),
        );
        let seed = spec.seed ^ ((i as u64 + 1) << 40);
        sim.host(c.name.as_str(), move || {
            peers::client(
                name.clone(),
                (target.clone(), petrel),
                messages.clone(),
                chunked,
                tries,
                seed,
                rec.clone(),
            )
        });
        ips.insert(c.name.clone(), sim.lookup(c.name.as_str()));
    }
    dns.records(|r| {
        for (name, ip) in &ips {
            r.add_ip(name, *ip);
            r.add_ptr(*ip, name);
        }
        for (domain, pref, host) in &spec.mx {
            r.add_mx(domain, *pref, host);
        }
        for domain in &spec.null_mx {
            r.add_mx(domain, 0, ".");
        }
        for (name, host) in &spec.addresses {
            if let Some(ip) = ips.get(host) {
                r.add_ip(name, *ip);
            }
        }
    });
    let mut faults = spec.faults.clone();
    faults.sort_by_key(|(t, _)| *t);
    let mut next_fault = 0;
    let mut steps: u64 = 0;
    loop {
        let now = sim.elapsed();
        while next_fault < faults.len() && faults[next_fault].0 <= now {
            let fault = faults[next_fault].1.clone();
            next_fault += 1;
            apply(&mut sim, &fault, &disks, &clocks, &dns, rec);
        }
        if now >= spec.limit {
            break;
        }
        if steps.is_multiple_of(32)
            && next_fault == faults.len()
            && invariants::settled(spec, &rec.lock())
        {
            break;
        }
        {
            let mut log = rec.lock();
            if !log.errors.is_empty() {
                break;
            }
            // A storm (mail bouncing back and forth) would run to the time limit: stop it.
            let limit =
                RUNAWAY_FACTOR * (spec.clients.iter().map(|c| c.messages.len()).sum::<usize>() + 1);
            if log.received.len() > limit {
                let n = log.received.len();
                log.errors.push(format!(
                    "runaway: the remote MX hosts received {n} messages, more than {limit}"
                ));
                break;
            }
        }
        if let Err(e) = sim.step() {
            return Err(format!("simulation failed: {e}"));
        }
        steps += 1;
    }
    let now = sim.elapsed();
    Ok((now, disks, ips))
}

fn apply(
    sim: &mut turmoil::Sim<'_>,
    fault: &Fault,
    disks: &BTreeMap<String, SimDisk>,
    clocks: &BTreeMap<String, SimClock>,
    dns: &SimDns,
    rec: &Recorder,
) {
    let event = match fault {
        Fault::Partition(a, b) => {
            sim.partition(a.as_str(), b.as_str());
            FaultEvent::Partition(a.clone(), b.clone())
        }
        Fault::Repair(a, b) => {
            sim.repair(a.as_str(), b.as_str());
            FaultEvent::Repair(a.clone(), b.clone())
        }
        Fault::Crash(h) => {
            sim.crash(h.as_str());
            if let Some(d) = disks.get(h) {
                d.crash();
            }
            FaultEvent::Crash(h.clone())
        }
        Fault::Restart(h) => {
            sim.bounce(h.as_str());
            FaultEvent::Restart(h.clone())
        }
        Fault::ClockJump(h, ms) => {
            if let Some(c) = clocks.get(h) {
                c.jump(*ms);
            }
            FaultEvent::ClockJump(h.clone(), *ms)
        }
        Fault::Dns(name, fault, until) => {
            dns.inject(name, *fault, *until);
            FaultEvent::Dns(name.clone(), *fault, until.map(|u| u.as_secs()))
        }
        Fault::Latency(a, b, latency) => {
            match latency {
                Some(l) => sim.set_link_latency(a.as_str(), b.as_str(), *l),
                None => {
                    sim.set_link_latency(a.as_str(), b.as_str(), Duration::ZERO);
                    sim.set_link_max_message_latency(a.as_str(), b.as_str(), DEFAULT_LATENCY);
                }
            }
            FaultEvent::Latency(
                a.clone(),
                b.clone(),
                latency.map(|l| u64::try_from(l.as_millis()).unwrap_or(u64::MAX)),
            )
        }
    };
    let at = sim.elapsed();
    rec.trace_at(at, "world", || format!("fault {event:?}"));
    rec.lock().faults.push((at, event));
}

/// A stable 64-bit hash (FNV-1a) of a trace, for the determinism check.
#[must_use]
pub fn trace_hash(trace: &[String]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for line in trace {
        for &b in line.as_bytes().iter().chain(b"\n") {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// Writes a trace to `out`, one line each.
///
/// # Errors
/// Writing failed.
pub fn write_trace(trace: &[String], out: &mut dyn std::io::Write) -> std::io::Result<()> {
    for line in trace {
        writeln!(out, "{line}")?;
    }
    Ok(())
}
