//! The hosts around the Petrel hosts, written independently of Petrel's own SMTP code so that
//! they judge it rather than share its mistakes: remote MX servers with scripted behaviour,
//! and clients that submit messages.

use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use turmoil::net::{TcpListener, TcpStream};

use crate::clock::sim_elapsed;
use crate::record::{RcptSeen, Received, Recorder, Submission};
use crate::rng::Rng;

/// How a remote MX host behaves.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub enum Behaviour {
    /// Accepts everything.
    Accept,
    /// Answers `451` to each recipient's first `times` tries, then accepts it.
    TempFail {
        /// Refused tries per recipient.
        times: u32,
    },
    /// Answers `451` for ever.
    AlwaysTempFail,
    /// Greylisting: `450` to a (client address, sender, recipient) triplet until `delay` has
    /// passed since its first try.
    Greylist {
        /// How long a new triplet waits.
        delay: Duration,
    },
    /// Answers `550` to every recipient.
    Reject,
    /// Waits before every reply.
    Slow {
        /// The wait.
        delay: Duration,
    },
    /// Closes the connection in the middle of DATA on the first `times` transactions; with
    /// `after_dot`, after the final dot instead, with the message stored but not answered (the
    /// at-least-once window).
    DropMidData {
        /// Dropped transactions.
        times: u32,
        /// Drop after the message is complete.
        after_dot: bool,
    },
    /// Accepts connections and never says a word.
    Blackhole,
    /// Greets every connection with `421` (service not available) and closes it.
    Unavailable,
}

/// Recipients whose local part starts with this are refused after their content (554, or
/// 451 on a host that never accepts), so that what was sent to them can be examined.
pub const REFUSE_CONTENT_PREFIX: &str = "nb";

/// How long a remote MX host waits for a command before it hangs up.
const SINK_IDLE: Duration = Duration::from_secs(600);

struct SinkState {
    /// Tries per recipient (TempFail).
    tries: BTreeMap<String, u32>,
    /// First try per greylisting triplet.
    greylist: BTreeMap<(IpAddr, String, String), Duration>,
    /// Transactions begun (DropMidData).
    transactions: u32,
}

/// Runs a remote MX host named `name` on port 25 until the simulation ends.
///
/// # Errors
/// It cannot listen.
pub async fn sink(
    name: String,
    behaviour: Behaviour,
    rec: Recorder,
) -> Result<(), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind("0.0.0.0:25").await?;
    let state = Arc::new(Mutex::new(SinkState {
        tries: BTreeMap::new(),
        greylist: BTreeMap::new(),
        transactions: 0,
    }));
    loop {
        let (stream, peer) = listener.accept().await?;
        let name = name.clone();
        let behaviour = behaviour.clone();
        let rec = rec.clone();
        let state = state.clone();
        tokio::spawn(async move {
            let mut session = SinkSession {
                name,
                behaviour,
                rec,
                state,
                peer,
            };
            let _ = session.serve(stream).await;
        });
    }
}

struct SinkSession {
    name: String,
    behaviour: Behaviour,
    rec: Recorder,
    state: Arc<Mutex<SinkState>>,
    peer: SocketAddr,
}

fn angle(arg: &str) -> String {
    let start = arg.find('<').map_or(0, |i| i + 1);
    let end = arg[start..].find('>').map_or(arg.len(), |i| start + i);
    arg[start..end].to_owned()
}

impl SinkSession {
    async fn reply<W: AsyncWriteExt + Unpin>(&self, w: &mut W, text: &str) -> io::Result<()> {
        if let Behaviour::Slow { delay } = self.behaviour {
            tokio::time::sleep(delay).await;
        }
        self.rec.trace(&self.name, || format!("S: {text}"));
        w.write_all(format!("{text}\r\n").as_bytes()).await?;
        w.flush().await
    }

