//! Scenario families: each draws a world from a seed — hosts, configurations, behaviours of
//! the remote MX hosts, messages and faults — and says what its invariants may expect.

use std::time::Duration;

use crate::dns::DnsFault;
use crate::invariants::{Expect, Schedule};
use crate::peers::{Behaviour, Outgoing, REFUSE_CONTENT_PREFIX};
use crate::rng::Rng;
use crate::world::{ClientSpec, Fault, PetrelSpec, SinkSpec, WorldSpec};

/// A scenario family.
#[derive(Clone, Copy, Debug)]
pub struct Family {
    /// Its name on the command line.
    pub name: &'static str,
    /// What it exercises.
    pub about: &'static str,
    build: fn(&mut Rng, &mut WorldSpec),
}

impl Family {
    /// The world of `seed`.
    #[must_use]
    pub fn world(&self, seed: u64) -> WorldSpec {
        let mut rng = Rng::new(seed ^ fnv(self.name));
        let mut spec = WorldSpec {
            family: self.name.to_owned(),
            seed,
            tick: Duration::from_secs(1),
            limit: Duration::from_secs(2 * 86_400),
            petrels: Vec::new(),
            sinks: Vec::new(),
            clients: Vec::new(),
            mx: Vec::new(),
            null_mx: Vec::new(),
            addresses: Vec::new(),
            faults: Vec::new(),
            expect: Expect::default(),
        };
        (self.build)(&mut rng, &mut spec);
        // Notifications to a Petrel host's postmaster land at the origin's MX.
        if spec.sinks.iter().any(|s| s.name == ORIGIN_MX) {
            for p in spec.petrels.clone() {
                if !spec.mx.iter().any(|(d, _, _)| *d == p.name) {
                    mx(&mut spec, &p.name, 10, ORIGIN_MX);
                }
            }
        }
        spec
    }
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Every family, in the order `list` prints them.
pub const FAMILIES: &[Family] = &[
    Family {
        name: "retry-backoff",
        about: "a remote MX answers 4xx a few times; retries follow the schedule exactly",
        build: retry_backoff,
    },
    Family {
        name: "greylisting",
        about: "a greylisting remote MX lets the message in on a later try",
        build: greylisting,
    },
    Family {
        name: "dot-escaping",
        about: "dot-heavy content in small pieces across a chain of Petrel relays arrives intact",
        build: dot_escaping,
    },
    Family {
        name: "drop-mid-data",
        about: "a remote MX drops the connection in DATA, or after the dot without answering",
        build: drop_mid_data,
    },
    Family {
        name: "partition",
        about: "the network between Petrel and the remote MX, or its clients, splits and heals",
        build: partition,
    },
    Family {
        name: "crash-restart",
        about: "the accepting Petrel host crashes under load and restarts from its disk",
        build: crash_restart,
    },
    Family {
        name: "dns-failures",
        about: "timeouts and SERVFAIL for a while, NXDOMAIN and null MX for good",
        build: dns_failures,
    },
    Family {
        name: "slow-peers",
        about: "a remote MX that answers slowly, sometimes slower than Petrel waits",
        build: slow_peers,
    },
    Family {
        name: "expiry",
        about: "a remote MX that never accepts: the queue's lifetime ends in a bounce after days",
        build: expiry,
    },
    Family {
        name: "srs-bounce",
        about: "a forwarder with SRS whose bounce finds the original sender",
        build: srs_bounce,
    },
    Family {
        name: "mx-failover",
        about: "a dead primary MX (silent, crashed, unreachable) and a working backup",
        build: mx_failover,
    },
    Family {
        name: "smarthost-failover",
        about: "a smarthost whose first address is dead (silent, crashed, unreachable, 421) \
                and whose second works",
        build: smarthost_failover,
    },
    Family {
        name: "many-clients",
        about: "many concurrent clients sending to several domains with different behaviours",
        build: many_clients,
    },
    Family {
        name: "greylisted-senders",
        about: "Petrel greylists its clients: retrying MTAs and clients get through after the \
                delay, one-shot senders never do; days of simulated time",
        build: greylisted_senders,
    },
    Family {
        name: "filter-chain",
        about: "dot-heavy content through a chain of data-line filters on every relay, byte \
                for byte",
        build: filter_chain,
    },
    Family {
        name: "filter-faults",
        about: "filters that crash, hang or write garbage under load: nothing acknowledged is \
                lost and the daemon never stops",
        build: filter_faults,
    },
    Family {
        name: "clock-jumps",
        about: "the Petrel host's clock jumps forwards and backwards during retries",
        build: clock_jumps,
    },
];

/// The family called `name`.
#[must_use]
pub fn family(name: &str) -> Option<&'static Family> {
    FAMILIES.iter().find(|f| f.name == name)
}

