//! `petrel-sim`: list the scenario families, run one world, sweep many seeds, replay a
//! recorded SMTP transcript.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use petrel_sim::replay;
use petrel_sim::scenarios::{self, FAMILIES};
use petrel_sim::sweep::{self, Plan};
use petrel_sim::world;

#[derive(Parser)]
#[command(
    name = "petrel-sim",
    about = "Deterministic simulation of networks of Petrel MTAs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Prints the scenario families, one a line.
    List,
    /// Runs one world and prints a summary.
    Run {
        /// The family.
        #[arg(long)]
        scenario: String,
        /// The seed.
        #[arg(long)]
        seed: u64,
        /// Writes every SMTP transcript, queue event and log line.
        #[arg(long)]
        trace: bool,
        /// Where the trace goes (standard output by default).
        #[arg(long)]
        trace_file: Option<PathBuf>,
    },
    /// Runs many seeds and exits non-zero when any fails.
    Sweep {
        /// A family, or `all`.
        #[arg(long)]
        scenario: String,
        /// Seeds `A..B` (inclusive).
        #[arg(long)]
        seeds: String,
        /// Threads.
        #[arg(long, default_value_t = 2)]
        jobs: usize,
        /// `I/N`: run only the I-th (1-based) of N shards.
        #[arg(long)]
        shard: Option<String>,
        /// Writes a JSON summary here.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Replays a recorded SMTP transcript against a simulated Petrel host.
    Replay {
        /// The transcript.
        file: PathBuf,
    },
}

fn parse_range(s: &str) -> Result<(u64, u64), String> {
    let (a, b) = s
        .split_once("..")
        .ok_or_else(|| format!("--seeds {s}: expected A..B"))?;
    let a: u64 = a.parse().map_err(|_| format!("--seeds {s}: bad start"))?;
    let b: u64 = b.parse().map_err(|_| format!("--seeds {s}: bad end"))?;
    if b < a {
        return Err(format!("--seeds {s}: empty range"));
    }
    Ok((a, b))
}

fn parse_shard(s: &str) -> Result<(u64, u64), String> {
    let (i, n) = s
        .split_once('/')
        .ok_or_else(|| format!("--shard {s}: expected I/N"))?;
    let i: u64 = i.parse().map_err(|_| format!("--shard {s}: bad I"))?;
    let n: u64 = n.parse().map_err(|_| format!("--shard {s}: bad N"))?;
    if n == 0 || i == 0 || i > n {
        return Err(format!("--shard {s}: I must be in 1..=N"));
    }
    Ok((i - 1, n))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("petrel-sim: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(command: Command) -> Result<ExitCode, String> {
    match command {
        Command::List => {
            for f in FAMILIES {
                println!("{}", f.name);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Run {
            scenario,
            seed,
            trace,
            trace_file,
        } => {
            let family = scenarios::family(&scenario)
                .ok_or_else(|| format!("no scenario family {scenario} (see `petrel-sim list`)"))?;
            let result = world::run(&family.world(seed), trace || trace_file.is_some());
            if trace || trace_file.is_some() {
                match &trace_file {
                    Some(path) => {
                        let mut f = std::fs::File::create(path)
                            .map_err(|e| format!("{}: {e}", path.display()))?;
                        world::write_trace(&result.trace, &mut f)
                            .map_err(|e| format!("{}: {e}", path.display()))?;
                    }
                    None => world::write_trace(&result.trace, &mut std::io::stdout())
                        .map_err(|e| e.to_string())?,
                }
            }
            let s = &result.verdict.stats;
            println!(
                "{} seed {}: {} — simulated {:.0}s in {:.3}s wall; {} messages, {} acknowledged, {} recipients: {} delivered, {} bounced, {} queued; {} duplicates in the at-least-once window; {} RCPT tries seen",
                result.family,
                result.seed,
                if result.passed() { "ok" } else { "FAILED" },
                result.sim_time.as_secs_f64(),
                result.wall.as_secs_f64(),
                s.submitted,
                s.acked,
                s.recipients,
                s.delivered,
                s.bounced,
                s.queued,
                s.duplicates,
                s.rcpt_attempts,
            );
            for v in &result.verdict.violations {
                println!("  {}: {}", v.kind, v.detail);
            }
            Ok(if result.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Sweep {
            scenario,
            seeds,
            jobs,
            shard,
            json,
        } => {
            let families = if scenario == "all" {
                FAMILIES.iter().collect()
            } else {
                vec![
                    scenarios::family(&scenario)
                        .ok_or_else(|| format!("no scenario family {scenario}"))?,
                ]
            };
            let (from, to) = parse_range(&seeds)?;
            let shard = match shard {
                Some(s) => parse_shard(&s)?,
                None => (0, 1),
            };
            let summary = sweep::sweep(&Plan {
                families,
                from,
                to,
                jobs,
                shard,
                progress: true,
            });
            for f in &summary.families {
                println!(
                    "{:<14} {:>5} runs {:>4} failed  {:>8.2}s wall  {:>12.0}s simulated  {} duplicates",
                    f.family, f.runs, f.failed, f.wall_secs, f.sim_secs, f.duplicates
                );
            }
            for failure in &summary.failures {
                println!("FAILED {} seed {}:", failure.family, failure.seed);
                for v in &failure.violations {
                    println!("  {}: {}", v.kind, v.detail);
                }
                println!("  reproduce: {}", failure.reproduce);
            }
            println!("sweep took {:.2}s", summary.wall_secs);
            if let Some(path) = json {
                let text = serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())?;
                std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
            }
            Ok(if summary.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Replay { file } => {
            let text =
                std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            let lines = replay::parse(&text).map_err(|e| format!("{}: {e}", file.display()))?;
            let report = replay::replay(&lines).map_err(|e| format!("{}: {e}", file.display()))?;
            for line in &report.transcript {
                println!("{line}");
            }
            for (n, expected, got, reply) in &report.mismatches {
                println!("reply {}: expected {expected}, got {got}: {reply}", n + 1);
            }
            println!(
                "{}: {} replies, {} mismatches",
                file.display(),
                report.replies,
                report.mismatches.len()
            );
            Ok(if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}
