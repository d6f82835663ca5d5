//! Local delivery: the `maildir`, `mbox`, `lmtp` and `mda` methods of `action`, and the
//! `/path` (file) and `|command` (pipe) targets of aliases and `.forward` files.
//!
//! The queue calls [`deliver`] once per recipient, or once per batch of recipients of one
//! message that go the same way (same method, same expanded path, command or destination), and
//! gets one [`Outcome`] per recipient: delivered, or a temporary or permanent failure with a
//! reason an operator can act on (see [`error`] for which failures are which). Paths and commands
//! arrive already expanded from format specifiers.
//!
//! # What each method does
//!
//! - [`Method::Maildir`]: `tmp/` → sync → `new/` → sync the directory (see [`maildir`]).
//! - [`Method::Mbox`] and [`Method::File`]: append an mboxrd entry under dot, `flock` and
//!   `fcntl` locks, sync, cut back on failure (see [`mbox`] and [`lock`]).
//! - [`Method::Lmtp`]: one LMTP transaction for all the recipients, one reply each, driving
//!   [`petrel_core::session::client::ClientSession`] (see [`lmtp`]).
//! - [`Method::Mda`] and [`Method::Pipe`]: `/bin/sh -c COMMAND` with the message on standard
//!   input and OpenSMTPD's environment (see [`command`]).
//!
//! Every method but LMTP hands over the message with LF line endings and with `Return-Path:`
//! and `Delivered-To:` prepended, as OpenSMTPD does; the LMTP server is the final delivery agent
//! and adds its own (a batch of recipients shares one copy, so it could not carry a per-recipient
//! `Delivered-To:` anyway). A message whose header already has `Delivered-To:` naming the
//! recipient has looped and fails permanently.
//!
//! # Whose rights
//!
//! The daemon may run as an ordinary user (a laptop, CI): everything is then done as that user,
//! whatever the recipient's uid. Running as root, a recipient with a uid other than 0 is never
//! written to as root, because a user who controls the directories on the way could make root
//! write anywhere (symbolic links, hard links): commands get the user's uid and gid on their
//! `Command`, and file deliveries run in the `petrel-deliver` helper started with the user's
//! uid and gid (see [`as_user`]). A recipient without a uid (a virtual user) is delivered as the
//! daemon itself: give virtual users the uid of a mail account (the `user` option of `action`)
//! when the daemon runs as root. Commands are never run as root: under a root daemon, a
//! recipient with uid 0 or without a uid fails permanently for `mda` and pipes (OpenSMTPD's
//! "MDA not allowed to deliver to root").

pub mod as_user;
pub mod command;
mod dispatch;
pub mod error;
pub mod helper;
pub mod lmtp;
pub mod local;
pub mod lock;
pub mod maildir;
pub mod mbox;
pub mod message;

use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::Duration;

use petrel_core::session::client::ClientTimeouts;

pub use dispatch::{deliver, deliver_maildir_batch};
pub use error::DeliveryError;
pub use helper::helper_main;
pub use lmtp::{BadLmtpDest, LmtpDest};

/// The account a recipient's mail is delivered to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalUser {
    /// The user name (`USER`, `LOGNAME`; the LMTP recipient without `rcpt-to`).
    pub name: String,
    /// Its uid; `None` for a virtual user without a system account (delivered as the daemon).
    pub uid: Option<u32>,
    /// Its primary gid; needed with `uid` when the daemon runs as root.
    pub gid: Option<u32>,
    /// Its home directory (`HOME`, the working directory of commands).
    pub home: PathBuf,
}

/// One recipient of a delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipient {
    /// Where the message goes now, `user@domain` (OpenSMTPD's `dest`): `RECIPIENT`, and the LMTP
    /// recipient with `rcpt-to`.
    pub address: String,
    /// The recipient as the client gave it, before alias or virtual expansion (OpenSMTPD's
    /// `rcpt`): `Delivered-To:`, `ORIGINAL_RECIPIENT`, `LOCAL`, `DOMAIN`. `None`: `address`.
    pub original: Option<String>,
    /// The sub-address (`bob+lists@…` gives `lists`): `EXTENSION`, and the maildir folder
    /// `.lists` when it exists.
    pub extension: Option<String>,
    /// The account.
    pub user: LocalUser,
    /// A name for this delivery that stays the same each time it is attempted (the queue
    /// derives it from the envelope). A maildir delivery names its file after it, so that a
    /// delivery repeated after a crash — the copy was written but the queue had not yet
    /// recorded it — finds its first copy instead of adding a second. `None`: a fresh unique
    /// name each time. Letters, digits, `.` and `-` only.
    pub unique: Option<String>,
}

impl Recipient {
    /// A recipient with no expansion history and no sub-address.
    pub fn new(address: impl Into<String>, user: LocalUser) -> Recipient {
        Recipient {
            address: address.into(),
            original: None,
            extension: None,
            user,
            unique: None,
        }
    }

    /// The address as originally given.
    #[must_use]
    pub fn original(&self) -> &str {
        self.original.as_deref().unwrap_or(&self.address)
    }
}