const P1: &str = "petrel1.test";
const ORIGIN: &str = "origin.test";
const ORIGIN_MX: &str = "mx.origin.test";
const DEST: &str = "dest.test";
const DEST_MX: &str = "mx.dest.test";

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// A Petrel host relaying everything by MX.
fn relay_config(name: &str, ttl: &str) -> String {
    format!(
        "listen on 0.0.0.0 port 25 hostname {name}\n\
         queue ttl {ttl}\n\
         action \"out\" relay helo {name}\n\
         match from any for any action \"out\"\n"
    )
}

fn petrel(spec: &mut WorldSpec, name: &str, config: String) {
    spec.petrels.push(PetrelSpec {
        name: name.to_owned(),
        config,
    });
}

fn sink(spec: &mut WorldSpec, name: &str, behaviour: Behaviour) {
    spec.sinks.push(SinkSpec {
        name: name.to_owned(),
        behaviour,
    });
}

fn mx(spec: &mut WorldSpec, domain: &str, pref: u16, host: &str) {
    spec.mx.push((domain.to_owned(), pref, host.to_owned()));
}

/// The senders' domain, whose MX accepts everything (bounces and delay notices land there).
fn origin(spec: &mut WorldSpec) {
    sink(spec, ORIGIN_MX, Behaviour::Accept);
    mx(spec, ORIGIN, 10, ORIGIN_MX);
}

/// Content of message `id`: headers (the first is `X-Sim-Id`), then `lines` body lines, some
/// of them dot-heavy when `dots`.
fn content(
    rng: &mut Rng,
    id: u64,
    sender: &str,
    rcpts: &[String],
    lines: usize,
    dots: bool,
) -> Vec<u8> {
    let mut c = format!(
        "X-Sim-Id: {id}\r\nFrom: <{sender}>\r\nTo: {}\r\nSubject: message {id}\r\nMessage-ID: <{id}@sim.test>\r\n\r\n",
        rcpts.join(", ")
    )
    .into_bytes();
    const DOTTY: &[&str] = &[
        ".", "..", "...", ". ", ".x", "..x", " .", ".\t.", "a.", ".\u{e9}",
    ];
    for i in 0..lines {
        let line = if dots && rng.chance(40) {
            (*rng.pick(DOTTY)).to_owned()
        } else if rng.chance(5) {
            String::new()
        } else {
            let len = if rng.chance(10) {
                rng.range(100, 900)
            } else {
                rng.range(1, 70)
            };
            (0..len)
                .map(|k| (b'a' + ((k + i as u64 + id) % 26) as u8) as char)
                .collect()
        };
        c.extend_from_slice(line.as_bytes());
        c.extend_from_slice(b"\r\n");
    }
    c
}

/// A message from a sender of its own at the origin domain.
fn message(rng: &mut Rng, id: u64, at: Duration, rcpts: Vec<String>, dots: bool) -> Outgoing {
    let sender = format!("s{id}@{ORIGIN}");
    let lines = rng.range(1, 40) as usize;
    let content = content(rng, id, &sender, &rcpts, lines, dots);
    Outgoing {
        id,
        at,
        sender,
        rcpts,
        content,
    }
}

fn rcpts(rng: &mut Rng, id: u64, domain: &str, max: u64) -> Vec<String> {
    (0..rng.range(1, max))
        .map(|j| format!("r{id}x{j}@{domain}"))
        .collect()
}

