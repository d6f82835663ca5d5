//! The text format of `file:` tables (table(5)) and aliases files (aliases(5)).
//!
//! One entry per line; blank lines and lines starting with `#` are ignored. A line holding a
//! single token is a list value; a line `key value…` or `key: value…` is a mapping (the rest of
//! the line is the value). A table is either a list or a mapping: mixing both is an error, as in
//! OpenSMTPD. A line starting with whitespace continues the previous mapping value (the
//! sendmail aliases convention).

use thiserror::Error;

use super::table::Entries;

/// A malformed line of a table file.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("line {line}: {message}")]
pub struct TableFileError {
    /// The line number, from 1.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Parses the text of a table file.
pub fn parse(text: &str) -> Result<Entries, TableFileError> {
    let mut list: Vec<String> = Vec::new();
    let mut map: Vec<(String, String)> = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let err = |message: &str| TableFileError {
            line: n + 1,
            message: message.to_owned(),
        };
        if line.starts_with([' ', '\t']) {
            let Some((_, value)) = map.last_mut() else {
                return Err(err("continuation line without an entry before it"));
            };
            if !value.is_empty() {
                value.push(' ');
            }
            value.push_str(trimmed);
            continue;
        }
        let key_end = trimmed.find([' ', '\t', ':']).unwrap_or(trimmed.len());
        let key = &trimmed[..key_end];
        let rest = trimmed[key_end..].trim_start();
        let (value, colon) = match rest.strip_prefix(':') {
            Some(v) => (v.trim(), true),
            None => (rest, false),
        };
        if key.is_empty() {
            return Err(err("missing key"));
        }
        if value.is_empty() && !colon {
            if !map.is_empty() {
                return Err(err("list value in a table of key/value pairs"));
            }
            list.push(key.to_owned());
        } else {
            if !list.is_empty() {
                return Err(err("key/value pair in a list table"));
            }
            map.push((key.to_owned(), value.to_owned()));
        }
    }
    Ok(if map.is_empty() {
        Entries::List(list)
    } else {
        Entries::Map(map)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_maps() {
        assert_eq!(
            parse("# domains\nexample.org\n\n  \n*.example.net\n").unwrap(),
            Entries::List(vec!["example.org".into(), "*.example.net".into()])
        );
        assert_eq!(
            parse("alice\t$2b$10$abc\nbob  secret with spaces\n").unwrap(),
            Entries::Map(vec![
                ("alice".into(), "$2b$10$abc".into()),
                ("bob".into(), "secret with spaces".into())
            ])
        );
    }

    #[test]
    fn aliases_form_with_continuations() {
        let text = "root: alice, bob\nlist:\n  carol@example.org,\n  dave\nnobody: /dev/null\n";
        assert_eq!(
            parse(text).unwrap(),
            Entries::Map(vec![
                ("root".into(), "alice, bob".into()),
                ("list".into(), "carol@example.org, dave".into()),
                ("nobody".into(), "/dev/null".into())
            ])
        );
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("a b\nc\n").unwrap_err();
        assert_eq!(e.line, 2);
        let e = parse("a\nb c\n").unwrap_err();
        assert_eq!(e.to_string(), "line 2: key/value pair in a list table");
        assert_eq!(parse("  x\n").unwrap_err().line, 1);
    }
}
