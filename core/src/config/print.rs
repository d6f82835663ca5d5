//! The normal form: `Config`'s `Display`, what `petreld -n` prints.
//!
//! One directive per line; sections in dependency order (tables, certificates, global settings,
//! wrappers, procs, filters, listeners, actions, rules) so every name is defined before use;
//! options in a fixed order; strings quoted only when they must be. Defaults are explicit where
//! they decide who may send what (`match from local for local`, listener ports) and omitted for
//! global tunables equal to their default, so a short configuration prints short.

use std::fmt::{self, Display, Formatter, Write};

use super::keywords::is_reserved;
use super::types::*;
use super::values::{format_duration, format_size};

/// A name or value, quoted when it would not read back as itself bare: empty, reserved,
/// all digits (a number to OpenSMTPD), or containing anything but letters, digits and
/// punctuation that bare words allow.
pub(crate) struct Word<'a>(pub &'a str);

impl Display for Word<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let s = self.0;
        let starts_well =
            s.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':');
        let bare = starts_well
            && s.chars().all(|c| {
                c.is_ascii_alphanumeric()
                    || (c.is_ascii_punctuation() && !"(){}<>!=#,\"'\\$".contains(c))
            })
            && !s.bytes().all(|b| b.is_ascii_digit())
            && !is_reserved(s);
        if bare {
            return f.write_str(s);
        }
        // A backslash is doubled only where the lexer would take it for an escape, so regular
        // expressions print as written (`\.` stays `\.`, as OpenSMTPD reads it too).
        f.write_char('"')?;
        let mut chars = s.chars().peekable();
        while let Some(c) = chars.next() {
            let escape = match c {
                '"' => true,
                '\\' => matches!(
                    chars.peek(),
                    None | Some('\\' | '"' | ' ' | '\t' | '\n' | '\r')
                ),
                _ => false,
            };
            if escape {
                f.write_char('\\')?;
            }
            f.write_char(c)?;
        }
        f.write_char('"')
    }
}

struct TableRef<'a>(&'a str);

impl Display for TableRef<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "<{}>", self.0)
    }
}

impl Display for Matcher {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if self.regex {
            f.write_str("regex ")?;
        }
        match &self.lookup {
            Lookup::Value(value) => write!(f, "{}", Word(value)),
            Lookup::Table(table) => write!(f, "{}", TableRef(table)),
        }
    }
}

fn bang(negated: bool) -> &'static str {
    if negated { "!" } else { "" }
}

/// Writes ` KEYWORD VALUE` when the value is set.
fn opt_word(f: &mut Formatter<'_>, keyword: &str, value: Option<&String>) -> fmt::Result {
    match value {
        Some(value) => write!(f, " {keyword} {}", Word(value)),
        None => Ok(()),
    }
}

fn opt_table(f: &mut Formatter<'_>, keyword: &str, table: Option<&String>) -> fmt::Result {
    match table {
        Some(table) => write!(f, " {keyword} {}", TableRef(table)),
        None => Ok(()),
    }
}

fn flag(f: &mut Formatter<'_>, keyword: &str, on: bool) -> fmt::Result {
    if on { write!(f, " {keyword}") } else { Ok(()) }
}

fn list(f: &mut Formatter<'_>, items: &[String]) -> fmt::Result {
    f.write_str("{")?;
    for (i, item) in items.iter().enumerate() {
        write!(f, "{}{}", if i == 0 { " " } else { ", " }, Word(item))?;
    }
    f.write_str(" }")
}

impl Display for FilterRef {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            FilterRef::Named(name) => write!(f, "{}", Word(name)),
            FilterRef::Chain(members) => list(f, members),
        }
    }
}

impl Display for Table {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "table {} ", Word(&self.name))?;
        match &self.source {
            TableSource::File(path) => write!(f, "{}", Word(&format!("file:{path}"))),
            TableSource::Db(path) => write!(f, "{}", Word(&format!("db:{path}"))),
            TableSource::Proc(path) => write!(f, "{}", Word(&format!("proc:{path}"))),
            TableSource::List(values) => list(f, values),
            TableSource::Map(pairs) => {
                f.write_str("{")?;
                for (i, (key, value)) in pairs.iter().enumerate() {
                    write!(
                        f,
                        "{}{} = {}",
                        if i == 0 { " " } else { ", " },
                        Word(key),
                        Word(value)
                    )?;
                }
                f.write_str(" }")
            }
        }
    }
}