fn client(spec: &mut WorldSpec, name: &str, petrel: &str, messages: Vec<Outgoing>, chunked: bool) {
    spec.clients.push(ClientSpec {
        name: name.to_owned(),
        petrel: petrel.to_owned(),
        messages,
        chunked,
        tries: crate::peers::CLIENT_TRIES,
    });
}

/// One Petrel host, one client sending `n` messages to `dest.test`, spaced over `spread`.
fn simple(rng: &mut Rng, spec: &mut WorldSpec, n: u64, spread: u64, ttl: &str) {
    petrel(spec, P1, relay_config(P1, ttl));
    origin(spec);
    mx(spec, DEST, 10, DEST_MX);
    let mut at = 1;
    let messages = (1..=n)
        .map(|id| {
            at += rng.below(spread + 1);
            let r = rcpts(rng, id, DEST, 3);
            message(rng, id, secs(at), r, false)
        })
        .collect();
    client(spec, "client1.test", P1, messages, false);
}

fn retry_backoff(rng: &mut Rng, spec: &mut WorldSpec) {
    let times = rng.range(1, 4) as u32;
    let n = rng.range(1, 3);
    simple(rng, spec, n, 300, "4d");
    sink(spec, DEST_MX, Behaviour::TempFail { times });
    spec.tick = secs(2);
    spec.expect.schedule = Schedule::Exact;
}

fn greylisting(rng: &mut Rng, spec: &mut WorldSpec) {
    let delay = secs(rng.range(60, 1800));
    let n = rng.range(1, 4);
    simple(rng, spec, n, 600, "4d");
    sink(spec, DEST_MX, Behaviour::Greylist { delay });
    spec.tick = secs(2);
    spec.expect.schedule = Schedule::NotEarly;
}

fn dot_escaping(rng: &mut Rng, spec: &mut WorldSpec) {
    let hops = rng.range(1, 3) as usize;
    let names: Vec<String> = (1..=hops).map(|i| format!("petrel{i}.test")).collect();
    for (i, name) in names.iter().enumerate() {
        let config = match names.get(i + 1) {
            Some(next) => format!(
                "listen on 0.0.0.0 port 25 hostname {name}\n\
                 action \"hop\" relay host smtp+notls://{next}:25 helo {name}\n\
                 match from any for any action \"hop\"\n"
            ),
            None => relay_config(name, "4d"),
        };
        petrel(spec, name, config);
    }
    origin(spec);
    sink(spec, DEST_MX, Behaviour::Accept);
    mx(spec, DEST, 10, DEST_MX);
    let n = rng.range(1, 4);
    let messages = (1..=n)
        .map(|id| {
            let r = rcpts(rng, id, DEST, 2);
            let mut m = message(rng, id, secs(1 + id * 5), r, true);
            if rng.chance(30) {
                // Large enough to cross the daemon's read buffer several times.
                let extra = content(rng, id, &m.sender, &m.rcpts, 600, true);
                let body =
                    &extra[extra.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(0) + 4..];
                m.content.extend_from_slice(body);
            }
            m
        })
        .collect();
    client(spec, "client1.test", &names[0], messages, true);
}

fn drop_mid_data(rng: &mut Rng, spec: &mut WorldSpec) {
    let times = rng.range(1, 3) as u32;
    let after_dot = rng.chance(50);
    let n = rng.range(1, 3);
    simple(rng, spec, n, 300, "4d");
    sink(spec, DEST_MX, Behaviour::DropMidData { times, after_dot });
    spec.tick = secs(2);
    spec.expect.schedule = Schedule::NotEarly;
}

fn partition(rng: &mut Rng, spec: &mut WorldSpec) {
    let n = rng.range(2, 5);
    simple(rng, spec, n, 900, "4d");
    sink(spec, DEST_MX, Behaviour::Accept);
    spec.tick = secs(2);
    let start = rng.range(1, 1800);
    let len = rng.range(60, 4 * 3600);
    let other = if rng.chance(30) {
        "client1.test"
    } else {
        DEST_MX
    };
    spec.faults
        .push((secs(start), Fault::Partition(P1.into(), other.into())));
    spec.faults
        .push((secs(start + len), Fault::Repair(P1.into(), other.into())));
    spec.expect.allow_dups = true;
    spec.expect.schedule = Schedule::NotEarly;
}

