//! `petrel-conformance filter -- COMMAND…`: a conformance kit for filters. It runs a filter
//! process, plays the daemon's side of OpenSMTPD's filter protocol with a script, and grades
//! what the filter gets wrong: the handshake, its registrations, tokens and sessions echoed,
//! answers in time, data-lines returned dot-escaped and intact, resets, many sessions at once.

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::Duration;

use petrel_core::Time;
use petrel_core::filter::report::{Endpoint, Fcrdns, IdentifyMethod, ReportEvent, TxResult};
use petrel_core::filter::wire::{self, FilterLine, Handshake, Registration};
use petrel_core::filter::{EventName, Phase, Response, Subsystem, Version};
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout};

/// How the kit runs.
#[derive(Clone, Debug)]
pub struct KitOptions {
    /// The filter's command line (one string is run by `/bin/sh -c "exec …"`).
    pub command: Vec<String>,
    /// The protocol version spoken.
    pub version: Version,
    /// How long each answer may take.
    pub timeout: Duration,
    /// Sessions of the concurrency check.
    pub sessions: u64,
}

/// A check's level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum KitLevel {
    /// The protocol requires it.
    Must,
    /// A well-behaved filter does it.
    Should,
}

/// The outcome of one check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum KitOutcome {
    /// Passed.
    Pass,
    /// Failed, with why.
    Fail(String),
    /// Not applicable, with why.
    Skip(String),
}

/// One check's result.
#[derive(Clone, Debug, Serialize)]
pub struct KitCheck {
    /// Its id (`handshake`, `phase-rcpt-to`, `data-lines-intact`, …).
    pub id: String,
    /// What it checks.
    pub title: String,
    /// MUST or SHOULD.
    pub level: KitLevel,
    /// How it went.
    pub outcome: KitOutcome,
}

/// The kit's report.
#[derive(Clone, Debug, Serialize)]
pub struct KitReport {
    /// The command graded.
    pub command: String,
    /// The protocol version spoken.
    pub version: String,
    /// What it registered: phases, and report events per subsystem.
    pub registered: Vec<String>,
    /// The checks, in order.
    pub checks: Vec<KitCheck>,
    /// What it wrote on its standard error.
    pub stderr: Vec<String>,
}

impl KitReport {
    /// True when no MUST check failed.
    #[must_use]
    pub fn passed(&self) -> bool {
        !self
            .checks
            .iter()
            .any(|c| c.level == KitLevel::Must && matches!(c.outcome, KitOutcome::Fail(_)))
    }

    /// The report as text for a terminal (or Markdown when `markdown`).
    #[must_use]
    pub fn render(&self, markdown: bool) -> String {
        let mut out = String::new();
        if markdown {
            out.push_str(&format!(
                "# Filter conformance: `{}`\n\nProtocol {}. Registered: {}.\n\n| check | level | result |\n| --- | --- | --- |\n",
                self.command,
                self.version,
                self.registered.join(", ")
            ));
        } else {
            out.push_str(&format!(
                "filter: {}\nprotocol {}; registered: {}\n",
                self.command,
                self.version,
                self.registered.join(", ")
            ));
        }
        for c in &self.checks {
            let level = match c.level {
                KitLevel::Must => "MUST",
                KitLevel::Should => "SHOULD",
            };
            let result = match &c.outcome {
                KitOutcome::Pass => "pass".to_owned(),
                KitOutcome::Fail(why) => format!("FAIL: {why}"),
                KitOutcome::Skip(why) => format!("skip: {why}"),
            };
            if markdown {
                out.push_str(&format!(
                    "| `{}` {} | {level} | {result} |\n",
                    c.id, c.title
                ));
            } else {
                out.push_str(&format!("  {level:6} {:24} {result}\n", c.id));
            }
        }
        let count = |level: KitLevel, pass: bool| {
            self.checks
                .iter()
                .filter(|c| c.level == level)
                .filter(|c| match &c.outcome {
                    KitOutcome::Pass => pass,
                    KitOutcome::Fail(_) => !pass,
                    KitOutcome::Skip(_) => false,
                })
                .count()
        };
        out.push_str(&format!(
            "\nMUST {} pass / {} fail; SHOULD {} pass / {} fail\n",
            count(KitLevel::Must, true),
            count(KitLevel::Must, false),
            count(KitLevel::Should, true),
            count(KitLevel::Should, false)
        ));
        if !self.stderr.is_empty() {
            out.push_str("\nstandard error:\n");
            for line in self.stderr.iter().take(20) {
                out.push_str(&format!("  {line}\n"));
            }
        }
        out
    }
}

