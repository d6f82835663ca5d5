//! Global settings: `smtp`, `queue`, `srs`, `bounce`, `mta`, `scheduler`, `admd`, `mda wrapper`.

use super::super::error::{Diag, ErrorKind, ItemKind};
use super::super::lexer::TokenKind;
use super::super::span::Span;
use super::super::types::{
    AddressFamily, MdaWrapper, MtaLimit, MtaLimits, QueueEncryption, SchedulerLimit,
};
use super::super::values::{parse_count, parse_duration, parse_size};
use super::cursor::{Cursor, PResult};
use super::seen::Seen;
use super::{Parser, invalid};

/// Reads a value with `parse`, reporting `what` when it does not parse.
fn value<T>(
    c: &mut Cursor<'_>,
    what: &'static str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> PResult<(T, Span)> {
    let (text, span) = c.string(&format!("a {what}"))?;
    let parsed = parse(&text).map_err(|reason| Diag::new(span, invalid(what, &text, reason)))?;
    Ok((parsed, span))
}

pub(super) fn duration(c: &mut Cursor<'_>) -> PResult<std::time::Duration> {
    value(c, "duration", parse_duration).map(|(d, _)| d)
}

fn count(c: &mut Cursor<'_>) -> PResult<u64> {
    value(c, "number", parse_count).map(|(n, _)| n)
}