fn crash_restart(rng: &mut Rng, spec: &mut WorldSpec) {
    petrel(spec, P1, relay_config(P1, "4d"));
    origin(spec);
    mx(spec, DEST, 10, DEST_MX);
    let behaviour = if rng.chance(50) {
        Behaviour::Accept
    } else {
        Behaviour::TempFail { times: 1 }
    };
    sink(spec, DEST_MX, behaviour);
    let clients = rng.range(2, 4);
    let mut id = 0;
    for c in 1..=clients {
        let messages = (0..rng.range(2, 6))
            .map(|_| {
                id += 1;
                let r = rcpts(rng, id, DEST, 2);
                let at = secs(rng.range(1, 600));
                message(rng, id, at, r, false)
            })
            .collect::<Vec<_>>();
        let mut messages = messages;
        messages.sort_by_key(|m| m.at);
        client(
            spec,
            &format!("client{c}.test"),
            P1,
            messages,
            rng.chance(30),
        );
    }
    let mut t = 0;
    for _ in 0..rng.range(1, 3) {
        t += rng.range(5, 600);
        spec.faults.push((secs(t), Fault::Crash(P1.into())));
        t += rng.range(1, 1200);
        spec.faults.push((secs(t), Fault::Restart(P1.into())));
    }
    spec.expect.allow_dups = true;
}

fn dns_failures(rng: &mut Rng, spec: &mut WorldSpec) {
    petrel(spec, P1, relay_config(P1, "4d"));
    origin(spec);
    sink(spec, DEST_MX, Behaviour::Accept);
    mx(spec, DEST, 10, DEST_MX);
    // A domain with a null MX, and one that does not exist: both bounce.
    spec.null_mx.push("nullmx.test".into());
    let mut messages = Vec::new();
    for id in 1..=rng.range(2, 5) {
        let domain = *rng.pick(&[DEST, DEST, "nullmx.test", "nxdomain.test"]);
        let r = rcpts(rng, id, domain, 2);
        messages.push(message(rng, id, secs(id * 10), r, false));
    }
    // A message from the null sender that the remote MX refuses after its content: its
    // failure may be reported to the postmaster only, never bounced.
    let id = 100;
    let rcpt = vec![format!("{REFUSE_CONTENT_PREFIX}{id}@{DEST}")];
    let c = content(rng, id, "", &rcpt, 3, false);
    messages.push(Outgoing {
        id,
        at: secs(5),
        sender: String::new(),
        rcpts: rcpt,
        content: c,
    });
    messages.sort_by_key(|m| m.at);
    client(spec, "client1.test", P1, messages, false);
    let fault = *rng.pick(&[DnsFault::Timeout, DnsFault::ServFail]);
    let name = *rng.pick(&[DEST, DEST_MX]);
    let until = secs(rng.range(60, 3 * 3600));
    spec.faults
        .push((secs(0), Fault::Dns(name.into(), fault, Some(until))));
    spec.tick = secs(2);
    spec.expect.schedule = Schedule::NotEarly;
}

fn slow_peers(rng: &mut Rng, spec: &mut WorldSpec) {
    let n = rng.range(1, 3);
    simple(rng, spec, n, 300, "4d");
    let delay = if rng.chance(25) {
        // Slower than Petrel waits for the 354 (2 minutes): every try fails.
        secs(rng.range(130, 400))
    } else {
        secs(rng.range(1, 100))
    };
    sink(spec, DEST_MX, Behaviour::Slow { delay });
    spec.tick = secs(2);
    if rng.chance(60) {
        // Added latency on the link to the remote MX for a while: every segment takes up to
        // 40 s each way, beyond the 30 s connect timeout when over 15 s, so that tries fail
        // on Petrel's timeouts until the link is quick again.
        let latency = Duration::from_millis(rng.range(500, 40_000));
        let start = rng.range(0, 1200);
        let len = rng.range(60, 3 * 3600);
        spec.faults.push((
            secs(start),
            Fault::Latency(P1.into(), DEST_MX.into(), Some(latency)),
        ));
        spec.faults.push((
            secs(start + len),
            Fault::Latency(P1.into(), DEST_MX.into(), None),
        ));
    }
    if delay > secs(120) {
        // Nothing can get through before the run stops inside the queue's lifetime.
        spec.limit = secs(6 * 3600);
        spec.expect.must_settle = false;
    }
    spec.expect.allow_dups = true;
}