/// The phases a request can be sent for, with a realistic parameter.
const PHASES: &[(Phase, &str)] = &[
    // A loopback client: a filter that looks clients up (a reputation filter) then asks nobody.
    (Phase::Connect, "localhost|127.0.0.1"),
    (Phase::Helo, "client.example"),
    (Phase::Ehlo, "client.example"),
    (Phase::MailFrom, "alice@client.example"),
    (Phase::RcptTo, "bob@mx.example"),
    (Phase::Data, ""),
    (Phase::Commit, ""),
];

/// The message the data-line check sends, as lines on the wire (dot-escaped).
const MESSAGE: &[&str] = &[
    "From: Alice <alice@client.example>",
    "To: bob@mx.example",
    "Subject: pipes | and dots",
    "",
    "..a line that starts with a dot",
    "...two dots",
    "..",
    "a|b|c",
    "",
];

struct Filter {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
    version: Version,
    timeout: Duration,
    next_token: u64,
    lines: Vec<String>,
}

impl Filter {
    async fn send(&mut self, line: &str) -> Result<(), String> {
        self.input
            .write_all(format!("{line}\n").as_bytes())
            .await
            .map_err(|e| format!("cannot write to the filter: {e}"))
    }

    /// The next line from the filter, within the timeout.
    async fn read(&mut self) -> Result<String, String> {
        let mut line = String::new();
        match tokio::time::timeout(self.timeout, self.output.read_line(&mut line)).await {
            Err(_) => Err(format!("no answer within {:?}", self.timeout)),
            Ok(Err(e)) => Err(format!("cannot read: {e}")),
            Ok(Ok(0)) => Err("the filter exited".into()),
            Ok(Ok(_)) => {
                let line = line.trim_end_matches('\n').to_owned();
                self.lines.push(line.clone());
                Ok(line)
            }
        }
    }

    fn token(&mut self) -> u64 {
        self.next_token += 1;
        0x5eed_0000_0000_0000 | self.next_token
    }

    async fn request(&mut self, session: u64, phase: Phase, param: &str) -> Result<u64, String> {
        let token = self.token();
        let line = wire::filter_request(self.version, now(), session, phase, token, param);
        self.send(&line).await?;
        Ok(token)
    }

    async fn report(&mut self, session: u64, event: &ReportEvent) -> Result<(), String> {
        let line = wire::report_line(self.version, now(), Subsystem::SmtpIn, session, event);
        self.send(&line).await
    }

    /// Reads a `filter-result` and checks it answers (session, token).
    async fn result(&mut self, session: u64, token: u64) -> Result<Response, String> {
        let line = self.read().await?;
        match wire::parse_filter_line(&line) {
            Ok(FilterLine::Result {
                session: s,
                token: t,
                response,
            }) => {
                if s != session || t != token {
                    return Err(format!(
                        "answered session {s:016x} token {t:016x}, asked {session:016x} {token:016x}"
                    ));
                }
                if let Response::Reject(m) | Response::Disconnect(m) = &response
                    && wire::reply_of(m).is_none()
                {
                    return Err(format!("{m:?} is not a 4xx/5xx reply"));
                }
                Ok(response)
            }
            Ok(other) => Err(format!("expected filter-result, got {}", other.to_line())),
            Err(e) => Err(format!("{e}: {line}")),
        }
    }
}

fn now() -> Time {
    Time::from_secs(1_700_000_000)
}

fn check(id: &str, title: &str, level: KitLevel, outcome: KitOutcome) -> KitCheck {
    KitCheck {
        id: id.to_owned(),
        title: title.to_owned(),
        level,
        outcome,
    }
}

