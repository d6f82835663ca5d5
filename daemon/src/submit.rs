//! Local submission: the `sendmail` command line (and `petrelctl sendmail`), speaking SMTP to
//! the daemon's enqueue socket, or leaving the message in the offline queue when the daemon
//! is not running.
//!
//! What is understood of sendmail's options: `-t` (recipients from the `To:`, `Cc:` and `Bcc:`
//! headers, `Bcc:` removed), `-f ADDR` (the envelope sender), `-F NAME` (the full name in a
//! `From:` header added when there is none), `-i` / `-oi` (a line with a single dot does not
//! end the message), `-bm` (the default: read a message), `-bs` (an SMTP dialogue on standard
//! input and output), and recipients as arguments. Other `-o…` options and `-v` are accepted
//! and ignored, as Postfix's and OpenSMTPD's sendmail do.
//!
//! A message without `From:`, `Date:` or `Message-ID:` gets them, as OpenSMTPD's enqueue
//! adds them. Everything else is the daemon's: the same rules and filters as any SMTP client,
//! matched as `from socket` and `from local`.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// sendmail's exit codes (sysexits.h), which scripts and MUAs check.
pub mod exit {
    /// Done.
    pub const OK: u8 = 0;
    /// The command line is wrong.
    pub const USAGE: u8 = 64;
    /// The message is malformed (no recipients, a bad address).
    pub const DATAERR: u8 = 65;
    /// A recipient was refused for good.
    pub const NOUSER: u8 = 67;
    /// Something went wrong on our side.
    pub const SOFTWARE: u8 = 70;
    /// Refused for now, or the message could not be kept: try again later.
    pub const TEMPFAIL: u8 = 75;
}

/// What the command line asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// `-t`: recipients from the headers.
    pub from_headers: bool,
    /// `-f ADDR`.
    pub sender: Option<String>,
    /// `-F NAME`.
    pub full_name: Option<String>,
    /// `-i` / `-oi`: a lone dot does not end the message.
    pub ignore_dots: bool,
    /// `-bs`: SMTP on standard input and output.
    pub smtp: bool,
    /// Recipients given as arguments.
    pub recipients: Vec<String>,
}

/// A usage error, in words.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct UsageError(pub String);

impl Options {
    /// Parses sendmail's arguments (without the program name).
    ///
    /// # Errors
    /// An option that needs a value has none, or a mode other than `-bm`/`-bs` is asked for.
    pub fn parse(args: &[String]) -> Result<Options, UsageError> {
        let mut o = Options::default();
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            if arg == "--" {
                o.recipients.extend(it.by_ref().cloned());
                break;
            }
            let Some(flag) = arg.strip_prefix('-').filter(|f| !f.is_empty()) else {
                o.recipients.push(arg.clone());
                continue;
            };
            // A value may follow the letter directly (`-fuser@host`) or be the next argument.
            let mut value = |name: &str, rest: &str| -> Result<String, UsageError> {
                if rest.is_empty() {
                    it.next()
                        .cloned()
                        .ok_or_else(|| UsageError(format!("-{name} needs a value")))
                } else {
                    Ok(rest.to_owned())
                }
            };
            match flag.split_at(1) {
                ("t", "") => o.from_headers = true,
                ("i", "") => o.ignore_dots = true,
                ("f", rest) | ("r", rest) => o.sender = Some(value("f", rest)?),
                ("F", rest) => o.full_name = Some(value("F", rest)?),
                ("b", "m") => o.smtp = false,
                ("b", "s") => o.smtp = true,
                ("b", mode) => {
                    return Err(UsageError(format!(
                        "-b{mode} is not supported (only -bm and -bs)"
                    )));
                }
                ("o", "i") => o.ignore_dots = true,
                // -oem, -odb, -oQ… and -v: accepted, as other sendmails do.
                ("o", _) | ("v", _) | ("U", "") | ("n", "") => {}
                ("O" | "X" | "C" | "B" | "N" | "R" | "V" | "L" | "h" | "p" | "q", rest) => {
                    if rest.is_empty() {
                        it.next();
                    }
                }
                _ => return Err(UsageError(format!("unknown option -{flag}"))),
            }
        }
        Ok(o)
    }
}