impl Display for Pki {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let name = Word(&self.name);
        writeln!(f, "pki {name} cert {}", Word(&self.cert))?;
        write!(f, "pki {name} key {}", Word(&self.key))?;
        match self.dhe {
            Dhe::None => Ok(()),
            Dhe::Auto => write!(f, "\npki {name} dhe auto"),
            Dhe::Legacy => write!(f, "\npki {name} dhe legacy"),
        }
    }
}

impl Display for Ca {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "ca {} cert {}", Word(&self.name), Word(&self.cert))
    }
}

impl Display for ProcExec {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}", Word(&self.command))?;
        opt_word(f, "user", self.user.as_ref())?;
        opt_word(f, "group", self.group.as_ref())?;
        opt_word(f, "chroot", self.chroot.as_ref())?;
        if self.on_failure == crate::filter::chain::FailurePolicy::Open {
            write!(f, " fail-open")?;
        }
        if let Some(t) = self.timeout {
            write!(f, " timeout {}", format_duration(t))?;
        }
        if let Some(v) = self.protocol {
            write!(f, " protocol {v}")?;
        }
        Ok(())
    }
}

impl Display for Proc {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "proc {} {}", Word(&self.name), self.exec)
    }
}

impl Display for MdaWrapper {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "mda wrapper {} {}",
            Word(&self.name),
            Word(&self.command)
        )
    }
}

impl Display for Filter {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "filter {} ", Word(&self.name))?;
        match &self.kind {
            FilterKind::Builtin(builtin) => write!(f, "{builtin}"),
            FilterKind::Greylist(settings) => write!(f, "{settings}"),
            FilterKind::ProcExec(exec) => write!(f, "proc-exec {exec}"),
            FilterKind::Proc(name) => write!(f, "proc {}", Word(name)),
            FilterKind::Chain(members) => {
                f.write_str("chain ")?;
                list(f, members)
            }
        }
    }
}

impl Display for BuiltinFilter {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "phase {} match", self.phase.as_str())?;
        for condition in &self.conditions {
            write!(
                f,
                " {}{}",
                bang(condition.negated),
                condition.test.keyword()
            )?;
            match &condition.test {
                FilterCheck::Fcrdns | FilterCheck::Rdns(None) | FilterCheck::Auth(None) => {}
                FilterCheck::Rdns(Some(m))
                | FilterCheck::Auth(Some(m))
                | FilterCheck::Src(m)
                | FilterCheck::Helo(m)
                | FilterCheck::MailFrom(m)
                | FilterCheck::RcptTo(m) => write!(f, " {m}")?,
            }
        }
        match &self.decision {
            FilterDecision::Junk => write!(f, " junk"),
            FilterDecision::Bypass => write!(f, " bypass"),
            FilterDecision::Reject(reply) => write!(f, " reject {}", Word(&reply.to_string())),
            FilterDecision::Disconnect(reply) => {
                write!(f, " disconnect {}", Word(&reply.to_string()))
            }
            FilterDecision::Rewrite(value) => write!(f, " rewrite {}", Word(value)),
            FilterDecision::Report(text) => write!(f, " report {}", Word(text)),
        }
    }
}

/// Every timer and mask is printed, defaults included: they decide which mail waits and for how
/// long, so the normal form shows them (as it shows listener ports).
impl Display for GreylistSettings {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "greylist delay {} retry-window {} pass-lifetime {} ipv4-mask {} ipv6-mask {}",
            format_duration(self.delay),
            format_duration(self.retry_window),
            format_duration(self.pass_lifetime),
            self.ipv4_mask,
            self.ipv6_mask
        )?;
        opt_table(f, "bypass", self.bypass.as_ref())
    }
}