fn outcome(r: Result<(), String>) -> KitOutcome {
    match r {
        Ok(()) => KitOutcome::Pass,
        Err(e) => KitOutcome::Fail(e),
    }
}

fn start(options: &KitOptions) -> Result<Child, String> {
    let mut command = if options.command.len() == 1 {
        let mut c = tokio::process::Command::new("/bin/sh");
        c.arg("-c").arg(format!("exec {}", options.command[0]));
        c
    } else {
        let mut c = tokio::process::Command::new(&options.command[0]);
        c.args(&options.command[1..]);
        c
    };
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {:?}: {e}", options.command))
}

/// Runs the kit against the filter `options` names.
pub async fn run(options: &KitOptions) -> KitReport {
    let mut report = KitReport {
        command: options.command.join(" "),
        version: options.version.to_string(),
        registered: Vec::new(),
        checks: Vec::new(),
        stderr: Vec::new(),
    };
    let mut child = match start(options) {
        Ok(c) => c,
        Err(e) => {
            report.checks.push(check(
                "start",
                "the filter starts",
                KitLevel::Must,
                KitOutcome::Fail(e),
            ));
            return report;
        }
    };
    let (Some(input), Some(output), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return report;
    };
    let errors = tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        let mut all = Vec::new();
        while let Ok(Some(l)) = lines.next_line().await {
            all.push(l);
        }
        all
    });
    let mut f = Filter {
        child,
        input,
        output: BufReader::new(output),
        version: options.version,
        timeout: options.timeout,
        next_token: 0,
        lines: Vec::new(),
    };
    let mut phases = BTreeSet::new();
    let mut events: Vec<EventName> = Vec::new();
    let mut all_events = false;
    // The handshake.
    let handshake = async {
        for line in wire::handshake_lines(&Handshake {
            smtpd_version: "7.8.0".into(),
            version: options.version,
            session_timeout_secs: 300,
            subsystems: vec![Subsystem::SmtpIn],
            admd: "mx.example".into(),
        }) {
            f.send(&line).await?;
        }
        loop {
            let line = f.read().await?;
            match wire::parse_filter_line(&line) {
                Ok(FilterLine::Register(Registration::Ready)) => return Ok(()),
                Ok(FilterLine::Register(Registration::Filter { phase })) => {
                    phases.insert(phase);
                }
                Ok(FilterLine::Register(Registration::Report { event, subsystem })) => {
                    if subsystem == Subsystem::SmtpIn {
                        match event {
                            None => all_events = true,
                            Some(e) => events.push(e),
                        }
                    }
                }
                Ok(other) => return Err(format!("`{}` before register|ready", other.to_line())),
                Err(e) => return Err(format!("{e}: {line}")),
            }
        }
    }
    .await;
    let ok = handshake.is_ok();
    report.checks.push(check(
        "handshake",
        "registers and ends with register|ready, every line valid",
        KitLevel::Must,
        outcome(handshake),
    ));
    report.registered = phases
        .iter()
        .map(|p| format!("filter {p}"))
        .chain(if all_events {
            vec!["report *".to_owned()]
        } else {
            events.iter().map(|e| format!("report {e}")).collect()
        })
        .collect();
    if ok {
        let wants = |e: EventName| all_events || events.contains(&e);
        run_checks(&mut f, &mut report, &phases, &wants, options.sessions).await;
    }
    // A filter that closed its output is on its way out: give it a moment to be reaped.
    let alive = tokio::time::timeout(Duration::from_millis(200), f.child.wait())
        .await
        .is_err();
    report.checks.push(check(
        "alive",
        "still running at the end",
        KitLevel::Must,
        if alive {
            KitOutcome::Pass
        } else {
            KitOutcome::Fail("the filter exited during the run".into())
        },
    ));
    let _ = f.child.kill().await;
    report.stderr = errors.await.unwrap_or_default();
    report
}