/// The invoking user, from the kernel's user id and `/etc/passwd`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invoker {
    /// The login name (`uid<N>` when `/etc/passwd` does not know the id).
    pub login: String,
    /// The GECOS full name, if any.
    pub gecos: Option<String>,
}

impl Invoker {
    /// Who runs this process.
    #[must_use]
    pub fn current() -> Invoker {
        let uid = rustix::process::getuid().as_raw();
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        passwd
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() >= 5 && f[2].parse() == Ok(uid)).then(|| Invoker {
                    login: f[0].to_owned(),
                    gecos: Some(f[4].split(',').next().unwrap_or("").to_owned())
                        .filter(|g| !g.is_empty()),
                })
            })
            .next()
            .unwrap_or_else(|| Invoker {
                login: format!("uid{uid}"),
                gecos: None,
            })
    }
}

/// The machine's name, for addresses without a domain.
#[must_use]
pub fn host_name() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

/// A message ready to hand over: envelope and content (CRLF line ends, not dot-stuffed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prepared {
    /// The envelope sender.
    pub sender: String,
    /// The envelope recipients.
    pub recipients: Vec<String>,
    /// The message.
    pub content: Vec<u8>,
}

/// Reads the message from `input`: to its end, or to a line with a single dot unless
/// `ignore_dots`. Line ends become CRLF.
///
/// # Errors
/// Reading fails.
pub fn read_message(input: impl Read, ignore_dots: bool) -> io::Result<Vec<u8>> {
    let mut reader = BufReader::new(input);
    let mut out = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        let body = line
            .strip_suffix(b"\n")
            .map_or(&line[..], |l| l.strip_suffix(b"\r").unwrap_or(l));
        if !ignore_dots && body == b"." {
            break;
        }
        out.extend_from_slice(body);
        out.extend_from_slice(b"\r\n");
    }
    Ok(out)
}

/// Builds the envelope and completes the headers.
///
/// # Errors
/// No recipient at all.
pub fn prepare(
    options: &Options,
    content: Vec<u8>,
    invoker: &Invoker,
    host: &str,
    now: std::time::SystemTime,
) -> Result<Prepared, UsageError> {
    let qualify = |a: &str| {
        if a.contains('@') || a.is_empty() {
            a.to_owned()
        } else {
            format!("{a}@{host}")
        }
    };
    let sender = qualify(options.sender.as_deref().unwrap_or(invoker.login.as_str()));
    let (header_end, body_start) = split_headers(&content);
    let headers = String::from_utf8_lossy(&content[..header_end]).into_owned();
    let fields = unfold(&headers);
    let mut recipients: Vec<String> = options.recipients.iter().map(|r| qualify(r)).collect();
    if options.from_headers {
        for (name, value) in &fields {
            if ["to", "cc", "bcc"].contains(&name.to_ascii_lowercase().as_str()) {
                recipients.extend(addresses(value).iter().map(|a| qualify(a)));
            }
        }
    }
    if recipients.is_empty() {
        return Err(UsageError("no recipients".into()));
    }
    let has = |n: &str| fields.iter().any(|(name, _)| name.eq_ignore_ascii_case(n));
    let mut head = String::new();
    if !has("from") {
        let name = options.full_name.clone().or_else(|| invoker.gecos.clone());
        match name {
            Some(n) => head.push_str(&format!("From: {} <{sender}>\r\n", quote_phrase(&n))),
            None => head.push_str(&format!("From: <{sender}>\r\n")),
        }
    }
    if !has("date") {
        head.push_str(&format!("Date: {}\r\n", rfc5322_date(now)));
    }
    if !has("message-id") {
        head.push_str(&format!("Message-ID: <{}@{host}>\r\n", unique_id(now)));
    }
    let mut out = head.into_bytes();
    // Bcc: is for the envelope only.
    let kept: String = headers
        .split_inclusive("\r\n")
        .fold((String::new(), false), |(mut acc, mut in_bcc), line| {
            let continuation = line.starts_with([' ', '\t']);
            if !continuation {
                in_bcc = line
                    .split_once(':')
                    .is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case("bcc"));
            }
            if !(options.from_headers && in_bcc) {
                acc.push_str(line);
            }
            (acc, in_bcc)
        })
        .0;
    out.extend_from_slice(kept.as_bytes());
    out.extend_from_slice(&content[header_end..body_start]);
    out.extend_from_slice(&content[body_start..]);
    Ok(Prepared {
        sender,
        recipients,
        content: out,
    })
}