fn expiry(rng: &mut Rng, spec: &mut WorldSpec) {
    let days = rng.range(1, 5);
    let n = rng.range(1, 2);
    simple(rng, spec, n, 600, &format!("{days}d"));
    sink(spec, DEST_MX, Behaviour::AlwaysTempFail);
    // Coarse enough for days in little wall time, fine enough for a connection to open
    // within the 30 s connect timeout.
    spec.tick = secs(10);
    spec.expect.ttl = secs(days * 86_400);
    spec.limit = secs((days + 1) * 86_400);
    spec.expect.schedule = Schedule::NotEarly;
    if rng.chance(50) {
        // A message from the null sender that expires too: it must never be bounced.
        let id = 100;
        let rcpt = vec![format!("{REFUSE_CONTENT_PREFIX}{id}@{DEST}")];
        let c = content(rng, id, "", &rcpt, 3, false);
        spec.clients[0].messages.push(Outgoing {
            id,
            at: secs(1_000),
            sender: String::new(),
            rcpts: rcpt,
            content: c,
        });
        spec.clients[0].messages.sort_by_key(|m| m.at);
    }
}

fn srs_bounce(rng: &mut Rng, spec: &mut WorldSpec) {
    const FWD: &str = "fwd.test";
    const P2: &str = "petrel2.test";
    const FINAL: &str = "final.test";
    const FINAL_MX: &str = "mx.final.test";
    petrel(spec, P1, relay_config(P1, "4d"));
    let n = rng.range(1, 3);
    let mut table = Vec::new();
    let mut messages = Vec::new();
    for id in 1..=n {
        let user = format!("u{id}@{FWD}");
        let target = format!("r{id}@{FINAL}");
        table.push(format!("\"{user}\" = \"{target}\""));
        spec.expect.aliases.insert(user.clone(), target);
        messages.push(message(rng, id, secs(id * 20), vec![user], false));
    }
    petrel(
        spec,
        P2,
        format!(
            "listen on 0.0.0.0 port 25 hostname {P2}\n\
             table forwards {{ {} }}\n\
             srs key \"f1b7c1bd8f3c8e0a5e6d2f9c4a7b3e1d\"\n\
             action \"expand\" forward-only virtual <forwards>\n\
             action \"forward\" relay srs helo {P2}\n\
             match from any for domain \"{FWD}\" action \"expand\"\n\
             match from any for any action \"forward\"\n",
            table.join(", ")
        ),
    );
    origin(spec);
    mx(spec, FWD, 10, P2);
    sink(spec, FINAL_MX, Behaviour::Reject);
    mx(spec, FINAL, 10, FINAL_MX);
    client(spec, "client1.test", P1, messages, false);
    spec.tick = secs(2);
}

fn mx_failover(rng: &mut Rng, spec: &mut WorldSpec) {
    const MX1: &str = "mx1.dest.test";
    const MX2: &str = "mx2.dest.test";
    petrel(spec, P1, relay_config(P1, "4d"));
    origin(spec);
    let mut messages = Vec::new();
    for id in 1..=rng.range(1, 3) {
        let r = rcpts(rng, id, DEST, 2);
        messages.push(message(rng, id, secs(id * 30), r, false));
    }
    client(spec, "client1.test", P1, messages, false);
    mx(spec, DEST, 10, MX1);
    mx(spec, DEST, 20, MX2);
    sink(spec, MX2, Behaviour::Accept);
    match rng.below(3) {
        0 => sink(spec, MX1, Behaviour::Blackhole),
        1 => {
            sink(spec, MX1, Behaviour::Accept);
            spec.faults.push((secs(0), Fault::Crash(MX1.into())));
        }
        _ => {
            sink(spec, MX1, Behaviour::Accept);
            spec.faults
                .push((secs(0), Fault::Partition(P1.into(), MX1.into())));
        }
    }
    spec.tick = secs(2);
}

