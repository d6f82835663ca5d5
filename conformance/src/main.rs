//! `petrel-conformance`: run the SMTP conformance library against a server, grade a client,
//! list the cases, merge reports, or play the 250-to-everything sink.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use petrel_conformance::case::Level;
use petrel_conformance::cases::Filter;
use petrel_conformance::client::{self, ServeTiming};
use petrel_conformance::interp::Options;
use petrel_conformance::memory::MemoryRunner;
use petrel_conformance::report;
use petrel_conformance::suite::{self, SuiteReport};
use petrel_conformance::tcp::TcpRunner;

#[derive(Parser)]
#[command(
    name = "petrel-conformance",
    version,
    about = "SMTP conformance suite: RFC cases, runners and reports"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server cases against a server over TCP (or the core machine in memory).
    Run(RunArgs),
    /// List the cases.
    List {
        /// Only cases of this RFC (repeatable).
        #[arg(long)]
        rfc: Vec<u16>,
        /// Only cases of this level: MUST, SHOULD or MAY (repeatable).
        #[arg(long, value_parser = parse_level)]
        level: Vec<Level>,
        /// List the client cases graded by `serve` instead.
        #[arg(long)]
        client: bool,
        /// List the scenarios `serve` plays instead, in order.
        #[arg(long)]
        scenarios: bool,
        /// Print a Markdown table of the counts by RFC and level instead.
        #[arg(long)]
        summary: bool,
    },
    /// Play a scripted server that grades an SMTP client: one scenario per connection.
    Serve(ServeArgs),
    /// Merge JSON reports (one server each) into one side-by-side report.
    Report {
        /// Where to write report.md, report.json, junit.xml and report.html.
        #[arg(long)]
        out: PathBuf,
        /// report.json files written by `run` or `serve`.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
    },
    /// Grade a filter speaking OpenSMTPD's filter protocol: `filter -- COMMAND…`.
    Filter {
        /// The protocol version to speak: 0.5, 0.6 or 0.7.
        #[arg(long, default_value = "0.7")]
        protocol: String,
        /// How long each answer may take, in seconds.
        #[arg(long, default_value_t = 10)]
        timeout: u64,
        /// Sessions of the concurrency check.
        #[arg(long, default_value_t = 50)]
        sessions: u64,
        /// `text`, `markdown` or `json`.
        #[arg(long, default_value = "text")]
        format: String,
        /// The filter's command line (one argument is run by `/bin/sh -c`).
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// A broken server answering 250 to everything (the suite must fail it).
    FakeSink {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:2599")]
        listen: String,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// `HOST:PORT` (or `NAME=HOST:PORT`) of the server; `memory` runs the core server machine
    /// in memory.
    #[arg(long)]
    target: String,
    /// A domain the server accepts mail for.
    #[arg(long)]
    domain: String,
    /// TLS from the first byte (smtps) instead of plaintext (STARTTLS cases run whenever
    /// STARTTLS is offered).
    #[arg(long)]
    tls: bool,
    /// Credentials for the AUTH cases.
    #[arg(long, value_name = "USER:PASS")]
    auth: Option<String>,
    /// Write report.md, report.json, junit.xml and report.html here.
    #[arg(long)]
    report_dir: Option<PathBuf>,
    /// The server's name in reports (default: NAME from `--target NAME=…`, or the address).
    #[arg(long)]
    name: Option<String>,
    /// The recipient used (default: conformance@DOMAIN).
    #[arg(long)]
    rcpt: Option<String>,
    /// The sender used.
    #[arg(long, default_value = "sender@conformance.example")]
    from: String,
    /// The EHLO name.
    #[arg(long, default_value = "client.conformance.example")]
    helo: String,
    /// Only cases whose id starts with this (repeatable).
    #[arg(long)]
    only: Vec<String>,
    /// Only cases of this RFC (repeatable).
    #[arg(long)]
    rfc: Vec<u16>,
    /// Only cases of this level (repeatable).
    #[arg(long, value_parser = parse_level)]
    level: Vec<Level>,
    /// Seconds to wait for a reply.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
    /// Connections at a time.
    #[arg(long, default_value_t = 4)]
    jobs: usize,
    /// Also run the cases that wait minutes (server timeouts), in real time.
    #[arg(long)]
    slow: bool,
    /// The server relays mail for this client (for example Petrel's default configuration
    /// seen from loopback): skip the cases that need mail for other domains refused.
    #[arg(long)]
    relay_client: bool,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:2700")]
    listen: String,
    /// The client's name in reports.
    #[arg(long, default_value = "client")]
    client: String,
    /// Scenarios to play, in order, one per connection (default: all).
    #[arg(long)]
    scenario: Vec<String>,
    /// Write the reports here.
    #[arg(long)]
    report_dir: Option<PathBuf>,
    /// Seconds to wait for the client's next bytes.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    /// Seconds to wait for each connection; when none comes, the scenarios left are not played.
    #[arg(long, default_value_t = 300)]
    accept_timeout: u64,
}

fn parse_level(s: &str) -> Result<Level, String> {
    match s.to_ascii_uppercase().as_str() {
        "MUST" => Ok(Level::Must),
        "SHOULD" => Ok(Level::Should),
        "MAY" => Ok(Level::May),
        _ => Err(format!("unknown level {s} (MUST, SHOULD or MAY)")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    match cli.command {
        Command::Run(args) => runtime.block_on(run(args)),
        Command::List {
            rfc,
            level,
            client,
            scenarios,
            summary,
        } => {
            if summary {
                print!("{}", counts_table());
                return ExitCode::SUCCESS;
            }
            if scenarios {
                for s in client::scenarios() {
                    println!("{:<20} {}", s.name, s.description);
                }
                return ExitCode::SUCCESS;
            }
            list(&rfc, &level, client)
        }
        Command::Serve(args) => runtime.block_on(serve(args)),
        Command::Report { out, inputs } => merge(&out, &inputs),
        Command::Filter {
            protocol,
            timeout,
            sessions,
            format,
            command,
        } => {
            let Some(version) = petrel_core::filter::Version::parse(&protocol) else {
                eprintln!("unknown protocol version {protocol}: 0.5, 0.6 or 0.7");
                return ExitCode::from(2);
            };
            let options = petrel_conformance::filter_kit::KitOptions {
                command,
                version,
                timeout: Duration::from_secs(timeout),
                sessions,
            };
            let report = runtime.block_on(petrel_conformance::filter_kit::run(&options));
            match format.as_str() {
                "json" => println!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                ),
                "markdown" => print!("{}", report.render(true)),
                _ => print!("{}", report.render(false)),
            }
            if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Command::FakeSink { listen } => runtime.block_on(async {
            let listener = match tokio::net::TcpListener::bind(&listen).await {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("cannot listen on {listen}: {e}");
                    return ExitCode::from(2);
                }
            };
            eprintln!("fake sink (250 to everything) on {listen}");
            match petrel_conformance::sink::run(listener).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("fake sink: {e}");
                    ExitCode::from(2)
                }
            }
        }),
    }
}