/// Where the headers end and the body starts (after the empty line); a message without an
/// empty line is all headers if its first line looks like one, else all body.
fn split_headers(content: &[u8]) -> (usize, usize) {
    if let Some(i) = content.windows(4).position(|w| w == b"\r\n\r\n") {
        return (i + 2, i + 2);
    }
    if content.starts_with(b"\r\n") {
        return (0, 0);
    }
    let first = content.split(|&b| b == b'\n').next().unwrap_or_default();
    let looks_like_header = first
        .iter()
        .position(|&b| b == b':')
        .is_some_and(|i| i > 0 && first[..i].iter().all(|b| b.is_ascii_graphic()));
    if looks_like_header {
        (content.len(), content.len())
    } else {
        (0, 0)
    }
}

/// Header fields as (name, unfolded value).
fn unfold(headers: &str) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in headers.split("\r\n").filter(|l| !l.is_empty()) {
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = fields.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
        } else if let Some((n, v)) = line.split_once(':') {
            fields.push((n.trim().to_owned(), v.trim().to_owned()));
        }
    }
    fields
}

/// The addresses of an address-list header value: `a@b, "Name, X" <c@d>, group: e@f;`.
fn addresses(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (mut depth, mut quoted, mut item) = (0u32, false, String::new());
    let mut flush = |item: &mut String| {
        let text = item.trim();
        let addr = match (text.rfind('<'), text.rfind('>')) {
            (Some(a), Some(b)) if a < b => text[a + 1..b].trim().to_owned(),
            _ => text
                .rsplit(':')
                .next()
                .unwrap_or("")
                .trim()
                .trim_end_matches(';')
                .to_owned(),
        };
        if !addr.is_empty() {
            out.push(addr);
        }
        item.clear();
    };
    for c in value.chars() {
        match c {
            '"' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth = depth.saturating_sub(1),
            ',' | ';' if !quoted && depth == 0 => {
                flush(&mut item);
                continue;
            }
            _ => {}
        }
        if depth == 0 && c != ')' {
            item.push(c);
        }
    }
    flush(&mut item);
    out
}

fn quote_phrase(name: &str) -> String {
    if name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || " !#$%&'*+-/=?^_`{|}~".contains(c))
    {
        name.to_owned()
    } else {
        format!("\"{}\"", name.replace(['\\', '"'], ""))
    }
}

fn unique_id(now: std::time::SystemTime) -> String {
    let t = now
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "{}.{:09}.{}.petrel",
        t.as_secs(),
        t.subsec_nanos(),
        std::process::id()
    )
}

/// `Sun, 22 Nov 2026 12:29:23 +0000`.
fn rfc5322_date(now: std::time::SystemTime) -> String {
    let secs = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    petrel_core::queue::date::rfc5322(petrel_core::Time::from_secs(secs))
}

/// How a submission ended.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The daemon cannot be reached (not running): the offline queue is next.
    #[error("the daemon is not running ({0})")]
    NotRunning(io::Error),
    /// The daemon refused for now.
    #[error("{0}")]
    Temporary(String),
    /// The daemon refused for good.
    #[error("{0}")]
    Permanent(String),
    /// The dialogue failed half-way.
    #[error("{0}")]
    Io(#[from] io::Error),
}

impl SubmitError {
    /// sendmail's exit code for it.
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            SubmitError::Permanent(_) => exit::NOUSER,
            _ => exit::TEMPFAIL,
        }
    }
}

/// The enqueue socket in a state folder.
#[must_use]
pub fn enqueue_socket(data_dir: &Path) -> PathBuf {
    data_dir.join(crate::service::ENQUEUE_SOCKET)
}

/// How long the daemon may take to answer one step.
const REPLY_TIMEOUT: Duration = Duration::from_secs(300);

