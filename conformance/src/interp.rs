//! Runs one case's script over a [`Transport`].

use std::fmt::Write as _;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use petrel_core::smtp::Reply;

use crate::case::{Case, Expect, Feature, Step, Verdict};
use crate::transport::{Read, Transport};

/// What the cases need to know about the server and the test set-up.
#[derive(Clone, Debug)]
pub struct Options {
    /// A domain the server accepts mail for.
    pub domain: String,
    /// An address at that domain the server accepts (`{rcpt}`).
    pub rcpt: String,
    /// The sender used in MAIL FROM (`{from}`).
    pub from: String,
    /// The name given in EHLO and HELO (`{helo}`).
    pub helo: String,
    /// Credentials for AUTH cases (user, password).
    pub credentials: Option<(String, String)>,
    /// Run cases that wait minutes even over a real network.
    pub slow: bool,
    /// The server relays mail for this client (a loopback client of a server that relays
    /// for local senders, or an authorised network): the cases that need a recipient refused
    /// as relaying are skipped.
    pub relay_client: bool,
}

impl Options {
    /// Options for `domain`: recipient `conformance@domain`, sender
    /// `sender@conformance.example`, EHLO name `client.conformance.example`.
    #[must_use]
    pub fn for_domain(domain: &str) -> Options {
        Options {
            domain: domain.to_owned(),
            rcpt: format!("conformance@{domain}"),
            from: "sender@conformance.example".into(),
            helo: "client.conformance.example".into(),
            credentials: None,
            slow: false,
            relay_client: false,
        }
    }

    /// Replaces the placeholders in `bytes` (see [`crate::case`]).
    #[must_use]
    pub fn expand(&self, bytes: &[u8]) -> Vec<u8> {
        if !bytes.contains(&b'{') {
            return bytes.to_vec();
        }
        let (user, pass) = self
            .credentials
            .clone()
            .unwrap_or_else(|| ("nobody".into(), "nothing".into()));
        let plain = BASE64.encode(format!("\0{user}\0{pass}"));
        let upper = self.domain.to_ascii_uppercase();
        let user64 = BASE64.encode(&user);
        let pass64 = BASE64.encode(&pass);
        let table: [(&[u8], &[u8]); 9] = [
            (b"{domain}", self.domain.as_bytes()),
            (b"{DOMAIN}", upper.as_bytes()),
            (b"{rcpt}", self.rcpt.as_bytes()),
            (b"{from}", self.from.as_bytes()),
            (b"{helo}", self.helo.as_bytes()),
            (b"{plain}", plain.as_bytes()),
            (b"{user64}", user64.as_bytes()),
            (b"{pass64}", pass64.as_bytes()),
            (
                b"{local}",
                self.rcpt.split('@').next().unwrap_or("").as_bytes(),
            ),
        ];
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        'outer: while i < bytes.len() {
            if bytes[i] == b'{' {
                for (name, value) in &table {
                    if bytes[i..].starts_with(name) {
                        out.extend_from_slice(value);
                        i += name.len();
                        continue 'outer;
                    }
                }
            }
            out.push(bytes[i]);
            i += 1;
        }
        out
    }
}

/// How long to wait for things.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// For a reply the case expects.
    pub reply: Duration,
    /// For a server to prove silent.
    pub silence: Duration,
}

/// The state of a session while a case runs; checks read it.
#[derive(Debug)]
pub struct Ctx {
    /// The options of the run.
    pub opts: Options,
    /// The keywords of the last EHLO reply, one entry per line after the first, as sent.
    pub ext: Vec<String>,
    /// The last EHLO reply.
    pub ehlo_reply: Option<Reply>,
    /// The last reply read.
    pub last_reply: Option<Reply>,
    /// The raw bytes of the last reply read.
    pub last_raw: Vec<u8>,
    /// Every reply read so far in the session, with its raw bytes.
    pub replies: Vec<(Reply, Vec<u8>)>,
    /// The last command sent, for messages.
    pub last_sent: String,
    /// TLS is active.
    pub tls: bool,
    /// The exchange so far.
    pub transcript: String,
}

impl Ctx {
    fn new(opts: Options) -> Ctx {
        Ctx {
            opts,
            ext: Vec::new(),
            ehlo_reply: None,
            last_reply: None,
            last_raw: Vec::new(),
            replies: Vec::new(),
            last_sent: String::new(),
            tls: false,
            transcript: String::new(),
        }
    }

    /// True when the last EHLO reply lists `keyword` (case-insensitive).
    #[must_use]
    pub fn has_ext(&self, keyword: &str) -> bool {
        has_keyword(&self.ext, keyword)
    }