/// The report events of a session up to its transaction, those the filter registered.
fn session_start(session: u64, wants: &dyn Fn(EventName) -> bool) -> Vec<ReportEvent> {
    let msgid = (session & 0xffff_ffff) as u32;
    [
        ReportEvent::LinkConnect {
            rdns: "localhost".into(),
            fcrdns: Fcrdns::Pass,
            src: Endpoint::Inet("127.0.0.1:40000".parse().expect("address")),
            dest: Endpoint::Inet("127.0.0.1:25".parse().expect("address")),
        },
        ReportEvent::LinkGreeting {
            hostname: "mx.example".into(),
        },
        ReportEvent::LinkIdentify {
            method: IdentifyMethod::Ehlo,
            identity: "client.example".into(),
        },
        ReportEvent::TxBegin { msgid },
        ReportEvent::TxMail {
            msgid,
            result: TxResult::Ok,
            address: "alice@client.example".into(),
        },
        ReportEvent::TxRcpt {
            msgid,
            result: TxResult::Ok,
            address: "bob@mx.example".into(),
        },
    ]
    .into_iter()
    .filter(|e| wants(e.name()))
    .collect()
}

async fn run_checks(
    f: &mut Filter,
    report: &mut KitReport,
    phases: &BTreeSet<Phase>,
    wants: &dyn Fn(EventName) -> bool,
    sessions: u64,
) {
    let session = 0x0000_0000_c0ff_ee01;
    let mut started = Ok(());
    for e in session_start(session, wants) {
        if let Err(err) = f.report(session, &e).await {
            started = Err(err);
        }
    }
    report.checks.push(check(
        "reports",
        "takes the report events it registered without complaint",
        KitLevel::Must,
        outcome(started),
    ));
    for (phase, param) in PHASES {
        let id = format!("phase-{phase}");
        if !phases.contains(phase) {
            report.checks.push(check(
                &id,
                "answers in time, with its session and token",
                KitLevel::Must,
                KitOutcome::Skip("not registered".into()),
            ));
            continue;
        }
        if *phase == Phase::Commit && phases.contains(&Phase::DataLine) {
            // The commit comes after the message's lines: see the data-line checks.
            continue;
        }
        let r = async {
            let token = f.request(session, *phase, param).await?;
            f.result(session, token).await.map(|_| ())
        }
        .await;
        report.checks.push(check(
            &id,
            "answers in time, with its session and token",
            KitLevel::Must,
            outcome(r),
        ));
    }
    if phases.contains(&Phase::DataLine) {
        data_lines(f, report, session, phases).await;
    } else {
        report.checks.push(check(
            "data-lines",
            "returns the message's lines, ending with one `.`",
            KitLevel::Must,
            KitOutcome::Skip("data-line not registered".into()),
        ));
    }
    // A reset, then a new transaction: the filter keeps answering the right tokens.
    let reset = async {
        if wants(EventName::TxReset) {
            f.report(session, &ReportEvent::TxReset { msgid: 1 })
                .await?;
        }
        match phases
            .iter()
            .find(|p| **p != Phase::DataLine && **p != Phase::Commit)
        {
            Some(phase) => {
                let param = PHASES
                    .iter()
                    .find(|(p, _)| p == phase)
                    .map_or("", |(_, v)| v);
                let token = f.request(session, *phase, param).await?;
                f.result(session, token).await.map(|_| ())
            }
            None => Ok(()),
        }
    }
    .await;
    report.checks.push(check(
        "reset",
        "answers after a transaction is reset",
        KitLevel::Must,
        outcome(reset),
    ));
    concurrency(f, report, phases, wants, sessions).await;
}

