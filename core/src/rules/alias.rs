//! The values of aliases, virtual and `.forward` entries: what one address expands to.
//!
//! A value is a comma-separated list; each item is a local user, a mail address, a file to
//! append to (`/path`), a command to pipe into (`|command`), a list of more items in a file
//! (`:include:/path`), or an error that makes the recipient fail (`error:550 reason`).

use thiserror::Error;

use crate::smtp::{EnhancedCode, Mailbox, Reply};

/// One item of an expansion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AliasTarget {
    /// A local user name (lowercased). A leading backslash (`\user`) means "deliver to this user
    /// without looking it up again", the sendmail convention for breaking self-references.
    User {
        /// The user name.
        name: String,
        /// Written `\name`: do not expand further.
        literal: bool,
    },
    /// A mail address: expanded again through the rules (it may be remote).
    Address(Mailbox),
    /// Append the message to this file.
    File(String),
    /// Pipe the message into this command.
    Command(String),
    /// Read more items from this file.
    Include(String),
    /// Fail the recipient with this reply (4xx or 5xx only).
    Error(Reply),
}

/// Why an expansion value could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AliasError {
    /// An item is empty (two commas in a row).
    #[error("empty item in alias value")]
    Empty,
    /// `error:` without a valid 4xx/5xx code and a message.
    #[error("invalid error: item {0:?}: expected error:4xx or error:5xx with a message")]
    BadError(String),
    /// An address that is not a valid mailbox.
    #[error("invalid address {0:?} in alias value")]
    BadAddress(String),
    /// A quoted item without its closing quote.
    #[error("unterminated quote in alias value")]
    Unterminated,
}

/// Parses an expansion value: a comma-separated list of targets.
pub fn parse_targets(value: &str) -> Result<Vec<AliasTarget>, AliasError> {
    split_items(value)?
        .into_iter()
        .map(|item| parse_target(&item))
        .collect()
}

/// Splits on commas outside double quotes; quotes are removed.
fn split_items(value: &str) -> Result<Vec<String>, AliasError> {
    let mut items = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in value.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => items.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    if quoted {
        return Err(AliasError::Unterminated);
    }
    items.push(current);
    items
        .into_iter()
        .map(|i| {
            let t = i.trim().to_owned();
            if t.is_empty() {
                Err(AliasError::Empty)
            } else {
                Ok(t)
            }
        })
        .collect()
}

fn parse_target(item: &str) -> Result<AliasTarget, AliasError> {
    if let Some(cmd) = item.strip_prefix('|') {
        return Ok(AliasTarget::Command(cmd.trim().to_owned()));
    }
    if item.starts_with('/') {
        return Ok(AliasTarget::File(item.to_owned()));
    }
    if let Some(path) = strip_prefix_ci(item, ":include:") {
        return Ok(AliasTarget::Include(path.trim().to_owned()));
    }
    if let Some(rest) = strip_prefix_ci(item, "error:") {
        return parse_error(rest).ok_or_else(|| AliasError::BadError(item.to_owned()));
    }
    if item.contains('@') {
        return Mailbox::parse(item, true)
            .map(AliasTarget::Address)
            .map_err(|_| AliasError::BadAddress(item.to_owned()));
    }
    let (name, literal) = match item.strip_prefix('\\') {
        Some(n) => (n, true),
        None => (item, false),
    };
    Ok(AliasTarget::User {
        name: name.to_lowercase(),
        literal,
    })
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    s.get(..prefix.len())
        .filter(|p| p.eq_ignore_ascii_case(prefix))
        .map(|_| &s[prefix.len()..])
}

/// `NNN [x.y.z] message`: a 4xx or 5xx code, an optional enhanced code, and required text.
fn parse_error(rest: &str) -> Option<AliasTarget> {
    let rest = rest.trim();
    let code: u16 = rest.get(..3)?.parse().ok()?;
    if !(400..600).contains(&code) {
        return None;
    }
    let text = rest[3..]
        .strip_prefix([' ', '-'])
        .unwrap_or(&rest[3..])
        .trim();
    let (enhanced, text) = match EnhancedCode::parse_prefix(text) {
        Some((e, len)) if u16::from(e.class) == code / 100 => (e, text[len..].trim()),
        _ => (EnhancedCode::new((code / 100) as u8, 0, 0), text),
    };
    if text.is_empty() {
        return None;
    }
    Some(AliasTarget::Error(Reply::new(
        code,
        enhanced,
        text.to_owned(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind() {
        let targets =
            parse_targets(r#"Alice, \bob, carol@example.org, /var/mail/log, "|/usr/bin/vacation -a x", :include:/etc/mail/list"#)
                .unwrap();
        assert_eq!(
            targets,
            vec![
                AliasTarget::User {
                    name: "alice".into(),
                    literal: false
                },
                AliasTarget::User {
                    name: "bob".into(),
                    literal: true
                },
                AliasTarget::Address(Mailbox::parse("carol@example.org", false).unwrap()),
                AliasTarget::File("/var/mail/log".into()),
                AliasTarget::Command("/usr/bin/vacation -a x".into()),
                AliasTarget::Include("/etc/mail/list".into()),
            ]
        );
    }

    #[test]
    fn error_items() {
        let [AliasTarget::Error(r)] = &parse_targets("error:550 5.1.1 gone away").unwrap()[..]
        else {
            panic!()
        };
        assert_eq!(r.to_string(), "550 5.1.1 gone away");
        let [AliasTarget::Error(r)] = &parse_targets("error:450 mailbox moving").unwrap()[..]
        else {
            panic!()
        };
        assert_eq!(r.to_string(), "450 4.0.0 mailbox moving");
        assert!(matches!(
            parse_targets("error:250 fine"),
            Err(AliasError::BadError(_))
        ));
        assert!(matches!(
            parse_targets("error:550"),
            Err(AliasError::BadError(_))
        ));
        assert!(matches!(
            parse_targets("error:abc x"),
            Err(AliasError::BadError(_))
        ));
    }

    #[test]
    fn malformed_values() {
        assert_eq!(parse_targets("a,,b"), Err(AliasError::Empty));
        assert_eq!(parse_targets("\"a, b"), Err(AliasError::Unterminated));
        assert!(matches!(
            parse_targets("a@@b"),
            Err(AliasError::BadAddress(_))
        ));
    }
}