impl Display for Listener {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str("listen on ")?;
        match &self.on {
            ListenOn::Socket => f.write_str("socket")?,
            ListenOn::All => f.write_str("all")?,
            ListenOn::Localhost => f.write_str("localhost")?,
            ListenOn::Address(address) => write!(f, "{address}")?,
            ListenOn::Interface(name) => write!(f, "{}", Word(name))?,
        }
        if let Some(family) = self.family {
            write!(f, " {}", family.as_str())?;
        }
        if let Some(port) = self.port {
            write!(f, " port {port}")?;
        }
        match self.tls {
            TlsMode::Off => {}
            TlsMode::StartTls => f.write_str(" tls")?,
            TlsMode::StartTlsRequired { verify } => {
                write!(f, " tls-require{}", if verify { " verify" } else { "" })?
            }
            TlsMode::Smtps { verify } => {
                write!(f, " smtps{}", if verify { " verify" } else { "" })?
            }
        }
        for pki in &self.pki {
            write!(f, " pki {}", Word(pki))?;
        }
        opt_word(f, "ca", self.ca.as_ref())?;
        if let Some(auth) = &self.auth {
            f.write_str(if auth.required {
                " auth"
            } else {
                " auth-optional"
            })?;
            if let Some(table) = &auth.table {
                write!(f, " {}", TableRef(table))?;
            }
        }
        if let Some(filter) = &self.filter {
            write!(f, " filter {filter}")?;
        }
        opt_word(f, "hostname", self.hostname.as_ref())?;
        opt_table(f, "hostnames", self.hostnames.as_ref())?;
        opt_word(f, "tag", self.tag.as_ref())?;
        flag(f, "mask-src", self.mask_src)?;
        if let Some(senders) = &self.senders {
            write!(f, " senders {}", TableRef(&senders.table))?;
            flag(f, "masquerade", senders.masquerade)?;
        }
        flag(f, "received-auth", self.received_auth)?;
        flag(f, "no-dsn", self.no_dsn)?;
        flag(f, "no-rdns", self.no_rdns)?;
        flag(f, "proxy-v2", self.proxy_v2)?;
        opt_word(f, "protocols", self.protocols.as_ref())?;
        opt_word(f, "ciphers", self.ciphers.as_ref())
    }
}

impl Display for Action {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "action {} ", Word(&self.name))?;
        match &self.delivery {
            Delivery::Local(local) => write!(f, "{local}")?,
            Delivery::Relay(relay) => write!(f, "{relay}")?,
        }
        if let Some(ttl) = self.ttl {
            write!(f, " ttl {}", format_duration(ttl))?;
        }
        Ok(())
    }
}

impl Display for LocalDelivery {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(self.method.keyword())?;
        match &self.method {
            LocalMethod::Maildir { path, junk } => {
                if let Some(path) = path {
                    write!(f, " {}", Word(path))?;
                }
                flag(f, "junk", *junk)?;
            }
            LocalMethod::Lmtp {
                destination,
                rcpt_to,
            } => {
                write!(f, " {}", Word(destination))?;
                flag(f, "rcpt-to", *rcpt_to)?;
            }
            LocalMethod::Mda { command } => write!(f, " {}", Word(command))?,
            LocalMethod::Mbox | LocalMethod::ExpandOnly | LocalMethod::ForwardOnly => {}
        }
        match &self.expansion {
            Some(Expansion::Alias(table)) => write!(f, " alias {}", TableRef(table))?,
            Some(Expansion::Virtual(table)) => write!(f, " virtual {}", TableRef(table))?,
            None => {}
        }
        opt_table(f, "userbase", self.userbase.as_ref())?;
        opt_word(f, "user", self.user.as_ref())?;
        opt_word(f, "wrapper", self.wrapper.as_ref())
    }
}

