//! The values of aliases, virtual and `.forward` entries: what one address expands to.
//!
//! A value is a comma-separated list, read as OpenSMTPD reads it (`expand_line` in `expand.c`,
//! `text_to_expandnode` in `to.c`):
//!
//! - commas inside double or single quotes do not split, and a backslash makes the next
//!   character ordinary (the backslash itself is dropped, so `\root` is `root`); blank items are
//!   skipped; an unterminated quote or a trailing backslash makes the whole value invalid;
//! - each item is, in this order of precedence: `error:NNN text` (or `:error:`), `:include:/path`
//!   (or `include:`), `|command` (or `"|command"`), `/file`, `user@domain`, `user`. An item that
//!   is none of these makes the whole value invalid — OpenSMTPD then fails the lookup
//!   temporarily, and so does the resolver.
//!
//! Petrel also accepts any whole item in double quotes — a file with a comma in its name, an
//! error whose text has a comma (`"error:452 4.2.2 mailbox full, try later"`) — where
//! OpenSMTPD only unquotes commands.

use thiserror::Error;

use super::address::MailAddr;
use crate::smtp::{EnhancedCode, Reply};

/// One item of an expansion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AliasTarget {
    /// A local user name (lowercased): looked up again as an alias, then as a user.
    User(String),
    /// A mail address: routed again through the rules (it may be remote).
    Address(MailAddr),
    /// Append the message to this file (an absolute path).
    File(String),
    /// Pipe the message into this command.
    Command(String),
    /// Read more items from this file (an absolute path); not allowed in `.forward` files.
    Include(String),
    /// Fail the recipient with this reply (4xx or 5xx only).
    Error(Reply),
}

/// Why an expansion value could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AliasError {
    /// A quote is not closed, or the value ends with a backslash.
    #[error("unterminated quote or escape in alias value")]
    Unterminated,
    /// `error:` without a 4xx/5xx code, a space and a message.
    #[error("invalid error item {0:?}: expected error:4xx or error:5xx, a space and a message")]
    BadError(String),
    /// `:include:` not followed by an absolute path.
    #[error("invalid include item {0:?}: expected :include:/absolute/path")]
    BadInclude(String),
    /// An item that is no user, address, path, command, include or error.
    #[error("invalid item {0:?} in alias value")]
    BadItem(String),
}

/// Parses an expansion value: a comma-separated list of targets.
pub fn parse_targets(value: &str) -> Result<Vec<AliasTarget>, AliasError> {
    split_items(value)?
        .iter()
        .map(|item| parse_target(item))
        .collect()
}

/// Splits on commas outside quotes; escapes are resolved, quotes kept; blank items dropped.
fn split_items(value: &str) -> Result<Vec<String>, AliasError> {
    let mut items = Vec::new();
    let mut current = String::new();
    let (mut escaped, mut dquote, mut squote) = (false, false, false);
    for c in value.chars() {
        if escaped {
            current.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            ',' if !dquote && !squote => items.push(std::mem::take(&mut current)),
            _ => {
                current.push(c);
                if c == '"' && !squote {
                    dquote = !dquote;
                } else if c == '\'' && !dquote {
                    squote = !squote;
                }
            }
        }
    }
    if escaped || dquote || squote {
        return Err(AliasError::Unterminated);
    }
    items.push(current);
    Ok(items
        .into_iter()
        .map(|i| i.trim().to_owned())
        .filter(|i| !i.is_empty())
        .collect())
}

fn parse_target(item: &str) -> Result<AliasTarget, AliasError> {
    // A whole item in double quotes (OpenSMTPD only unquotes commands).
    let item = item
        .strip_prefix('"')
        .and_then(|i| i.strip_suffix('"'))
        .unwrap_or(item);
    if let Some(rest) = strip_prefix_ci(item, ":error:").or_else(|| strip_prefix_ci(item, "error:"))
    {
        return parse_error(rest).ok_or_else(|| AliasError::BadError(item.to_owned()));
    }
    if let Some(path) =
        strip_prefix_ci(item, ":include:").or_else(|| strip_prefix_ci(item, "include:"))
    {
        return if path.starts_with('/') {
            Ok(AliasTarget::Include(path.to_owned()))
        } else {
            Err(AliasError::BadInclude(item.to_owned()))
        };
    }
    if let Some(cmd) = item.strip_prefix('|') {
        return Ok(AliasTarget::Command(cmd.to_owned()));
    }
    if item.starts_with('/') {
        return Ok(AliasTarget::File(item.to_owned()));
    }
    if let Some(addr) = parse_address(item) {
        return Ok(AliasTarget::Address(addr));
    }
    if !item.is_empty()
        && item
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-+".contains(&b))
    {
        return Ok(AliasTarget::User(item.to_ascii_lowercase()));
    }
    Err(AliasError::BadItem(item.to_owned()))
}