    async fn serve(&mut self, stream: TcpStream) -> io::Result<()> {
        let peer = self.peer.ip();
        self.rec
            .trace(&self.name, || format!("connection from {}", self.peer));
        if self.behaviour == Behaviour::Blackhole {
            let mut stream = stream;
            let mut buf = [0u8; 512];
            // Read and say nothing until the client gives up.
            while let Ok(Ok(n)) = tokio::time::timeout(SINK_IDLE, stream.read(&mut buf)).await {
                if n == 0 {
                    break;
                }
            }
            return Ok(());
        }
        let (r, mut w) = stream.into_split();
        if self.behaviour == Behaviour::Unavailable {
            self.reply(
                &mut w,
                &format!("421 4.3.2 {} Service not available", self.name),
            )
            .await?;
            return Ok(());
        }
        let mut r = BufReader::new(r);
        self.reply(&mut w, &format!("220 {} ESMTP sim", self.name))
            .await?;
        let mut sender: Option<String> = None;
        let mut rcpts: Vec<String> = Vec::new();
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = match tokio::time::timeout(SINK_IDLE, r.read_until(b'\n', &mut line)).await {
                Ok(Ok(n)) => n,
                _ => return Ok(()),
            };
            if n == 0 {
                return Ok(());
            }
            let text = String::from_utf8_lossy(&line).trim_end().to_owned();
            self.rec.trace(&self.name, || format!("C: {text}"));
            let upper = text.to_ascii_uppercase();
            if upper.starts_with("EHLO") {
                self.reply(
                    &mut w,
                    &format!("250-{}\r\n250-8BITMIME\r\n250 SIZE 100000000", self.name),
                )
                .await?;
            } else if upper.starts_with("HELO") {
                self.reply(&mut w, &format!("250 {}", self.name)).await?;
            } else if upper.starts_with("MAIL FROM:") {
                sender = Some(angle(&text[10..]));
                rcpts.clear();
                self.reply(&mut w, "250 2.1.0 Ok").await?;
            } else if upper.starts_with("RCPT TO:") {
                let rcpt = angle(&text[8..]);
                let from = sender.clone().unwrap_or_default();
                let code = self.rcpt_code(peer, &from, &rcpt);
                self.rec.lock().rcpts.push(RcptSeen {
                    at: sim_elapsed(),
                    sink: self.name.clone(),
                    peer,
                    sender: from,
                    rcpt: rcpt.clone(),
                    code,
                });
                let text = match code {
                    250 => "250 2.1.5 Ok",
                    450 => "450 4.2.0 Greylisted, try again later",
                    451 => "451 4.3.0 Try again later",
                    _ => "550 5.1.1 No such user",
                };
                if code == 250 {
                    rcpts.push(rcpt);
                }
                self.reply(&mut w, text).await?;
            } else if upper == "DATA" {
                if sender.is_none() || rcpts.is_empty() {
                    self.reply(&mut w, "503 5.5.1 No valid recipients").await?;
                    continue;
                }
                self.reply(&mut w, "354 End data with <CR><LF>.<CR><LF>")
                    .await?;
                let (drop, after_dot) = self.drop_this_one();
                let Some(content) = self.read_data(&mut r, drop && !after_dot).await? else {
                    self.rec
                        .trace(&self.name, || "dropped the connection in DATA".into());
                    return Ok(());
                };
                let refused = rcpts.iter().any(|r| r.starts_with(REFUSE_CONTENT_PREFIX));
                let acked = !refused && !drop;
                self.rec.lock().received.push(Received {
                    at: sim_elapsed(),
                    sink: self.name.clone(),
                    peer,
                    sender: sender.take().unwrap_or_default(),
                    rcpts: std::mem::take(&mut rcpts),
                    content,
                    acked,
                    refused,
                });
                if drop {
                    self.rec
                        .trace(&self.name, || "stored, then dropped the connection".into());
                    return Ok(());
                }
                if refused && self.behaviour == Behaviour::AlwaysTempFail {
                    self.reply(&mut w, "451 4.6.0 Content deferred").await?;
                } else if refused {
                    self.reply(&mut w, "554 5.6.0 Content refused").await?;
                } else {
                    self.reply(&mut w, "250 2.0.0 Ok: queued").await?;
                }
            } else if upper == "RSET" {
                sender = None;
                rcpts.clear();
                self.reply(&mut w, "250 2.0.0 Ok").await?;
            } else if upper == "NOOP" {
                self.reply(&mut w, "250 2.0.0 Ok").await?;
            } else if upper == "QUIT" {
                self.reply(&mut w, "221 2.0.0 Bye").await?;
                return Ok(());
            } else {
                self.reply(&mut w, "502 5.5.2 Command not recognized")
                    .await?;
            }
        }
    }

    fn rcpt_code(&self, peer: IpAddr, sender: &str, rcpt: &str) -> u16 {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match &self.behaviour {
            Behaviour::TempFail { times } => {
                let tries = state.tries.entry(rcpt.to_owned()).or_insert(0);
                *tries += 1;
                if *tries <= *times { 451 } else { 250 }
            }
            Behaviour::AlwaysTempFail if !rcpt.starts_with(REFUSE_CONTENT_PREFIX) => 451,
            Behaviour::Greylist { delay } => {
                let now = sim_elapsed();
                let first = *state
                    .greylist
                    .entry((peer, sender.to_owned(), rcpt.to_owned()))
                    .or_insert(now);
                if now >= first + *delay { 250 } else { 450 }
            }
            Behaviour::Reject => 550,
            _ => 250,
        }
    }

    /// Whether to drop this transaction, and where.
    fn drop_this_one(&self) -> (bool, bool) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.transactions += 1;
        match self.behaviour {
            Behaviour::DropMidData { times, after_dot } if state.transactions <= times => {
                (true, after_dot)
            }
            _ => (false, false),
        }
    }

    /// Reads the content up to the final dot, unstuffed; `None` when the connection ended (or,
    /// with `drop_midway`, once some content has arrived).
    async fn read_data<R: AsyncBufReadExt + Unpin>(
        &self,
        r: &mut R,
        drop_midway: bool,
    ) -> io::Result<Option<Vec<u8>>> {
        let mut content = Vec::new();
        let mut line = Vec::new();
        let mut lines = 0;
        loop {
            line.clear();
            let n = match tokio::time::timeout(SINK_IDLE, r.read_until(b'\n', &mut line)).await {
                Ok(Ok(n)) => n,
                _ => return Ok(None),
            };
            if n == 0 || !line.ends_with(b"\r\n") {
                return Ok(None);
            }
            if line == b".\r\n" {
                return Ok(Some(content));
            }
            lines += 1;
            if drop_midway && lines >= 2 {
                return Ok(None);
            }
            let body = if line.first() == Some(&b'.') {
                &line[1..]
            } else {
                &line[..]
            };
            content.extend_from_slice(body);
        }
    }
}

