//! The conformance library inside the simulator: every case runs over turmoil's network
//! against a simulated Petrel host (the daemon's own engine), in simulated time, so the cases
//! that wait for the server's timeouts (minutes of silence) run in a moment too.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use petrel_conformance::case::Case;
use petrel_conformance::interp::Options;
use petrel_conformance::suite::{SuiteReport, run_suite};
use petrel_conformance::transport::{Runner, StreamTransport, Target};

use crate::clock::SimClock;
use crate::disk::SimDisk;
use crate::dns::SimDns;
use crate::peers::{self, Behaviour};
use crate::platform::SimPlatform;
use crate::record::Recorder;

/// The simulated Petrel host's name.
const PETREL: &str = "petrel.sim.test";
/// The domain it accepts mail for.
pub const DOMAIN: &str = "sim.test";

/// Connects to the simulated Petrel over turmoil's network.
#[derive(Debug)]
pub struct SimRunner {
    addr: SocketAddr,
}

impl Runner for SimRunner {
    type Transport = StreamTransport<turmoil::net::TcpStream>;

    async fn connect(&self) -> Result<Self::Transport, String> {
        let stream = turmoil::net::TcpStream::connect(self.addr)
            .await
            .map_err(|e| e.to_string())?;
        Ok(StreamTransport::any_certificate(stream, true))
    }

    fn target(&self) -> Target {
        Target {
            name: "petrel".into(),
            address: format!("{PETREL}:25"),
            runner: "sim".into(),
        }
    }

    fn can_tls(&self) -> bool {
        // The simulated host has no certificate: STARTTLS is not offered.
        false
    }

    fn reply_timeout(&self) -> Duration {
        Duration::from_secs(60)
    }

    fn silence(&self) -> Duration {
        Duration::from_secs(2)
    }
}

/// Runs `cases` against a simulated Petrel host that accepts mail for [`DOMAIN`] and the
/// postmaster and refuses other domains, as a public MX does.
///
/// # Errors
/// The simulation itself failed (the host did not start, the run did not end).
pub fn run(cases: &[Case]) -> Result<SuiteReport, String> {
    let mut sim = turmoil::Builder::new()
        .tick_duration(Duration::from_millis(100))
        .simulation_duration(Duration::from_secs(24 * 3600))
        .rng_seed(1)
        .build();
    let rec = Recorder::new(false);
    let dns = SimDns::new();
    let config = format!(
        "listen on 0.0.0.0 port 25 hostname {PETREL}\n\
         action \"out\" relay helo {PETREL}\n\
         match from any for domain \"{DOMAIN}\" action \"out\"\n\
         match from any for local action \"out\"\n"
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
    let petrel_ip: IpAddr = sim.lookup(PETREL);
    let sink_ip = sim.lookup("mx.sim.test");
    dns.records(|r| {
        r.add_ip(PETREL, petrel_ip);
        r.add_ip(DOMAIN, sink_ip);
        r.add_ip("mx.sim.test", sink_ip);
    });
    let report = Arc::new(Mutex::new(None));
    let out = report.clone();
    let cases = cases.to_vec();
    sim.client("conformance.sim.test", async move {
        let runner = SimRunner {
            addr: SocketAddr::new(petrel_ip, 25),
        };
        let opts = Options::for_domain(DOMAIN);
        let r = run_suite(&runner, &cases, &opts, 8).await;
        *out.lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
        Ok(())
    });
    sim.run().map_err(|e| e.to_string())?;
    let report = report.lock().unwrap_or_else(|e| e.into_inner()).take();
    report.ok_or_else(|| "the suite did not finish".into())
}