    /// The parameters of `keyword` in the last EHLO reply.
    #[must_use]
    pub fn ext_params(&self, keyword: &str) -> Option<String> {
        keyword_params(&self.ext, keyword)
    }

    /// The fixed SIZE limit advertised, if any.
    #[must_use]
    pub fn size_limit(&self) -> Option<u64> {
        size_limit(&self.ext)
    }

    fn record(&mut self, prefix: &str, bytes: &[u8]) {
        const MAX: usize = 64 * 1024;
        if self.transcript.len() > MAX {
            return;
        }
        if bytes.len() > 4096 {
            let _ = writeln!(
                self.transcript,
                "{prefix}{} … ({} octets in all)",
                escape(&bytes[..300], 300),
                bytes.len()
            );
            return;
        }
        for line in split_lines(bytes) {
            let _ = writeln!(self.transcript, "{prefix}{}", escape(line, 1000));
        }
    }
}

/// The EHLO keyword lines of a reply (every line after the first).
#[must_use]
pub fn ehlo_keywords(reply: &Reply) -> Vec<String> {
    reply.lines().skip(1).map(str::to_owned).collect()
}

/// True when `keyword` is among the keyword lines.
#[must_use]
pub fn has_keyword(ext: &[String], keyword: &str) -> bool {
    keyword_params(ext, keyword).is_some()
}

/// The parameters following `keyword` in the keyword lines.
#[must_use]
pub fn keyword_params(ext: &[String], keyword: &str) -> Option<String> {
    ext.iter().find_map(|line| {
        let mut words = line.splitn(2, [' ', '=']);
        let k = words.next()?;
        k.eq_ignore_ascii_case(keyword)
            .then(|| words.next().unwrap_or("").trim().to_owned())
    })
}

/// The fixed SIZE limit in the keyword lines, if any.
#[must_use]
pub fn size_limit(ext: &[String]) -> Option<u64> {
    keyword_params(ext, "SIZE")
        .and_then(|p| p.split_whitespace().next()?.parse().ok())
        .filter(|&n| n > 0)
}

/// Splits on CRLF, keeping bare CR and LF inside the pieces.
fn split_lines(bytes: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] == b'\r' && bytes[i + 1] == b'\n' {
            out.push(&bytes[start..i]);
            i += 2;
            start = i;
        } else {
            i += 1;
        }
    }
    if start < bytes.len() {
        out.push(&bytes[start..]);
    }
    out
}

/// Shows bytes readably: printable ASCII as is, CR, LF, tab and others escaped; at most `max`
/// bytes.
#[must_use]
pub fn escape(bytes: &[u8], max: usize) -> String {
    let mut s = String::new();
    for &b in bytes.iter().take(max) {
        match b {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            0x20..=0x7e => s.push(b as char),
            _ => {
                let _ = write!(s, "\\x{b:02x}");
            }
        }
    }
    if bytes.len() > max {
        s.push('…');
    }
    s
}

/// A reply as shown in messages: its first line, and how many more.
#[must_use]
pub fn show(reply: &Reply) -> String {
    let text = reply.to_string();
    let mut lines = text.lines();
    let first = lines.next().unwrap_or("");
    let more = lines.count();
    let first: String = first.chars().take(160).collect();
    if more > 0 {
        format!("{first} (+{more} lines)")
    } else {
        first
    }
}

/// What a line sent looks like in a message: a command's first line, or a size.
fn describe_sent(bytes: &[u8]) -> String {
    let first = bytes.split(|&b| b == b'\n').next().unwrap_or_default();
    let is_command = first.len() >= 4 && first[..4].iter().all(u8::is_ascii_alphabetic);
    if is_command {
        let line = first.strip_suffix(b"\r").unwrap_or(first);
        let text = escape(line, 120);
        if line.len() > 120 {
            format!("{text} ({} octets)", line.len())
        } else if bytes.len() > first.len() + 1 {
            format!("{text} …")
        } else {
            text
        }
    } else {
        format!("{} octets of content", bytes.len())
    }
}

/// Runs `case` over `transport`: reads the greeting, executes the steps, says QUIT. Returns
/// the verdict and the transcript.
pub async fn run_case<T: Transport>(
    case: &Case,
    transport: &mut T,
    opts: &Options,
    timing: Timing,
) -> (Verdict, String) {
    let mut ctx = Ctx::new(opts.clone());
    if case.requires.contains(&Feature::VirtualTime) && !transport.virtual_time() && !opts.slow {
        return (
            Verdict::skip("waits minutes: needs virtual time (or --slow)"),
            String::new(),
        );
    }
    let verdict = run_steps(case, transport, &mut ctx, timing).await;
    // Best effort: a polite end; the answer does not matter.
    let _ = transport.send(b"QUIT\r\n").await;
    (verdict, ctx.transcript)
}