impl Display for Relay {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str("relay")?;
        if let Some(host) = &self.host {
            write!(f, " host {}", Word(&host.to_string()))?;
        }
        if let Some(backup) = &self.backup {
            f.write_str(" backup")?;
            opt_word(f, "mx", backup.mx.as_ref())?;
        }
        opt_table(f, "domain", self.domain.as_ref())?;
        opt_word(f, "helo", self.helo.as_ref())?;
        opt_table(f, "helo-src", self.helo_src.as_ref())?;
        if let Some(tls) = self.tls {
            f.write_str(if tls.verify { " tls" } else { " tls no-verify" })?;
        }
        opt_table(f, "auth", self.auth.as_ref())?;
        opt_word(f, "pki", self.pki.as_ref())?;
        opt_word(f, "ca", self.ca.as_ref())?;
        match &self.src {
            Some(RelaySource::Address(address)) => {
                write!(f, " src {}", Word(&address.to_string()))?
            }
            Some(RelaySource::Table(table)) => write!(f, " src {}", TableRef(table))?,
            None => {}
        }
        opt_word(f, "mail-from", self.mail_from.as_ref())?;
        flag(f, "srs", self.srs)?;
        if let Some(filter) = &self.filter {
            write!(f, " filter {filter}")?;
        }
        opt_word(f, "protocols", self.protocols.as_ref())?;
        opt_word(f, "ciphers", self.ciphers.as_ref())
    }
}

impl Display for MatchRule {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "match {}from ", bang(self.from.negated))?;
        match &self.from.test {
            Origin::Any => f.write_str("any")?,
            Origin::Local => f.write_str("local")?,
            Origin::Socket => f.write_str("socket")?,
            Origin::Src(m) => write!(f, "src {m}")?,
            Origin::Rdns(None) => f.write_str("rdns")?,
            Origin::Rdns(Some(m)) => write!(f, "rdns {m}")?,
        }
        write!(f, " {}for ", bang(self.to.negated))?;
        match &self.to.test {
            Destination::Any => f.write_str("any")?,
            Destination::Local => f.write_str("local")?,
            Destination::Domain(m) => write!(f, "domain {m}")?,
        }
        let conditions = [("tag", &self.tag), ("helo", &self.helo)];
        for (keyword, condition) in conditions {
            if let Some(c) = condition {
                write!(f, " {}{keyword} {}", bang(c.negated), c.test)?;
            }
        }
        if let Some(auth) = &self.auth {
            write!(f, " {}auth", bang(auth.negated))?;
            if let Some(m) = &auth.test {
                write!(f, " {m}")?;
            }
        }
        if let Some(tls) = &self.tls {
            write!(f, " {}tls", bang(tls.negated))?;
        }
        for (keyword, condition) in [("mail-from", &self.mail_from), ("rcpt-to", &self.rcpt_to)] {
            if let Some(c) = condition {
                write!(f, " {}{keyword} {}", bang(c.negated), c.test)?;
            }
        }
        match &self.decision {
            MatchDecision::Action(name) => write!(f, " action {}", Word(name)),
            MatchDecision::Reject => f.write_str(" reject"),
        }
    }
}