/// How to deliver (an `action`'s local method, or an alias target), with its paths and
/// commands already expanded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Method {
    /// `maildir [PATH] [junk]`.
    Maildir {
        /// The maildir.
        path: PathBuf,
        /// File messages marked `X-Spam: yes` into `.Junk`.
        junk: bool,
    },
    /// `mbox`: the user's mailbox, `/var/mail/USER` as the caller expands it.
    Mbox {
        /// The mailbox file.
        path: PathBuf,
    },
    /// `lmtp DEST [rcpt-to]`.
    Lmtp {
        /// The server.
        dest: LmtpDest,
        /// Send the recipient's address; otherwise the local user name.
        rcpt_to: bool,
    },
    /// `mda "COMMAND"`.
    Mda {
        /// The command, for `/bin/sh -c`.
        command: String,
    },
    /// A `/path` target of an alias or `.forward`: appended to like an mbox.
    File {
        /// The file.
        path: PathBuf,
    },
    /// A `|command` target of an alias or `.forward`: run like `mda`.
    Pipe {
        /// The command, for `/bin/sh -c`.
        command: String,
    },
}

impl Method {
    /// The method's name, for logs.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Method::Maildir { .. } => "maildir",
            Method::Mbox { .. } => "mbox",
            Method::Lmtp { .. } => "lmtp",
            Method::Mda { .. } => "mda",
            Method::File { .. } => "file",
            Method::Pipe { .. } => "pipe",
        }
    }
}

/// Settings shared by all deliveries.
#[derive(Clone, Debug)]
pub struct Options {
    /// The `petrel-deliver` helper used to write files as another user; `None`: the one next to
    /// the running executable.
    pub helper: Option<PathBuf>,
    /// The host name in maildir file names and in LHLO; `None`: the system's.
    pub hostname: Option<String>,
    /// How long to wait for a mailbox lock before a temporary failure.
    pub lock_timeout: Duration,
    /// How long a command (or the helper) may run before it is killed (OpenSMTPD: 5 minutes).
    pub command_timeout: Duration,
    /// How much of a command's output is kept to explain a failure.
    pub output_limit: usize,
    /// How long to wait for an LMTP connection.
    pub lmtp_connect_timeout: Duration,
    /// How long to wait for each LMTP reply.
    pub lmtp_timeouts: ClientTimeouts,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            helper: None,
            hostname: None,
            lock_timeout: Duration::from_secs(30),
            command_timeout: Duration::from_secs(300),
            output_limit: 4096,
            lmtp_connect_timeout: Duration::from_secs(30),
            lmtp_timeouts: ClientTimeouts::default(),
        }
    }
}

impl Options {
    fn hostname(&self) -> String {
        match &self.hostname {
            Some(h) => maildir::escape_hostname(h),
            None => maildir::hostname().to_owned(),
        }
    }
}

static DEFAULT_OPTIONS: LazyLock<Options> = LazyLock::new(Options::default);

/// One message to deliver to some recipients by one method.
#[derive(Clone, Copy, Debug)]
pub struct DeliveryRequest<'a> {
    /// The envelope sender, without brackets; empty for `<>`.
    pub sender: &'a str,
    /// The message as queued: headers and body, CRLF line endings.
    pub message: &'a [u8],
    /// The recipients; the outcomes come back in this order.
    pub recipients: &'a [Recipient],
    /// The method, expanded for these recipients.
    pub method: &'a Method,
    /// Timeouts and the helper's location.
    pub options: &'a Options,
}

impl<'a> DeliveryRequest<'a> {
    /// A request with the default [`Options`].
    #[must_use]
    pub fn new(
        sender: &'a str,
        message: &'a [u8],
        recipients: &'a [Recipient],
        method: &'a Method,
    ) -> Self {
        DeliveryRequest {
            sender,
            message,
            recipients,
            method,
            options: &DEFAULT_OPTIONS,
        }
    }
}

/// What became of one recipient.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The message is safely in the mailbox, or accepted by the command or LMTP server.
    Delivered,
    /// Not delivered; try again later. The reason is for logs and delay notices.
    Temporary(String),
    /// Not delivered and never will be: bounce. The reason goes into the bounce.
    Permanent(String),
}

impl Outcome {
    /// True for [`Outcome::Delivered`].
    #[must_use]
    pub fn is_delivered(&self) -> bool {
        matches!(self, Outcome::Delivered)
    }

    /// The reason of a failure.
    #[must_use]
    pub fn reason(&self) -> Option<&str> {
        match self {
            Outcome::Delivered => None,
            Outcome::Temporary(r) | Outcome::Permanent(r) => Some(r),
        }
    }
}

impl From<Result<(), DeliveryError>> for Outcome {
    fn from(result: Result<(), DeliveryError>) -> Outcome {
        match result {
            Ok(()) => Outcome::Delivered,
            Err(e) if e.is_temporary() => Outcome::Temporary(e.to_string()),
            Err(e) => Outcome::Permanent(e.to_string()),
        }
    }
}

/// One copy of one message for one recipient in a [`deliver_maildir_batch`].
#[derive(Clone, Copy, Debug)]
pub struct MaildirJob<'a> {
    /// The envelope sender, empty for `<>`.
    pub sender: &'a str,
    /// The message as queued (CRLF).
    pub message: &'a [u8],
    /// The recipient.
    pub recipient: &'a Recipient,
    /// Its maildir, expanded.
    pub path: &'a Path,
    /// The `junk` option.
    pub junk: bool,
}