async fn run_steps<T: Transport>(case: &Case, t: &mut T, ctx: &mut Ctx, timing: Timing) -> Verdict {
    match read(t, ctx, timing.reply).await {
        Read::Reply(r, _) if r.code == 220 => {}
        Read::Reply(r, _) => return Verdict::fail(format!("greeting was `{}`", show(&r))),
        other => return Verdict::fail(format!("no greeting: {}", describe_read(&other))),
    }
    for step in &case.steps {
        match step_once(step, t, ctx, timing).await {
            Flow::Continue => {}
            Flow::Stop(v) => return v,
        }
    }
    Verdict::Pass
}

enum Flow {
    Continue,
    Stop(Verdict),
}

fn describe_read(r: &Read) -> String {
    match r {
        Read::Reply(reply, _) => format!("`{}`", show(reply)),
        Read::Closed => "the server closed the connection".into(),
        Read::Timeout => "no reply in time".into(),
        Read::Malformed(m) => format!("a malformed reply ({m})"),
    }
}

async fn read<T: Transport>(t: &mut T, ctx: &mut Ctx, timeout: Duration) -> Read {
    let r = t.read_reply(timeout).await;
    match &r {
        Read::Reply(reply, raw) => {
            ctx.record("S: ", raw);
            ctx.last_reply = Some(reply.clone());
            ctx.last_raw.clone_from(raw);
            ctx.replies.push((reply.clone(), raw.clone()));
        }
        Read::Closed => ctx
            .transcript
            .push_str("-- connection closed by the server\n"),
        Read::Timeout => {
            let _ = writeln!(ctx.transcript, "-- no reply within {timeout:?}");
        }
        Read::Malformed(m) => {
            let _ = writeln!(ctx.transcript, "-- malformed reply: {m}");
        }
    }
    r
}

async fn send<T: Transport>(t: &mut T, ctx: &mut Ctx, bytes: &[u8]) {
    ctx.record("C: ", bytes);
    ctx.last_sent = describe_sent(bytes);
    if t.send(bytes).await.is_err() {
        ctx.transcript
            .push_str("-- write failed: the connection is gone\n");
    }
}

async fn expect<T: Transport>(t: &mut T, ctx: &mut Ctx, e: Expect, timing: Timing) -> Flow {
    let after = format!("after `{}`", ctx.last_sent);
    match read(t, ctx, timing.reply).await {
        Read::Reply(reply, _) if e.or_refused && reply.is_permanent() => {
            ctx.transcript
                .push_str("-- refused as a whole: acceptable for this case\n");
            Flow::Stop(Verdict::Pass)
        }
        Read::Reply(reply, _) => match e.accept.judge(&reply, ctx) {
            Verdict::Pass => Flow::Continue,
            Verdict::Fail(why) if why.is_empty() => Flow::Stop(Verdict::fail(format!(
                "{after}: expected {}, got `{}`",
                e.accept.describe(),
                show(&reply)
            ))),
            Verdict::Fail(why) => Flow::Stop(Verdict::fail(format!(
                "{after}: {why} (got `{}`)",
                show(&reply)
            ))),
            Verdict::Skip(why) => Flow::Stop(Verdict::Skip(why)),
        },
        Read::Closed if e.or_closed => Flow::Stop(Verdict::Pass),
        other => Flow::Stop(Verdict::fail(format!(
            "{after}: expected {}, got {}",
            e.accept.describe(),
            describe_read(&other)
        ))),
    }
}

async fn ehlo<T: Transport>(t: &mut T, ctx: &mut Ctx, timing: Timing) -> Flow {
    let line = ctx.opts.expand(b"EHLO {helo}\r\n");
    send(t, ctx, &line).await;
    match read(t, ctx, timing.reply).await {
        Read::Reply(reply, _) if reply.code == 250 => {
            ctx.ext = ehlo_keywords(&reply);
            ctx.ehlo_reply = Some(reply);
            Flow::Continue
        }
        other => Flow::Stop(Verdict::fail(format!(
            "after `EHLO`: expected 250, got {}",
            describe_read(&other)
        ))),
    }
}

async fn starttls<T: Transport>(t: &mut T, ctx: &mut Ctx) -> Flow {
    match t.start_tls().await {
        Ok(()) => {
            ctx.tls = true;
            ctx.ext.clear();
            ctx.transcript.push_str("-- TLS established\n");
            Flow::Continue
        }
        Err(e) => Flow::Stop(Verdict::fail(format!("TLS handshake failed: {e}"))),
    }
}