impl Parser<'_> {
    /// `smtp max-message-size SIZE | limit max-mails|max-rcpt N … | sub-addr-delim C | ciphers S`.
    pub(super) fn smtp(&mut self, c: &mut Cursor<'_>) -> PResult<()> {
        let (setting, at) = c.keyword(
            "an smtp setting",
            &["max-message-size", "limit", "sub-addr-delim", "ciphers"],
        )?;
        match setting {
            "max-message-size" => {
                self.setting("smtp max-message-size", at)?;
                self.config.smtp.max_message_size = value(c, "size", parse_size)?.0;
            }
            "limit" => loop {
                let (key, at) = c.keyword("max-mails or max-rcpt", &["max-mails", "max-rcpt"])?;
                if key == "max-mails" {
                    self.setting("smtp limit max-mails", at)?;
                    self.config.smtp.max_mails = count(c)?;
                } else {
                    self.setting("smtp limit max-rcpt", at)?;
                    self.config.smtp.max_rcpt = count(c)?;
                }
                if c.at_end() {
                    break;
                }
            },
            "sub-addr-delim" => {
                self.setting("smtp sub-addr-delim", at)?;
                let (delim, span) = c.string("a delimiter character")?;
                let mut chars = delim.chars();
                match (chars.next(), chars.next()) {
                    (Some(ch), None) if !ch.is_whitespace() && !ch.is_control() && ch != '@' => {
                        self.config.smtp.sub_addr_delim = ch;
                    }
                    _ => {
                        let reason = "expected one printable character other than `@`";
                        return Err(Diag::new(
                            span,
                            invalid("sub-address delimiter", &delim, reason),
                        ));
                    }
                }
            }
            _ => {
                self.setting("smtp ciphers", at)?;
                self.config.smtp.ciphers = c.string("a cipher list")?.0;
            }
        }
        c.finish()
    }

    /// `queue ttl D | compression | encryption [KEY|-|stdin]`.
    pub(super) fn queue(&mut self, c: &mut Cursor<'_>) -> PResult<()> {
        let (setting, at) = c.keyword("a queue setting", &["ttl", "compression", "encryption"])?;
        match setting {
            "ttl" => {
                self.setting("queue ttl", at)?;
                self.config.queue.ttl = duration(c)?;
            }
            "compression" => {
                self.setting("queue compression", at)?;
                self.config.queue.compression = true;
            }
            _ => {
                self.setting("queue encryption", at)?;
                let encryption = if c.at_end() {
                    QueueEncryption::Prompt
                } else {
                    match c.string("a key, `-` or stdin")?.0 {
                        key if key == "-" || key.eq_ignore_ascii_case("stdin") => {
                            QueueEncryption::Stdin
                        }
                        key => QueueEncryption::Key(key),
                    }
                };
                self.config.queue.encryption = Some(encryption);
            }
        }
        c.finish()
    }

    /// `srs key [backup] SECRET | ttl D`.
    pub(super) fn srs(&mut self, c: &mut Cursor<'_>) -> PResult<()> {
        let (setting, at) = c.keyword("key or ttl", &["key", "ttl"])?;
        if setting == "key" {
            if c.eat("backup").is_some() {
                self.setting("srs key backup", at)?;
                self.config.srs.backup_key = Some(c.string("a secret")?.0);
            } else {
                self.setting("srs key", at)?;
                self.config.srs.key = Some(c.string("a secret")?.0);
            }
        } else {
            self.setting("srs ttl", at)?;
            let (ttl, span) = value(c, "duration", parse_duration)?;
            let days = ttl.as_secs() / 86_400;
            if days == 0 {
                let reason = "the SRS ttl is counted in whole days and must be at least 1d";
                return Err(Diag::new(
                    span,
                    invalid("duration", &format!("{}s", ttl.as_secs()), reason),
                ));
            }
            self.config.srs.ttl_days = u32::try_from(days).unwrap_or(u32::MAX);
        }
        c.finish()
    }

    /// `bounce warn-interval D[, D…]`, at most four delays.
    pub(super) fn bounce(&mut self, c: &mut Cursor<'_>) -> PResult<()> {
        let at = c.expect("warn-interval")?;
        self.setting("bounce warn-interval", at)?;
        let mut delays = vec![duration(c)?];
        while c.eat_kind(&TokenKind::Comma).is_some() {
            let at = c.here();
            delays.push(duration(c)?);
            if delays.len() > 4 {
                return Err(Diag::new(
                    at,
                    ErrorKind::TooMany {
                        what: "bounce warn intervals",
                        max: 4,
                    },
                ));
            }
        }
        self.config.bounce.warn_intervals = delays;
        c.finish()
    }

    /// `mta max-deferred N | limit [for domain D] (inet4|inet6|KEY N)…`.
    pub(super) fn mta(&mut self, c: &mut Cursor<'_>, span: Span) -> PResult<()> {
        let (setting, at) = c.keyword("max-deferred or limit", &["max-deferred", "limit"])?;
        if setting == "max-deferred" {
            self.setting("mta max-deferred", at)?;
            self.config.mta.max_deferred = count(c)?;
            return c.finish();
        }
        let domain = match c.eat("for") {
            Some(_) => {
                c.expect("domain")?;
                Some(c.string("a domain")?.0)
            }
            None => None,
        };
        let keys: Vec<&'static str> = MtaLimit::ALL.iter().map(|k| k.as_str()).collect();
        let mut candidates = vec!["inet4", "inet6"];
        candidates.extend(&keys);
        let mut limits = MtaLimits {
            domain,
            family: None,
            values: Vec::new(),
            span,
        };
        let mut seen = Seen::default();
        loop {
            let (key, at) = c.keyword("an mta limit", &candidates)?;
            match key {
                "inet4" | "inet6" => {
                    seen.group("address family", key, at)?;
                    limits.family = Some(if key == "inet4" {
                        AddressFamily::Inet4
                    } else {
                        AddressFamily::Inet6
                    });
                }
                _ => {
                    seen.once(key, at)?;
                    let limit = MtaLimit::from_keyword(key).expect("candidates are mta limit keys");
                    limits.values.push((limit, count(c)?));
                }
            }
            if c.at_end() {
                break;
            }
        }
        self.config.mta.limits.push(limits);
        Ok(())
    }

    /// `scheduler limit KEY N …`.
    pub(super) fn scheduler(&mut self, c: &mut Cursor<'_>) -> PResult<()> {
        c.expect("limit")?;
        let keys: Vec<&'static str> = SchedulerLimit::ALL.iter().map(|k| k.as_str()).collect();
        loop {
            let (key, at) = c.keyword("a scheduler limit", &keys)?;
            let limit =
                SchedulerLimit::from_keyword(key).expect("candidates are scheduler limit keys");
            self.setting(scheduler_setting(limit), at)?;
            let n = count(c)?;
            self.config.scheduler.values.push((limit, n));
            if c.at_end() {
                return Ok(());
            }
        }
    }

    /// `admd NAME`.
    pub(super) fn admd(&mut self, c: &mut Cursor<'_>) -> PResult<()> {
        let at = c.here();
        let (name, span) = c.string("an authserv-id")?;
        if name.is_empty() || name.chars().any(|ch| ch.is_control()) {
            return Err(Diag::new(
                span,
                invalid("admd", &name, "expected printable text"),
            ));
        }
        self.setting("admd", at)?;
        self.config.admd = Some(name);
        c.finish()
    }

    /// `mda wrapper NAME "COMMAND"`.
    pub(super) fn mda(&mut self, c: &mut Cursor<'_>, span: Span) -> PResult<()> {
        c.expect("wrapper")?;
        let (name, name_span) = c.name("a wrapper name")?;
        let fresh = self.declare(ItemKind::MdaWrapper, &name, name_span);
        let (command, _) = c.string("a command")?;
        c.finish()?;
        if fresh {
            self.config.mda_wrappers.push(MdaWrapper {
                name,
                command,
                span,
            });
        }
        Ok(())
    }
}

/// The setting name of a scheduler limit, for "already set" errors.
fn scheduler_setting(limit: SchedulerLimit) -> &'static str {
    match limit {
        SchedulerLimit::MaxInflight => "scheduler limit max-inflight",
        SchedulerLimit::MaxEvpBatchSize => "scheduler limit max-evp-batch-size",
        SchedulerLimit::MaxMsgBatchSize => "scheduler limit max-msg-batch-size",
        SchedulerLimit::MaxSchedule => "scheduler limit max-schedule",
    }
}