async fn data_lines(
    f: &mut Filter,
    report: &mut KitReport,
    session: u64,
    phases: &BTreeSet<Phase>,
) {
    let long = format!("long {}", "x".repeat(993));
    let mut input: Vec<String> = MESSAGE.iter().map(|l| (*l).to_owned()).collect();
    input.push(long);
    let token = f.token();
    let exchange = async {
        for line in input.iter().map(String::as_str).chain(["."]) {
            let request =
                wire::filter_request(f.version, now(), session, Phase::DataLine, token, line);
            f.send(&request).await?;
        }
        let mut output = Vec::new();
        loop {
            let line = f.read().await?;
            match wire::parse_filter_line(&line) {
                Ok(FilterLine::DataLine {
                    session: s,
                    token: t,
                    line,
                }) => {
                    if s != session || t != token {
                        return Err(format!(
                            "a data-line for session {s:016x} token {t:016x}, sent {session:016x} {token:016x}"
                        ));
                    }
                    if line == "." {
                        return Ok(output);
                    }
                    output.push(line);
                }
                Ok(other) => {
                    return Err(format!("expected filter-dataline, got {}", other.to_line()));
                }
                Err(e) => return Err(format!("{e}: {line}")),
            }
        }
    }
    .await;
    match exchange {
        Err(e) => {
            report.checks.push(check(
                "data-lines",
                "returns the message's lines, ending with one `.`",
                KitLevel::Must,
                KitOutcome::Fail(e),
            ));
        }
        Ok(output) => {
            report.checks.push(check(
                "data-lines",
                "returns the message's lines, ending with one `.`",
                KitLevel::Must,
                KitOutcome::Pass,
            ));
            // Added lines before the message (a signature, a spam score) are allowed.
            let intact = match output.iter().position(|l| *l == input[0]) {
                Some(at) if output[at..] == input[..] => Ok(()),
                Some(at) => {
                    let diff = output[at..]
                        .iter()
                        .zip(&input)
                        .find(|(o, i)| o != i)
                        .map_or_else(
                            || {
                                format!(
                                    "{} lines returned, {} sent",
                                    output.len() - at,
                                    input.len()
                                )
                            },
                            |(o, i)| format!("sent {i:?}, got {o:?}"),
                        );
                    Err(diff)
                }
                None => Err(format!("the first line {:?} never came back", input[0])),
            };
            report.checks.push(check(
                "data-lines-intact",
                "returns dot-escaped lines, `|`, empty and long lines byte for byte",
                KitLevel::Should,
                outcome(intact),
            ));
        }
    }
    if phases.contains(&Phase::Commit) {
        let r = async {
            let token = f.request(session, Phase::Commit, "").await?;
            f.result(session, token).await.map(|_| ())
        }
        .await;
        report.checks.push(check(
            "phase-commit",
            "answers in time, with its session and token",
            KitLevel::Must,
            outcome(r),
        ));
    }
}

async fn concurrency(
    f: &mut Filter,
    report: &mut KitReport,
    phases: &BTreeSet<Phase>,
    wants: &dyn Fn(EventName) -> bool,
    sessions: u64,
) {
    let Some((phase, param)) = PHASES
        .iter()
        .find(|(p, _)| phases.contains(p) && *p != Phase::Commit)
    else {
        report.checks.push(check(
            "sessions",
            "answers many sessions at once, each its own",
            KitLevel::Must,
            KitOutcome::Skip("no phase registered".into()),
        ));
        return;
    };
    let r = async {
        let mut asked = std::collections::HashMap::new();
        for n in 0..sessions {
            let session = 0x5e55_0000_0000_0000 | n;
            for e in session_start(session, wants) {
                f.report(session, &e).await?;
            }
            let token = f.request(session, *phase, param).await?;
            asked.insert(session, token);
        }
        // Answers may come in any order, each for its own session and token.
        while !asked.is_empty() {
            let line = f.read().await?;
            match wire::parse_filter_line(&line) {
                Ok(FilterLine::Result { session, token, .. }) => match asked.remove(&session) {
                    Some(t) if t == token => {}
                    Some(t) => {
                        return Err(format!(
                            "session {session:016x} answered with token {token:016x}, asked {t:016x}"
                        ));
                    }
                    None => return Err(format!("an answer for session {session:016x}, not asked")),
                },
                Ok(other) => return Err(format!("expected filter-result, got {}", other.to_line())),
                Err(e) => return Err(format!("{e}: {line}")),
            }
        }
        Ok(())
    }
    .await;
    report.checks.push(check(
        "sessions",
        "answers many sessions at once, each its own",
        KitLevel::Must,
        outcome(r),
    ));
}