fn smarthost_failover(rng: &mut Rng, spec: &mut WorldSpec) {
    // The smarthost's name has two addresses, the primary's first: the relay tries them in
    // that order. No destination domain has MX records, so a message that did not go through
    // the smarthost would bounce.
    const SMARTHOST: &str = "smtp.isp.test";
    let hosts = if rng.chance(50) {
        ["relay1.isp.test", "relay2.isp.test"]
    } else {
        ["relay2.isp.test", "relay1.isp.test"]
    };
    let [primary, backup] = hosts;
    let scheme = *rng.pick(&["smtp", "smtp+notls"]);
    petrel(
        spec,
        P1,
        format!(
            "listen on 0.0.0.0 port 25 hostname {P1}\n\
             queue ttl 4d\n\
             action \"out\" relay host {scheme}://{SMARTHOST}:25 helo {P1}\n\
             match from any for any action \"out\"\n"
        ),
    );
    for host in hosts {
        spec.addresses.push((SMARTHOST.into(), host.into()));
    }
    sink(spec, backup, Behaviour::Accept);
    let domains = [DEST, "other.test", ORIGIN];
    let mut messages = Vec::new();
    let mut at = 1;
    for id in 1..=rng.range(1, 5) {
        at += rng.below(300);
        let mut r = Vec::new();
        for j in 0..rng.range(1, 4) {
            r.push(format!("r{id}x{j}@{}", rng.pick(&domains)));
        }
        let dots = rng.chance(20);
        messages.push(message(rng, id, secs(at), r, dots));
    }
    let chunked = rng.chance(30);
    client(spec, "client1.test", P1, messages, chunked);
    // How the primary is dead, and whether it comes back.
    let heal = secs(rng.range(60, 6 * 3600));
    let heals = rng.chance(25);
    match rng.below(4) {
        0 => sink(spec, primary, Behaviour::Blackhole),
        1 => sink(spec, primary, Behaviour::Unavailable),
        2 => {
            sink(spec, primary, Behaviour::Accept);
            spec.faults.push((secs(0), Fault::Crash(primary.into())));
            if heals {
                spec.faults.push((heal, Fault::Restart(primary.into())));
            }
        }
        _ => {
            sink(spec, primary, Behaviour::Accept);
            spec.faults
                .push((secs(0), Fault::Partition(P1.into(), primary.into())));
            if heals {
                spec.faults
                    .push((heal, Fault::Repair(P1.into(), primary.into())));
            }
        }
    }
    spec.tick = secs(2);
    spec.expect.must_deliver = true;
}

fn many_clients(rng: &mut Rng, spec: &mut WorldSpec) {
    petrel(spec, P1, relay_config(P1, "4d"));
    origin(spec);
    let domains = [
        ("a.test", "mx.a.test"),
        ("b.test", "mx.b.test"),
        ("c.test", "mx.c.test"),
    ];
    sink(spec, "mx.a.test", Behaviour::Accept);
    sink(spec, "mx.b.test", Behaviour::TempFail { times: 1 });
    sink(
        spec,
        "mx.c.test",
        Behaviour::Greylist {
            delay: secs(rng.range(60, 900)),
        },
    );
    for (d, h) in domains {
        mx(spec, d, 10, h);
    }
    let mut id = 0;
    for c in 1..=rng.range(8, 20) {
        let mut messages = Vec::new();
        for _ in 0..rng.range(1, 4) {
            id += 1;
            let mut r = Vec::new();
            for j in 0..rng.range(1, 4) {
                let (d, _) = *rng.pick(&domains);
                r.push(format!("r{id}x{j}@{d}"));
            }
            let at = secs(rng.range(1, 120));
            let dots = rng.chance(20);
            messages.push(message(rng, id, at, r, dots));
        }
        messages.sort_by_key(|m| m.at);
        let name = format!("client{c}.test");
        if rng.chance(30) {
            // A far-away client: every segment to and from Petrel takes seconds, for good.
            let latency = Duration::from_millis(rng.range(200, 10_000));
            spec.faults.push((
                secs(0),
                Fault::Latency(name.clone(), P1.into(), Some(latency)),
            ));
        }
        client(spec, &name, P1, messages, rng.chance(20));
    }
    spec.tick = secs(1);
}