/// `alias_is_address`: `user@domain` split at the first `@`, neither part empty, the user part
/// of atext and dots, the domain of letters, digits, `-` and `.`.
fn parse_address(item: &str) -> Option<MailAddr> {
    let (user, domain) = item.split_once('@')?;
    if user.is_empty() || domain.is_empty() {
        return None;
    }
    let user_ok = user
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"!#$%*/?|^{}`~&'+-=_.".contains(&b));
    let domain_ok = domain
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    (user_ok && domain_ok).then(|| MailAddr::new(user, domain))
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    s.get(..prefix.len())
        .filter(|p| p.eq_ignore_ascii_case(prefix))
        .map(|_| &s[prefix.len()..])
}

/// `NNN text`: a 4xx or 5xx code, one space, text starting with a letter or digit (OpenSMTPD's
/// check). An RFC 3463 code of the same class at the start of the text becomes the reply's
/// enhanced code; otherwise `X.0.0` is used.
fn parse_error(rest: &str) -> Option<AliasTarget> {
    let b = rest.as_bytes();
    let well_formed = b.len() >= 5
        && matches!(b[0], b'4' | b'5')
        && b[1].is_ascii_digit()
        && b[2].is_ascii_digit()
        && b[3] == b' '
        && b[4].is_ascii_alphanumeric();
    if !well_formed {
        return None;
    }
    let code: u16 = rest[..3].parse().ok()?;
    let text = rest[4..].trim_end();
    let class = b[0] - b'0';
    let (enhanced, text) = match EnhancedCode::parse_prefix(text) {
        Some((e, len)) if e.class == class && !text[len..].trim().is_empty() => {
            (e, text[len..].trim())
        }
        _ => (EnhancedCode::new(class, 0, 0), text),
    };
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
        let targets = parse_targets(
            r#"Alice, \root, carol@example.org, /var/mail/log, "|/usr/bin/vacation -a x", :include:/etc/mail/list, |cat>/dev/null"#,
        )
        .unwrap();
        assert_eq!(
            targets,
            vec![
                AliasTarget::User("alice".into()),
                AliasTarget::User("root".into()),
                AliasTarget::Address(MailAddr::new("carol", "example.org")),
                AliasTarget::File("/var/mail/log".into()),
                AliasTarget::Command("/usr/bin/vacation -a x".into()),
                AliasTarget::Include("/etc/mail/list".into()),
                AliasTarget::Command("cat>/dev/null".into()),
            ]
        );
    }

    #[test]
    fn quoting_and_escapes() {
        assert_eq!(
            parse_targets(r#""|tee a,b", x\#y@example.org, 'a,b'"#),
            Err(AliasError::BadItem("'a,b'".into()))
        );
        assert_eq!(
            parse_targets(r#""|tee a,b", x\#y@example.org"#).unwrap(),
            vec![
                AliasTarget::Command("tee a,b".into()),
                AliasTarget::Address(MailAddr::new("x#y", "example.org")),
            ]
        );
        assert_eq!(parse_targets("a,,b, ,").unwrap().len(), 2);
        assert_eq!(parse_targets("\"a, b"), Err(AliasError::Unterminated));
        assert_eq!(parse_targets("a\\"), Err(AliasError::Unterminated));
        assert_eq!(parse_targets("").unwrap(), vec![]);
    }

    #[test]
    fn error_items() {
        let [AliasTarget::Error(r)] = &parse_targets("error:550 5.1.1 gone away").unwrap()[..]
        else {
            panic!()
        };
        assert_eq!(r.to_string(), "550 5.1.1 gone away");
        let [AliasTarget::Error(r)] = &parse_targets(":ERROR:450 mailbox moving").unwrap()[..]
        else {
            panic!()
        };
        assert_eq!(r.to_string(), "450 4.0.0 mailbox moving");
        // A code of another class stays part of the text.
        let [AliasTarget::Error(r)] = &parse_targets("error:550 4.2.2 odd").unwrap()[..] else {
            panic!()
        };
        assert_eq!(r.to_string(), "550 5.0.0 4.2.2 odd");
        for bad in [
            "error:250 fine",
            "error:550",
            "error:550 ",
            "error:abc x",
            "error:550-x",
        ] {
            assert!(
                matches!(parse_targets(bad), Err(AliasError::BadError(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn malformed_items() {
        for bad in [
            "a@@b",
            "@example.org",
            "user@",
            "a b",
            "al!ce",
            "user@[192.0.2.1]",
        ] {
            assert!(
                matches!(parse_targets(bad), Err(AliasError::BadItem(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            parse_targets(":include:relative"),
            Err(AliasError::BadInclude(_))
        ));
        assert_eq!(
            parse_targets("\"\""),
            Err(AliasError::BadItem(String::new()))
        );
        // A comma ends an unquoted error's text, leaving an item that is nothing.
        assert_eq!(
            parse_targets("error:452 4.2.2 full, try later"),
            Err(AliasError::BadItem("try later".into()))
        );
        assert_eq!(
            parse_targets("\"error:452 4.2.2 full, try later\"")
                .unwrap()
                .len(),
            1
        );
    }
}