/// Hands a message to the daemon over its enqueue socket. Recipients refused for good are
/// reported together; one refused for now fails the whole submission (nothing is sent).
///
/// # Errors
/// See [`SubmitError`].
pub fn submit(socket: &Path, message: &Prepared) -> Result<(), SubmitError> {
    let stream = UnixStream::connect(socket).map_err(SubmitError::NotRunning)?;
    stream.set_read_timeout(Some(REPLY_TIMEOUT))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    let mut step = |line: Option<&[u8]>| -> Result<(u16, String), SubmitError> {
        if let Some(line) = line {
            writer.write_all(line)?;
            writer.write_all(b"\r\n")?;
        }
        read_reply(&mut reader)
    };
    let check = |(code, text): (u16, String)| match code {
        200..=399 => Ok(()),
        400..=499 => Err(SubmitError::Temporary(text)),
        _ => Err(SubmitError::Permanent(text)),
    };
    check(step(None)?)?;
    check(step(Some(b"EHLO localhost"))?)?;
    let utf8 = message.sender.bytes().any(|b| b >= 0x80)
        || message
            .recipients
            .iter()
            .any(|r| r.bytes().any(|b| b >= 0x80));
    let mail = format!(
        "MAIL FROM:<{}> BODY=8BITMIME{}",
        message.sender,
        if utf8 { " SMTPUTF8" } else { "" }
    );
    check(step(Some(mail.as_bytes()))?)?;
    let mut refused = Vec::new();
    for r in &message.recipients {
        match check(step(Some(format!("RCPT TO:<{r}>").as_bytes()))?) {
            Ok(()) => {}
            Err(SubmitError::Permanent(text)) => refused.push(format!("<{r}>: {text}")),
            Err(e) => return Err(e),
        }
    }
    if refused.len() == message.recipients.len() {
        return Err(SubmitError::Permanent(refused.join("; ")));
    }
    check(step(Some(b"DATA"))?)?;
    let mut stuffed = Vec::with_capacity(message.content.len() + 64);
    for line in message.content.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b".") {
            stuffed.push(b'.');
        }
        stuffed.extend_from_slice(line);
    }
    if !stuffed.is_empty() && !stuffed.ends_with(b"\r\n") {
        stuffed.extend_from_slice(b"\r\n");
    }
    stuffed.extend_from_slice(b".");
    check(step(Some(&stuffed))?)?;
    let _ = step(Some(b"QUIT"));
    if refused.is_empty() {
        Ok(())
    } else {
        // Queued for the others: the refused ones are still an error to report.
        Err(SubmitError::Permanent(refused.join("; ")))
    }
}

/// One reply: its code and its text (lines joined by a space).
fn read_reply(reader: &mut impl BufRead) -> Result<(u16, String), SubmitError> {
    let mut text = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(SubmitError::Temporary(
                "the daemon closed the connection".into(),
            ));
        }
        let line = line.trim_end();
        let code: u16 = line
            .get(..3)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| SubmitError::Temporary(format!("not an SMTP reply: {line}")))?;
        text.push(line.get(4..).unwrap_or("").to_owned());
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok((code, format!("{code} {}", text.join(" "))));
        }
    }
}

/// `-bs`: the caller's SMTP dialogue, passed to the daemon and back as it is.
///
/// # Errors
/// The daemon cannot be reached, or copying fails.
pub fn relay_dialogue(
    socket: &Path,
    mut input: impl Read + Send + 'static,
    mut output: impl Write,
) -> Result<(), SubmitError> {
    let stream = UnixStream::connect(socket).map_err(SubmitError::NotRunning)?;
    let mut to_daemon = stream.try_clone()?;
    let upstream = std::thread::spawn(move || {
        let _ = io::copy(&mut input, &mut to_daemon);
        let _ = to_daemon.shutdown(std::net::Shutdown::Write);
    });
    let mut from_daemon = stream;
    let mut buf = [0u8; 8192];
    loop {
        let n = from_daemon.read(&mut buf)?;
        if n == 0 {
            break;
        }
        output.write_all(&buf[..n])?;
        output.flush()?;
    }
    // The daemon has hung up (QUIT); the copying thread ends with the input.
    drop(upstream);
    Ok(())
}