fn clock_jumps(rng: &mut Rng, spec: &mut WorldSpec) {
    let times = rng.range(1, 4) as u32;
    let n = rng.range(1, 3);
    simple(rng, spec, n, 300, "4d");
    sink(spec, DEST_MX, Behaviour::TempFail { times });
    spec.tick = secs(2);
    let mut t = 0;
    for _ in 0..rng.range(1, 3) {
        t += rng.range(30, 3600);
        let size = rng.range(60, 6 * 3600) as i64 * 1000;
        let delta = if rng.chance(50) { size } else { -size };
        spec.faults
            .push((secs(t), Fault::ClockJump(P1.into(), delta)));
    }
    spec.expect.schedule = Schedule::NotEarly;
}

/// Petrel (petrel1) greylists whoever connects. A client that retries every few minutes, and a
/// second Petrel host relaying through it (retrying on its own schedule), both get every
/// message in; a client that never retries gets nothing in.
fn greylisted_senders(rng: &mut Rng, spec: &mut WorldSpec) {
    const RELAY: &str = "petrel2.test";
    let delay = rng.range(1, 10);
    petrel(
        spec,
        P1,
        format!(
            // Every simulated host is in one /24: key on the exact address, or the first
            // sender to pass would let its neighbours in.
            "filter grey greylist delay {delay}m retry-window 4h ipv4-mask 32\n\
             listen on 0.0.0.0 port 25 hostname {P1} filter grey\n\
             queue ttl 4d\n\
             action \"out\" relay helo {P1}\n\
             match from any for any action \"out\"\n"
        ),
    );
    petrel(
        spec,
        RELAY,
        format!(
            "listen on 0.0.0.0 port 25 hostname {RELAY}\n\
             queue ttl 4d\n\
             action \"hop\" relay host smtp+notls://{P1}:25 helo {RELAY}\n\
             match from any for any action \"hop\"\n"
        ),
    );
    origin(spec);
    sink(spec, DEST_MX, Behaviour::Accept);
    mx(spec, DEST, 10, DEST_MX);
    let mut id = 0;
    let mut batch = |rng: &mut Rng, n: u64, start: u64| -> Vec<Outgoing> {
        (0..n)
            .map(|k| {
                id += 1;
                let r = rcpts(rng, id, DEST, 2);
                let at = secs(start + k * rng.range(1, 3600));
                message(rng, id, at, r, false)
            })
            .collect()
    };
    let (a, b, c) = (rng.range(1, 4), rng.range(1, 4), rng.range(1, 3));
    let mut direct = batch(rng, a, 1);
    // Days later the same client comes back: its triplets passed long ago.
    direct.extend(batch(rng, 1, 2 * 86_400));
    let relayed = batch(rng, b, 30);
    let one_shot = batch(rng, c, 60);
    client(spec, "client1.test", P1, direct, false);
    // Retries every one to five minutes, for long enough to outlast the delay.
    if let Some(c) = spec.clients.last_mut() {
        c.tries = 30;
    }
    client(spec, "client2.test", RELAY, relayed, false);
    client(spec, "spammer.test", P1, one_shot, false);
    if let Some(c) = spec.clients.last_mut() {
        c.tries = 1;
    }
    spec.expect.never_acked = vec!["spammer.test".to_owned()];
    spec.expect.must_ack = vec!["client1.test".to_owned(), "client2.test".to_owned()];
    spec.expect.must_deliver = true;
    spec.tick = secs(2);
    spec.limit = secs(3 * 86_400);
}