/// The global settings that differ from their defaults, one directive per line.
fn global_settings(config: &Config) -> Vec<String> {
    let mut lines = Vec::new();
    let defaults = Config::default();
    let smtp = &config.smtp;
    if smtp.max_message_size != defaults.smtp.max_message_size {
        lines.push(format!(
            "smtp max-message-size {}",
            format_size(smtp.max_message_size)
        ));
    }
    if smtp.max_mails != defaults.smtp.max_mails {
        lines.push(format!("smtp limit max-mails {}", smtp.max_mails));
    }
    if smtp.max_rcpt != defaults.smtp.max_rcpt {
        lines.push(format!("smtp limit max-rcpt {}", smtp.max_rcpt));
    }
    if smtp.sub_addr_delim != defaults.smtp.sub_addr_delim {
        lines.push(format!(
            "smtp sub-addr-delim {}",
            Word(&smtp.sub_addr_delim.to_string())
        ));
    }
    if smtp.ciphers != defaults.smtp.ciphers {
        lines.push(format!("smtp ciphers {}", Word(&smtp.ciphers)));
    }
    let queue = &config.queue;
    if queue.ttl != defaults.queue.ttl {
        lines.push(format!("queue ttl {}", format_duration(queue.ttl)));
    }
    if queue.compression {
        lines.push("queue compression".into());
    }
    match &queue.encryption {
        Some(QueueEncryption::Prompt) => lines.push("queue encryption".into()),
        Some(QueueEncryption::Stdin) => lines.push("queue encryption stdin".into()),
        Some(QueueEncryption::Key(key)) => lines.push(format!("queue encryption {}", Word(key))),
        None => {}
    }
    if let Some(key) = &config.srs.key {
        lines.push(format!("srs key {}", Word(key)));
    }
    if let Some(key) = &config.srs.backup_key {
        lines.push(format!("srs key backup {}", Word(key)));
    }
    if config.srs.ttl_days != defaults.srs.ttl_days {
        lines.push(format!("srs ttl {}d", config.srs.ttl_days));
    }
    if config.bounce != defaults.bounce {
        let delays: Vec<String> = config
            .bounce
            .warn_intervals
            .iter()
            .map(|d| format_duration(*d))
            .collect();
        lines.push(format!("bounce warn-interval {}", delays.join(", ")));
    }
    if config.mta.max_deferred != defaults.mta.max_deferred {
        lines.push(format!("mta max-deferred {}", config.mta.max_deferred));
    }
    for limits in &config.mta.limits {
        let mut line = String::from("mta limit");
        if let Some(domain) = &limits.domain {
            let _ = write!(line, " for domain {}", Word(domain));
        }
        if let Some(family) = limits.family {
            let _ = write!(line, " {}", family.as_str());
        }
        for (key, value) in &limits.values {
            let _ = write!(line, " {} {value}", key.as_str());
        }
        lines.push(line);
    }
    if !config.scheduler.values.is_empty() {
        let mut line = String::from("scheduler limit");
        for (key, value) in &config.scheduler.values {
            let _ = write!(line, " {} {value}", key.as_str());
        }
        lines.push(line);
    }
    if let Some(admd) = &config.admd {
        lines.push(format!("admd {}", Word(admd)));
    }
    match &config.petrel.resolver.source {
        ResolverSource::System => {}
        ResolverSource::Nameservers(servers) => lines.extend(
            servers
                .iter()
                .map(|s| format!("resolver nameserver {}", Word(&s.to_string()))),
        ),
        ResolverSource::Static(path) => lines.push(format!("resolver static {}", Word(path))),
    }
    lines
}

impl Display for Config {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        fn section<T: Display>(items: &[T]) -> Vec<String> {
            items.iter().map(ToString::to_string).collect()
        }
        let mut certificates = section(&self.pkis);
        certificates.extend(section(&self.cas));
        let sections = [
            section(&self.tables),
            certificates,
            global_settings(self),
            section(&self.mda_wrappers),
            section(&self.procs),
            section(&self.filters),
            section(&self.listeners),
            section(&self.actions),
            section(&self.rules),
        ];
        let mut first = true;
        for lines in sections.iter().filter(|s| !s.is_empty()) {
            if !first {
                writeln!(f)?;
            }
            first = false;
            for line in lines {
                writeln!(f, "{line}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_only_when_needed() {
        let shown = |s: &str| Word(s).to_string();
        assert_eq!(shown("lo0"), "lo0");
        assert_eq!(shown("file:/etc/mail/aliases"), "file:/etc/mail/aliases");
        assert_eq!(shown("::1"), "::1");
        assert_eq!(shown("*.example.org"), "\"*.example.org\"");
        assert_eq!(shown("/etc/ssl/cert.pem"), "\"/etc/ssl/cert.pem\"");
        assert_eq!(shown("local"), "\"local\"");
        assert_eq!(shown("25"), "\"25\"");
        assert_eq!(shown(""), "\"\"");
        assert_eq!(shown("a b"), "\"a b\"");
        assert_eq!(shown("say \"hi\" \\o/"), "\"say \\\"hi\\\" \\o/\"");
        assert_eq!(shown("^a\\.b$"), "\"^a\\.b$\"");
        assert_eq!(shown("C:\\"), "\"C:\\\\\"");
        assert_eq!(shown("a\\ b"), "\"a\\\\ b\"");
        assert_eq!(shown("$x"), "\"$x\"");
        assert_eq!(shown("caf\u{e9}"), "\"caf\u{e9}\"");
    }
}