/// One message a client is to submit.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Outgoing {
    /// The simulator's id.
    pub id: u64,
    /// When to start (simulation time).
    pub at: Duration,
    /// MAIL FROM (empty: null sender).
    pub sender: String,
    /// RCPT TO.
    pub rcpts: Vec<String>,
    /// The content (CRLF lines, starting with the `X-Sim-Id` header).
    pub content: Vec<u8>,
}

/// How long a client waits for a reply.
const CLIENT_REPLY_TIMEOUT: Duration = Duration::from_secs(600);
/// How many times a client tries a message before giving up.
pub const CLIENT_TRIES: u32 = 5;

/// Reads one (possibly multi-line) reply; its code and text.
async fn read_reply<R: AsyncBufReadExt + Unpin>(r: &mut R) -> io::Result<(u16, String)> {
    let mut all = String::new();
    loop {
        let mut line = Vec::new();
        let n = tokio::time::timeout(CLIENT_REPLY_TIMEOUT, r.read_until(b'\n', &mut line))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "reply timed out"))??;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed"));
        }
        let text = String::from_utf8_lossy(&line).trim_end().to_owned();
        let code: u16 = text.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
        let last = text.as_bytes().get(3) != Some(&b'-');
        all.push_str(&text);
        if last {
            return Ok((code, all));
        }
        all.push('\n');
    }
}

/// Dot-stuffs content for DATA.
fn stuff(content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 16);
    let mut at_line_start = true;
    for &b in content {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n';
    }
    out
}

/// What one try of a submission came to.
enum Outcome {
    Accepted(String),
    /// Refused or failed before the final dot: nothing was accepted.
    Failed,
    /// Lost after the final dot: maybe accepted.
    Ambiguous,
    /// Refused for good.
    Permanent,
}

/// A client host: submits `messages` to `petrel` (port 25) in order, each when its time has
/// come, trying again after failures; writes the content in pieces of random sizes when
/// `chunked`.
pub async fn client(
    name: String,
    petrel: (String, IpAddr),
    messages: Vec<Outgoing>,
    chunked: bool,
    tries: u32,
    seed: u64,
    rec: Recorder,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut rng = Rng::new(seed);
    for m in messages {
        let now = sim_elapsed();
        if m.at > now {
            tokio::time::sleep(m.at - now).await;
        }
        rec.lock().submissions.insert(
            m.id,
            Submission {
                id: m.id,
                client: name.clone(),
                petrel: petrel.0.clone(),
                sender: m.sender.clone(),
                content: m.content.clone(),
                ..Submission::default()
            },
        );
        for _ in 0..tries {
            let outcome = submit(&name, petrel.1, &m, chunked, &mut rng, &rec).await;
            {
                let mut log = rec.lock();
                let s = log.submissions.get_mut(&m.id).expect("recorded above");
                match outcome {
                    Outcome::Accepted(queue_id) => {
                        s.acked_at = Some(sim_elapsed());
                        s.queue_id = Some(queue_id);
                        break;
                    }
                    Outcome::Permanent => break,
                    Outcome::Ambiguous => s.ambiguous += 1,
                    Outcome::Failed => {}
                }
            }
            tokio::time::sleep(Duration::from_secs(60 + rng.below(240))).await;
        }
    }
    rec.lock().clients_done += 1;
    Ok(())
}

