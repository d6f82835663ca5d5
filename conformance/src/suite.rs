//! Running the library against one server: probe what it offers, run every case on a fresh
//! connection, collect the results.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::Poll;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::case::{Case, Feature, Group, Level, Verdict};
use crate::interp::{self, Options, Timing, ehlo_keywords, has_keyword, keyword_params};
use crate::transport::{Read, Runner, Target, Transport};

/// Pass, fail or skip.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The server behaves as required.
    Pass,
    /// It does not.
    Fail,
    /// The case does not apply (feature not offered, not observable).
    Skip,
}

impl Status {
    /// `pass`, `fail` or `skip`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Skip => "skip",
        }
    }
}

/// The result of one case against one server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseResult {
    /// The case id.
    pub id: String,
    /// Its RFC.
    pub rfc: u16,
    /// Its section.
    pub section: String,
    /// Its requirement level.
    pub level: Level,
    /// Its family.
    pub group: Group,
    /// What it checks.
    pub title: String,
    /// The outcome.
    pub status: Status,
    /// What was observed on failure, or why the case was skipped.
    pub detail: String,
    /// The exchange.
    pub transcript: String,
    /// How long it took.
    pub millis: u64,
}

/// What the server offered when probed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// The greeting.
    pub greeting: String,
    /// The EHLO keyword lines.
    pub extensions: Vec<String>,
    /// The EHLO keyword lines after STARTTLS, when it was offered and worked.
    pub tls_extensions: Option<Vec<String>>,
    /// Why probing failed, if it did.
    pub error: Option<String>,
}

impl Profile {
    /// Whether the server (and the runner) offer `feature`; `None` when the answer is only
    /// known once connected.
    #[must_use]
    pub fn offers(&self, feature: Feature, can_tls: bool, opts: &Options) -> bool {
        let tls = self.tls_extensions.as_deref().unwrap_or(&[]);
        let auth_mechs = || {
            let mut m = keyword_params(&self.extensions, "AUTH").unwrap_or_default();
            m.push(' ');
            m.push_str(&keyword_params(tls, "AUTH").unwrap_or_default());
            m
        };
        match feature {
            Feature::Ext(k) => has_keyword(&self.extensions, k),
            Feature::NoExt(k) => !has_keyword(&self.extensions, k),
            Feature::StartTls => can_tls && has_keyword(&self.extensions, "STARTTLS"),
            Feature::Auth => has_keyword(&self.extensions, "AUTH") || has_keyword(tls, "AUTH"),
            Feature::AuthMechanism(m) => auth_mechs()
                .split_whitespace()
                .any(|x| x.eq_ignore_ascii_case(m)),
            Feature::Credentials => opts.credentials.is_some(),
            Feature::SizeLimit => interp::size_limit(&self.extensions).is_some(),
            Feature::VirtualTime => true,
            Feature::RelayRefused => !opts.relay_client,
        }
    }
}

/// The results of the library against one server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuiteReport {
    /// The tool and its version.
    pub tool: String,
    /// The server.
    pub target: Target,
    /// When the run started (UTC, RFC 3339).
    pub started: String,
    /// How long it took.
    pub millis: u64,
    /// What the server offered.
    pub profile: Profile,
    /// One result per case, in the library's order.
    pub results: Vec<CaseResult>,
}

/// Pass, fail and skip counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Passed.
    pub pass: usize,
    /// Failed.
    pub fail: usize,
    /// Skipped.
    pub skip: usize,
}

impl SuiteReport {
    /// Counts of the cases of `level` (all levels with `None`).
    #[must_use]
    pub fn counts(&self, level: Option<Level>) -> Counts {
        let mut c = Counts::default();
        for r in self
            .results
            .iter()
            .filter(|r| level.is_none_or(|l| r.level == l))
        {
            match r.status {
                Status::Pass => c.pass += 1,
                Status::Fail => c.fail += 1,
                Status::Skip => c.skip += 1,
            }
        }
        c
    }

    /// The MUST cases that failed.
    #[must_use]
    pub fn must_failures(&self) -> Vec<&CaseResult> {
        self.results
            .iter()
            .filter(|r| r.level == Level::Must && r.status == Status::Fail)
            .collect()
    }

    /// The result of case `id`.
    #[must_use]
    pub fn result(&self, id: &str) -> Option<&CaseResult> {
        self.results.iter().find(|r| r.id == id)
    }
}