/// Prints lines to standard output; a reader that goes away (`| head`) ends the listing
/// quietly instead of a panic.
fn print_lines(lines: impl Iterator<Item = String>) -> ExitCode {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for l in lines {
        match writeln!(out, "{l}") {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

fn list(rfcs: &[u16], levels: &[Level], client: bool) -> ExitCode {
    if client {
        let lines = client::cases().into_iter().map(|c| {
            format!(
                "{:<55} RFC {} §{:<10} {:<6} {}",
                c.id, c.rfc, c.section, c.level, c.title
            )
        });
        return print_lines(lines);
    }
    let filter = Filter {
        ids: Vec::new(),
        rfcs: rfcs.to_vec(),
        levels: levels.to_vec(),
    };
    let cases = filter.select();
    let printed = print_lines(cases.iter().map(|c| {
        format!(
            "{:<55} RFC {} §{:<10} {:<6} {}",
            c.id, c.rfc, c.section, c.level, c.title
        )
    }));
    if printed != ExitCode::SUCCESS {
        return printed;
    }
    eprintln!("{} cases", cases.len());
    ExitCode::SUCCESS
}

/// Counts of the server cases by RFC (the smuggling family apart) and level, and of the client
/// cases, as Markdown.
fn counts_table() -> String {
    use std::collections::BTreeMap;
    use std::fmt::Write as _;
    let mut rows: BTreeMap<String, [usize; 3]> = BTreeMap::new();
    let index = |l: Level| match l {
        Level::Must => 0,
        Level::Should => 1,
        Level::May => 2,
    };
    for c in petrel_conformance::cases::all() {
        let key = if c.group == petrel_conformance::case::Group::Smuggling {
            "SMTP smuggling (RFC 5321 §2.3.8, §4.1.1.4; RFC 2920)".to_owned()
        } else {
            format!("RFC {}", c.rfc)
        };
        rows.entry(key).or_default()[index(c.level)] += 1;
    }
    let mut client = [0usize; 3];
    for c in client::cases() {
        client[index(c.level)] += 1;
    }
    let mut s =
        String::from("| cases | MUST | SHOULD | MAY | all |\n| --- | --- | --- | --- | --- |\n");
    let mut total = [0usize; 3];
    for (k, v) in &rows {
        let _ = writeln!(
            s,
            "| {k} | {} | {} | {} | {} |",
            v[0],
            v[1],
            v[2],
            v.iter().sum::<usize>()
        );
        for i in 0..3 {
            total[i] += v[i];
        }
    }
    let _ = writeln!(
        s,
        "| **server cases** | **{}** | **{}** | **{}** | **{}** |",
        total[0],
        total[1],
        total[2],
        total.iter().sum::<usize>()
    );
    let _ = writeln!(
        s,
        "| client cases (`serve`) | {} | {} | {} | {} |",
        client[0],
        client[1],
        client[2],
        client.iter().sum::<usize>()
    );
    s
}

fn finish(reports: &[SuiteReport], dir: Option<&Path>) -> ExitCode {
    for r in reports {
        print!("{}", report::summary(r));
    }
    if let Some(dir) = dir {
        if let Err(e) = report::write_all(dir, reports) {
            eprintln!("cannot write the reports in {}: {e}", dir.display());
            return ExitCode::from(2);
        }
        println!("reports written in {}", dir.display());
    }
    let must_failed: usize = reports.iter().map(|r| r.must_failures().len()).sum();
    if must_failed > 0 {
        println!("{must_failed} MUST case(s) failed");
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

async fn run(args: RunArgs) -> ExitCode {
    let filter = Filter {
        ids: args.only.clone(),
        rfcs: args.rfc.clone(),
        levels: args.level.clone(),
    };
    let cases = filter.select();
    let mut opts = Options::for_domain(&args.domain);
    if let Some(rcpt) = &args.rcpt {
        opts.rcpt.clone_from(rcpt);
    }
    opts.from.clone_from(&args.from);
    opts.helo.clone_from(&args.helo);
    opts.slow = args.slow;
    opts.relay_client = args.relay_client;
    if let Some(auth) = &args.auth {
        let Some((user, pass)) = auth.split_once(':') else {
            eprintln!("--auth wants USER:PASS");
            return ExitCode::from(2);
        };
        opts.credentials = Some((user.to_owned(), pass.to_owned()));
    }
    let (name, address) = match args.target.split_once('=') {
        Some((n, a)) => (n.to_owned(), a.to_owned()),
        None => (args.target.clone(), args.target.clone()),
    };
    let name = args.name.clone().unwrap_or(name);
    let report = if address == "memory" {
        let mut runner = MemoryRunner::new(&args.domain);
        runner.name = name;
        if opts.credentials.is_some() {
            runner.credentials.clone_from(&opts.credentials);
        } else {
            opts.credentials.clone_from(&runner.credentials);
        }
        runner.run(&cases, &opts)
    } else {
        let mut runner = TcpRunner::new(&address, &name);
        runner.implicit_tls = args.tls;
        runner.reply_timeout = Duration::from_secs(args.timeout.max(1));
        suite::run_suite(&runner, &cases, &opts, args.jobs).await
    };
    finish(&[report], args.report_dir.as_deref())
}

async fn serve(args: ServeArgs) -> ExitCode {
    let all = client::scenarios();
    let chosen: Vec<client::Scenario> = if args.scenario.is_empty() {
        all
    } else {
        let mut v = Vec::new();
        for name in &args.scenario {
            match all.iter().find(|s| s.name == name) {
                Some(s) => v.push(s.clone()),
                None => {
                    eprintln!(
                        "unknown scenario {name}; known: {}",
                        all.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
                    );
                    return ExitCode::from(2);
                }
            }
        }
        v
    };
    let listener = match tokio::net::TcpListener::bind(&args.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cannot listen on {}: {e}", args.listen);
            return ExitCode::from(2);
        }
    };
    let acceptor = client::self_signed_acceptor();
    let timing = ServeTiming {
        idle: Duration::from_secs(args.timeout.max(1)),
        accept: Duration::from_secs(args.accept_timeout.max(1)),
        ..ServeTiming::default()
    };
    eprintln!(
        "grading {} on {}: {} connection(s) expected, each sending one message whose body has a line starting with a dot",
        args.client,
        args.listen,
        chosen.len()
    );
    let mut results = Vec::new();
    for (i, scenario) in chosen.iter().enumerate() {
        eprintln!(
            "connection {}/{}: scenario `{}` ({})",
            i + 1,
            chosen.len(),
            scenario.name,
            scenario.description
        );
        match client::serve_one(&listener, scenario, &acceptor, timing).await {
            Ok(r) => {
                for c in &r {
                    eprintln!(
                        "  {:<5} [{}] {} {}",
                        c.status.as_str(),
                        c.level,
                        c.id,
                        c.detail
                    );
                }
                results.extend(r);
            }
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                eprintln!("no client came: the scenarios left are not played");
                break;
            }
            Err(e) => {
                eprintln!("accept failed: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let report = client::report(&args.client, &args.listen, results);
    finish(&[report], args.report_dir.as_deref())
}

fn merge(out: &Path, inputs: &[PathBuf]) -> ExitCode {
    let mut runs = Vec::new();
    for path in inputs {
        match report::read_json(path) {
            Ok(r) => runs.extend(r),
            Err(e) => {
                eprintln!("{}: {e}", path.display());
                return ExitCode::from(2);
            }
        }
    }
    if let Err(e) = report::write_all(out, &runs) {
        eprintln!("cannot write the reports in {}: {e}", out.display());
        return ExitCode::from(2);
    }
    for r in &runs {
        print!("{}", report::summary(r));
    }
    println!("side-by-side report written in {}", out.display());
    ExitCode::SUCCESS
}