/// The whole `sendmail` command over the daemon whose state folder is `data_dir`: parses
/// `args`, reads the message from standard input, and hands it to the daemon, or to the
/// offline queue when the daemon is not running. Problems go to standard error; returns the
/// exit code.
#[must_use]
pub fn run(args: &[String], data_dir: &Path) -> u8 {
    let options = match Options::parse(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("sendmail: {e}");
            return exit::USAGE;
        }
    };
    let socket = enqueue_socket(data_dir);
    if options.smtp {
        return match relay_dialogue(&socket, io::stdin(), io::stdout()) {
            Ok(()) => exit::OK,
            Err(e) => {
                eprintln!("sendmail: {e}");
                exit::TEMPFAIL
            }
        };
    }
    let content = match read_message(io::stdin().lock(), options.ignore_dots) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sendmail: cannot read the message: {e}");
            return exit::TEMPFAIL;
        }
    };
    let now = std::time::SystemTime::now();
    let message = match prepare(&options, content, &Invoker::current(), &host_name(), now) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("sendmail: {e}");
            return exit::DATAERR;
        }
    };
    match submit(&socket, &message) {
        Ok(()) => exit::OK,
        Err(SubmitError::NotRunning(_)) => match queue_offline(data_dir, &message) {
            Ok(_) => exit::OK,
            Err(e) => {
                eprintln!(
                    "sendmail: the daemon is not running, and the offline queue in {} cannot \
                     take the message: {e}",
                    offline_dir(data_dir).display()
                );
                exit::TEMPFAIL
            }
        },
        Err(e) => {
            eprintln!("sendmail: {e}");
            e.exit_code()
        }
    }
}

/// The offline queue's folder in a state folder.
#[must_use]
pub fn offline_dir(data_dir: &Path) -> PathBuf {
    data_dir.join(OFFLINE_DIR)
}

/// The offline queue's folder name.
pub const OFFLINE_DIR: &str = "offline";

/// The first line of an offline file.
pub const OFFLINE_MAGIC: &str = "PETREL-OFFLINE 1";

/// An offline file: the magic line, the sender, each recipient, an empty line, the message.
#[must_use]
pub fn offline_bytes(message: &Prepared) -> Vec<u8> {
    let mut out = format!("{OFFLINE_MAGIC}\n{}\n", message.sender).into_bytes();
    for r in &message.recipients {
        out.extend_from_slice(r.as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
    out.extend_from_slice(&message.content);
    out
}

/// Reads an offline file back.
///
/// # Errors
/// Not an offline file, or one without recipients.
pub fn parse_offline(data: &[u8]) -> Result<Prepared, String> {
    let mut rest = data
        .strip_prefix(OFFLINE_MAGIC.as_bytes())
        .and_then(|r| r.strip_prefix(b"\n"))
        .ok_or("not an offline message")?;
    let mut line = || -> Result<String, String> {
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or("truncated envelope")?;
        let text = std::str::from_utf8(&rest[..end])
            .map_err(|_| "an envelope line is not UTF-8")?
            .to_owned();
        rest = &rest[end + 1..];
        Ok(text)
    };
    let sender = line()?;
    let mut recipients = Vec::new();
    loop {
        let r = line()?;
        if r.is_empty() {
            break;
        }
        recipients.push(r);
    }
    if recipients.is_empty() {
        return Err("no recipients".into());
    }
    Ok(Prepared {
        sender,
        recipients,
        content: rest.to_vec(),
    })
}

/// Leaves a message in the offline queue of `data_dir`, for the daemon to take at its next
/// start (or within a minute if it is running but its socket was not there). The file is
/// readable by the daemon whoever runs it (mode 0644, in a folder nobody else can list) and
/// complete before it gets its name: the daemon never sees half a message.
///
/// # Errors
/// The folder is missing and cannot be made, or the file cannot be written.
pub fn queue_offline(data_dir: &Path, message: &Prepared) -> io::Result<PathBuf> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = offline_dir(data_dir);
    if !dir.is_dir() {
        create_offline_dir(&dir)?;
    }
    let name = format!("{:016x}{:016x}", random_u64(), random_u64());
    let tmp = dir.join(format!(".{name}"));
    let path = dir.join(&name);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(&tmp)?;
    let written = file
        .write_all(&offline_bytes(message))
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(&tmp, &path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(path)
}

/// Makes the offline folder: anyone may add a file, nobody but its owner may list it, nobody
/// may remove another's file (mode 1733, like /tmp without the listing).
///
/// # Errors
/// It cannot be made.
pub fn create_offline_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o1733))
}

fn random_u64() -> u64 {
    let mut buf = [0u8; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut buf)
        .expect("the system random generator failed");
    u64::from_le_bytes(buf)
}

#[cfg(test)]
#[path = "submit_tests.rs"]
mod tests;