/// Connects once to learn the greeting and the extensions (also after STARTTLS).
pub async fn probe<R: Runner>(runner: &R, opts: &Options) -> Profile {
    let mut profile = Profile::default();
    let timeout = runner.reply_timeout();
    let mut t = match runner.connect().await {
        Ok(t) => t,
        Err(e) => {
            profile.error = Some(format!("cannot connect: {e}"));
            return profile;
        }
    };
    match t.read_reply(timeout).await {
        Read::Reply(r, _) => profile.greeting = r.to_string(),
        other => {
            profile.error = Some(format!("no greeting: {other:?}"));
            return profile;
        }
    }
    let ehlo = opts.expand(b"EHLO {helo}\r\n");
    if t.send(&ehlo).await.is_err() {
        profile.error = Some("connection lost".into());
        return profile;
    }
    match t.read_reply(timeout).await {
        Read::Reply(r, _) if r.code == 250 => profile.extensions = ehlo_keywords(&r),
        other => {
            profile.error = Some(format!("EHLO refused: {other:?}"));
            return profile;
        }
    }
    if runner.can_tls() && has_keyword(&profile.extensions, "STARTTLS") {
        let _ = t.send(b"STARTTLS\r\n").await;
        if let Read::Reply(r, _) = t.read_reply(timeout).await
            && r.code == 220
            && t.start_tls().await.is_ok()
            && t.send(&ehlo).await.is_ok()
            && let Read::Reply(r, _) = t.read_reply(timeout).await
            && r.code == 250
        {
            profile.tls_extensions = Some(ehlo_keywords(&r));
        }
    }
    let _ = t.send(b"QUIT\r\n").await;
    profile
}

/// Runs one case on a fresh connection.
pub async fn run_one<R: Runner>(
    runner: &R,
    case: &Case,
    profile: &Profile,
    opts: &Options,
) -> CaseResult {
    let start = Instant::now();
    let mut result = CaseResult {
        id: case.id.clone(),
        rfc: case.rfc,
        section: case.section.clone(),
        level: case.level,
        group: case.group,
        title: case.title.clone(),
        status: Status::Skip,
        detail: String::new(),
        transcript: String::new(),
        millis: 0,
    };
    if let Some(missing) = case
        .requires
        .iter()
        .find(|f| !profile.offers(**f, runner.can_tls(), opts))
    {
        result.detail = format!("not offered: needs {missing}");
        return result;
    }
    let verdict = match runner.connect().await {
        Err(e) => Verdict::fail(format!("cannot connect: {e}")),
        Ok(mut t) => {
            let timing = Timing {
                reply: runner.reply_timeout(),
                silence: runner.silence(),
            };
            let (verdict, transcript) = interp::run_case(case, &mut t, opts, timing).await;
            result.transcript = transcript;
            verdict
        }
    };
    (result.status, result.detail) = match verdict {
        Verdict::Pass => (Status::Pass, String::new()),
        Verdict::Fail(why) => (Status::Fail, why),
        Verdict::Skip(why) => (Status::Skip, why),
    };
    result.millis = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    result
}

/// Runs `cases` against the server `runner` reaches, `jobs` connections at a time.
pub async fn run_suite<R: Runner>(
    runner: &R,
    cases: &[Case],
    opts: &Options,
    jobs: usize,
) -> SuiteReport {
    let started = crate::report::now_rfc3339();
    let start = Instant::now();
    let profile = probe(runner, opts).await;
    let futures = cases.iter().map(|case| {
        let profile = &profile;
        Box::pin(run_one(runner, case, profile, opts)) as LocalFuture<'_, _>
    });
    let results = join_limited(futures, jobs.max(1)).await;
    SuiteReport {
        tool: format!("petrel-conformance {}", env!("CARGO_PKG_VERSION")),
        target: runner.target(),
        started,
        millis: u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX),
        profile,
        results,
    }
}

/// A boxed future on the current task.
pub type LocalFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// Polls at most `limit` futures at a time on the current task; returns their outputs in the
/// order given. (No spawning: the futures need not be `Send` or `'static`.)
pub async fn join_limited<'a, T>(
    futures: impl IntoIterator<Item = LocalFuture<'a, T>>,
    limit: usize,
) -> Vec<T> {
    let mut pending = futures.into_iter().enumerate();
    let mut active: Vec<(usize, LocalFuture<'a, T>)> = Vec::new();
    let mut done: Vec<Option<T>> = Vec::new();
    poll_fn(|cx| {
        loop {
            while active.len() < limit {
                match pending.next() {
                    Some((i, f)) => {
                        if done.len() <= i {
                            done.resize_with(i + 1, || None);
                        }
                        active.push((i, f));
                    }
                    None => break,
                }
            }
            if active.is_empty() {
                return Poll::Ready(());
            }
            let mut progressed = false;
            let mut k = 0;
            while k < active.len() {
                if let Poll::Ready(v) = active[k].1.as_mut().poll(cx) {
                    let (i, _) = active.swap_remove(k);
                    done[i] = Some(v);
                    progressed = true;
                } else {
                    k += 1;
                }
            }
            if !progressed {
                return Poll::Pending;
            }
        }
    })
    .await;
    done.into_iter().flatten().collect()
}