/// The filters of a host's listener: a chain of `n` simulated filters, misbehaving as `faults`
/// says (`sim-filter` options), failing closed with a short timeout.
fn filter_chain_config(rng: &mut Rng, n: usize, faults: &str) -> String {
    let mut text = String::new();
    let names: Vec<String> = (1..=n).map(|i| format!("f{i}")).collect();
    for name in &names {
        let seed = rng.next_u64() >> 16;
        text.push_str(&format!(
            "filter {name} proc-exec \"sim-filter --seed {seed} {faults}\" timeout 20s\n"
        ));
    }
    text.push_str(&format!("filter chain chain {{ {} }}\n", names.join(", ")));
    text
}

/// Like `dot-escaping`, with a chain of data-line filters on every Petrel relay: each filter
/// gets the lines dot-escaped as on the wire and returns them so; what arrives must be what
/// was sent, byte for byte.
fn filter_chain(rng: &mut Rng, spec: &mut WorldSpec) {
    let hops = rng.range(1, 3) as usize;
    let names: Vec<String> = (1..=hops).map(|i| format!("petrel{i}.test")).collect();
    for (i, name) in names.iter().enumerate() {
        let n = rng.range(1, 3) as usize;
        let filters = filter_chain_config(rng, n, "");
        let route = match names.get(i + 1) {
            Some(next) => format!(
                "action \"hop\" relay host smtp+notls://{next}:25 helo {name}\n\
                 match from any for any action \"hop\"\n"
            ),
            None => format!(
                "queue ttl 4d\n\
                 action \"out\" relay helo {name}\n\
                 match from any for any action \"out\"\n"
            ),
        };
        let config =
            format!("{filters}listen on 0.0.0.0 port 25 hostname {name} filter chain\n{route}");
        petrel(spec, name, config);
    }
    origin(spec);
    sink(spec, DEST_MX, Behaviour::Accept);
    mx(spec, DEST, 10, DEST_MX);
    let n = rng.range(1, 4);
    let messages = (1..=n)
        .map(|id| {
            let r = rcpts(rng, id, DEST, 2);
            message(rng, id, secs(1 + id * 5), r, true)
        })
        .collect();
    client(spec, "client1.test", &names[0], messages, true);
    spec.expect.must_deliver = true;
}

/// Many clients through filters that crash, hang or write garbage now and then (fail-closed):
/// sessions get temporary failures, clients retry, the filters are restarted; whatever was
/// acknowledged is delivered, and the daemon keeps serving throughout.
fn filter_faults(rng: &mut Rng, spec: &mut WorldSpec) {
    let faults = format!(
        "--crash {} --hang {} --garbage {}",
        rng.range(0, 4),
        rng.range(0, 3),
        rng.range(0, 3)
    );
    let n = rng.range(1, 3) as usize;
    let filters = filter_chain_config(rng, n, &faults);
    petrel(
        spec,
        P1,
        format!(
            "{filters}listen on 0.0.0.0 port 25 hostname {P1} filter chain\n\
             queue ttl 4d\n\
             action \"out\" relay helo {P1}\n\
             match from any for any action \"out\"\n"
        ),
    );
    origin(spec);
    sink(spec, DEST_MX, Behaviour::Accept);
    mx(spec, DEST, 10, DEST_MX);
    let clients = rng.range(2, 6);
    let mut id = 0;
    for c in 1..=clients {
        let n = rng.range(1, 4);
        let messages = (0..n)
            .map(|k| {
                id += 1;
                let r = rcpts(rng, id, DEST, 2);
                let (at, dots) = (secs(1 + k * rng.range(1, 120)), rng.chance(30));
                message(rng, id, at, r, dots)
            })
            .collect();
        client(
            spec,
            &format!("client{c}.test"),
            P1,
            messages,
            rng.chance(50),
        );
        if let Some(c) = spec.clients.last_mut() {
            c.tries = 20;
        }
    }
    spec.expect.must_deliver = true;
    spec.tick = secs(1);
}
