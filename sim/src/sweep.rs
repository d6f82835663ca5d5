//! Sweeps: many seeds of one family or all, on several threads, sharded for CI matrices,
//! summarised as JSON.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::invariants::Violation;
use crate::scenarios::Family;
use crate::world;

/// One failing seed.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Failure {
    /// The family.
    pub family: String,
    /// The seed.
    pub seed: u64,
    /// What broke.
    pub violations: Vec<Violation>,
    /// The command that reproduces it.
    pub reproduce: String,
}

/// Figures of one family in a sweep.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct FamilySummary {
    /// The family.
    pub family: String,
    /// Seeds run.
    pub runs: usize,
    /// Seeds that failed.
    pub failed: usize,
    /// Wall time spent in its runs, summed over threads (seconds).
    pub wall_secs: f64,
    /// Simulated time played, summed (seconds).
    pub sim_secs: f64,
    /// Duplicates inside the at-least-once window, summed.
    pub duplicates: usize,
    /// Recipients delivered, bounced and left queued, summed.
    pub delivered: usize,
    /// Recipients bounced, summed.
    pub bounced: usize,
    /// Recipients still queued at the end, summed.
    pub queued: usize,
}

/// The result of a sweep.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Summary {
    /// Per family.
    pub families: Vec<FamilySummary>,
    /// Failing seeds.
    pub failures: Vec<Failure>,
    /// Wall time of the whole sweep (seconds).
    pub wall_secs: f64,
}

impl Summary {
    /// True when no seed failed.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// What to run.
#[derive(Clone, Debug)]
pub struct Plan<'a> {
    /// The families.
    pub families: Vec<&'a Family>,
    /// First seed.
    pub from: u64,
    /// Last seed (inclusive).
    pub to: u64,
    /// Threads.
    pub jobs: usize,
    /// This shard (0-based) of `shards`: seeds whose index modulo `shards` is `shard`.
    pub shard: (u64, u64),
    /// Print progress to standard error.
    pub progress: bool,
}

/// The command that reproduces a run.
#[must_use]
pub fn reproduce(family: &str, seed: u64) -> String {
    format!("cargo run -p petrel-sim --release -- run --scenario {family} --seed {seed} --trace")
}

/// Runs a sweep.
#[must_use]
pub fn sweep(plan: &Plan<'_>) -> Summary {
    let started = Instant::now();
    let mut work = Vec::new();
    for f in &plan.families {
        for seed in plan.from..=plan.to {
            if (seed - plan.from) % plan.shard.1 == plan.shard.0 {
                work.push((*f, seed));
            }
        }
    }
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let results = Mutex::new(Vec::new());
    let total = work.len();
    std::thread::scope(|scope| {
        for _ in 0..plan.jobs.max(1) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((family, seed)) = work.get(i) else {
                        break;
                    };
                    let result = world::run(&family.world(*seed), false);
                    let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                    if plan.progress {
                        progress(n, total, started.elapsed());
                    }
                    results
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(result);
                }
            });
        }
    });
    if plan.progress {
        eprintln!();
    }
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    results.sort_by(|a, b| (&a.family, a.seed).cmp(&(&b.family, b.seed)));
    let mut summary = Summary::default();
    for f in &plan.families {
        let mut s = FamilySummary {
            family: f.name.to_owned(),
            ..FamilySummary::default()
        };
        for r in results.iter().filter(|r| r.family == f.name) {
            s.runs += 1;
            s.wall_secs += r.wall.as_secs_f64();
            s.sim_secs += r.sim_time.as_secs_f64();
            s.duplicates += r.verdict.stats.duplicates;
            s.delivered += r.verdict.stats.delivered;
            s.bounced += r.verdict.stats.bounced;
            s.queued += r.verdict.stats.queued;
            if !r.passed() {
                s.failed += 1;
                summary.failures.push(Failure {
                    family: r.family.clone(),
                    seed: r.seed,
                    violations: r.verdict.violations.clone(),
                    reproduce: reproduce(&r.family, r.seed),
                });
            }
        }
        summary.families.push(s);
    }
    summary.wall_secs = started.elapsed().as_secs_f64();
    summary
}

fn progress(done: usize, total: usize, elapsed: Duration) {
    let width = 40;
    let filled = done * width / total.max(1);
    eprint!(
        "\r[{}{}] {done}/{total} {:.1}s",
        "#".repeat(filled),
        " ".repeat(width - filled),
        elapsed.as_secs_f64()
    );
}