async fn submit(
    name: &str,
    ip: IpAddr,
    m: &Outgoing,
    chunked: bool,
    rng: &mut Rng,
    rec: &Recorder,
) -> Outcome {
    let Ok(Ok(stream)) =
        tokio::time::timeout(Duration::from_secs(30), TcpStream::connect((ip, 25))).await
    else {
        rec.trace(name, || "cannot connect".into());
        return Outcome::Failed;
    };
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    let mut after_dot = false;
    let result: io::Result<Outcome> = async {
        let (code, _) = read_reply(&mut r).await?;
        if code != 220 {
            return Ok(Outcome::Failed);
        }
        let command = async |w: &mut turmoil::net::tcp::OwnedWriteHalf,
                             r: &mut BufReader<turmoil::net::tcp::OwnedReadHalf>,
                             line: String|
               -> io::Result<(u16, String)> {
            rec.trace(name, || format!("C: {line}"));
            w.write_all(format!("{line}\r\n").as_bytes()).await?;
            let (code, text) = read_reply(r).await?;
            rec.trace(name, || format!("S: {text}"));
            Ok((code, text))
        };
        let (code, _) = command(&mut w, &mut r, format!("EHLO {name}")).await?;
        if code != 250 {
            return Ok(Outcome::Failed);
        }
        let (code, _) = command(&mut w, &mut r, format!("MAIL FROM:<{}>", m.sender)).await?;
        if code != 250 {
            return Ok(if code >= 500 {
                Outcome::Permanent
            } else {
                Outcome::Failed
            });
        }
        let mut accepted = Vec::new();
        let mut deferred = false;
        for rcpt in &m.rcpts {
            let (code, _) = command(&mut w, &mut r, format!("RCPT TO:<{rcpt}>")).await?;
            if code == 250 {
                accepted.push(rcpt.clone());
            }
            deferred |= (400..500).contains(&code);
        }
        if accepted.is_empty() {
            let _ = command(&mut w, &mut r, "QUIT".into()).await;
            // Deferred (greylisted, say): try again later; refused: give up.
            return Ok(if deferred {
                Outcome::Failed
            } else {
                Outcome::Permanent
            });
        }
        rec.lock()
            .submissions
            .get_mut(&m.id)
            .expect("recorded")
            .data_at = sim_elapsed();
        let (code, _) = command(&mut w, &mut r, "DATA".into()).await?;
        if code != 354 {
            return Ok(Outcome::Failed);
        }
        let mut wire = stuff(&m.content);
        wire.extend_from_slice(b".\r\n");
        rec.trace(name, || format!("C: <{} bytes of content>", wire.len()));
        if chunked {
            let mut rest = &wire[..];
            while !rest.is_empty() {
                let n = (1 + rng.below(64) as usize).min(rest.len());
                w.write_all(&rest[..n]).await?;
                w.flush().await?;
                rest = &rest[n..];
                // A pause makes each piece its own read on the other side.
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        } else {
            w.write_all(&wire).await?;
        }
        after_dot = true;
        let (code, text) = read_reply(&mut r).await?;
        rec.trace(name, || format!("S: {text}"));
        rec.lock()
            .submissions
            .get_mut(&m.id)
            .expect("recorded")
            .rcpts
            .clone_from(&accepted);
        let _ = command(&mut w, &mut r, "QUIT".into()).await;
        Ok(match code {
            250 => Outcome::Accepted(
                text.split_whitespace()
                    .nth(2)
                    .unwrap_or_default()
                    .to_owned(),
            ),
            c if c >= 500 => Outcome::Permanent,
            _ => Outcome::Failed,
        })
    }
    .await;
    match result {
        Ok(o) => o,
        Err(e) => {
            rec.trace(name, || format!("connection lost: {e}"));
            if after_dot {
                Outcome::Ambiguous
            } else {
                Outcome::Failed
            }
        }
    }
}