fn require(f: Feature, ctx: &Ctx) -> Flow {
    let ok = match f {
        Feature::Ext(k) => ctx.has_ext(k),
        Feature::NoExt(k) => !ctx.has_ext(k),
        Feature::StartTls => ctx.has_ext("STARTTLS"),
        Feature::Auth => ctx.has_ext("AUTH"),
        Feature::AuthMechanism(m) => ctx
            .ext_params("AUTH")
            .is_some_and(|p| p.split_whitespace().any(|x| x.eq_ignore_ascii_case(m))),
        Feature::Credentials => ctx.opts.credentials.is_some(),
        Feature::SizeLimit => ctx.size_limit().is_some(),
        Feature::VirtualTime => true,
        Feature::RelayRefused => !ctx.opts.relay_client,
    };
    if ok {
        Flow::Continue
    } else {
        Flow::Stop(Verdict::skip(format!("needs {f}")))
    }
}

async fn step_once<T: Transport>(step: &Step, t: &mut T, ctx: &mut Ctx, timing: Timing) -> Flow {
    match step {
        Step::Send(bytes) => {
            let bytes = ctx.opts.expand(bytes);
            send(t, ctx, &bytes).await;
        }
        Step::SendWith(generate) => match generate(ctx) {
            Ok(bytes) => send(t, ctx, &bytes).await,
            Err(v) => return Flow::Stop(v),
        },
        Step::Expect(e) => return expect(t, ctx, *e, timing).await,
        Step::Ehlo => return ehlo(t, ctx, timing).await,
        Step::EhloForAuth => {
            if let Flow::Stop(v) = ehlo(t, ctx, timing).await {
                return Flow::Stop(v);
            }
            if !ctx.has_ext("AUTH") && ctx.has_ext("STARTTLS") {
                send(t, ctx, b"STARTTLS\r\n").await;
                if let Flow::Stop(v) = expect(t, ctx, Expect::code(220), timing).await {
                    return Flow::Stop(v);
                }
                if let Flow::Stop(v) = starttls(t, ctx).await {
                    return Flow::Stop(v);
                }
                if let Flow::Stop(v) = ehlo(t, ctx, timing).await {
                    return Flow::Stop(v);
                }
            }
            return require(Feature::Auth, ctx);
        }
        Step::StartTls => return starttls(t, ctx).await,
        Step::Require(f) => return require(*f, ctx),
        Step::Collect(judge) => {
            let mut replies = Vec::new();
            let mut closed = false;
            let mut timeout = timing.reply;
            loop {
                match read(t, ctx, timeout).await {
                    Read::Reply(r, _) => replies.push(r),
                    Read::Closed => {
                        closed = true;
                        break;
                    }
                    Read::Timeout => break,
                    Read::Malformed(m) => {
                        return Flow::Stop(Verdict::fail(format!("malformed reply: {m}")));
                    }
                }
                timeout = timing.silence;
            }
            return match judge(&replies, closed, ctx) {
                Verdict::Pass if closed => Flow::Stop(Verdict::Pass),
                Verdict::Pass => Flow::Continue,
                other => Flow::Stop(other),
            };
        }
        Step::ExpectSilence(meaning) => match read(t, ctx, timing.silence).await {
            Read::Timeout => {}
            Read::Closed => return Flow::Stop(Verdict::Pass),
            Read::Reply(r, _) => {
                return Flow::Stop(Verdict::fail(match meaning {
                    Some(m) => format!("{m} (got `{}`)", show(&r)),
                    None => format!(
                        "after `{}`: expected no further reply, got `{}`",
                        ctx.last_sent,
                        show(&r)
                    ),
                }));
            }
            Read::Malformed(m) => {
                return Flow::Stop(Verdict::fail(format!(
                    "expected no further reply, got malformed output: {m}"
                )));
            }
        },
        Step::ExpectClosed => match read(t, ctx, timing.reply).await {
            Read::Closed => return Flow::Stop(Verdict::Pass),
            other => {
                return Flow::Stop(Verdict::fail(format!(
                    "after `{}`: expected the connection to close, got {}",
                    ctx.last_sent,
                    describe_read(&other)
                )));
            }
        },
        Step::Wait(d) => {
            let _ = writeln!(ctx.transcript, "-- {d:?} pass");
            t.wait(*d).await;
        }
        Step::Check(check) => match check(ctx) {
            Verdict::Pass => {}
            other => return Flow::Stop(other),
        },
        Step::Stored(check) => match t.last_stored() {
            None => {
                return Flow::Stop(Verdict::skip(
                    "the stored message cannot be observed through this runner",
                ));
            }
            Some(content) => match check(&content) {
                Verdict::Pass => {}
                other => return Flow::Stop(other),
            },
        },
    }
    Flow::Continue
}
