//! The text format of `file:` tables (table(5)) and aliases files (aliases(5)).
//!
//! Read as OpenSMTPD 7.x reads them (`parse_table_line` in `util.c`):
//!
//! - leading and trailing blanks are ignored, and so are blank lines and lines whose first
//!   non-blank character is `#`;
//! - the **first** entry decides the kind of table: a line with nothing after its key makes a
//!   list, anything else a mapping. The comment `# @list` before the first entry forces a list;
//! - in a list, the whole line is the value (`a b` is one value);
//! - in a mapping, the key ends at the first blank or `:`, or after the `]` of a key starting
//!   with `[` (so `[::1]  localhost` works); one separator character and the blanks after it
//!   are skipped, and the rest of the line is the value. A key without a value is an error.
//!
//! Petrel adds one thing OpenSMTPD rejects: the sendmail convention of continuing an aliases
//! entry on indented lines, taken only where OpenSMTPD would have failed — after an entry whose
//! value is empty (`list:`) or ends with a comma.

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

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Undecided,
    List,
    Map,
}

/// Parses the text of a table file.
pub fn parse(text: &str) -> Result<Entries, TableFileError> {
    let mut kind = Kind::Undecided;
    let mut list: Vec<String> = Vec::new();
    // (key, value, line of the key)
    let mut map: Vec<(String, String, usize)> = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line_no = n + 1;
        let err = |message: &str| TableFileError {
            line: line_no,
            message: message.to_owned(),
        };
        let trimmed = raw.trim_matches(|c: char| c.is_ascii_whitespace());
        if trimmed.is_empty() {
            continue;
        }
        if let Some(comment) = trimmed.strip_prefix('#') {
            if kind == Kind::Undecided && comment.trim() == "@list" {
                kind = Kind::List;
            }
            continue;
        }
        if kind == Kind::Map
            && raw.starts_with([' ', '\t'])
            && let Some((_, value, _)) = map.last_mut()
            && (value.is_empty() || value.ends_with(','))
        {
            if !value.is_empty() {
                value.push(' ');
            }
            value.push_str(trimmed);
            continue;
        }
        let key_end = if trimmed.starts_with('[') {
            match trimmed.find(']') {
                Some(i) => i + 1,
                None => return Err(err("missing `]` after a bracketed key")),
            }
        } else {
            trimmed.find([' ', '\t', ':']).unwrap_or(trimmed.len())
        };
        let rest = &trimmed[key_end..];
        if kind == Kind::Undecided {
            kind = if rest.is_empty() {
                Kind::List
            } else {
                Kind::Map
            };
        }
        if kind == Kind::List {
            list.push(trimmed.to_owned());
            continue;
        }
        if key_end == 0 {
            return Err(err("missing key"));
        }
        let mut chars = rest.chars();
        chars.next();
        let value = chars.as_str().trim_start_matches([' ', '\t']);
        if rest.is_empty() {
            return Err(err("list value in a table of key/value pairs"));
        }
        map.push((trimmed[..key_end].to_owned(), value.to_owned(), line_no));
    }
    if let Some((_, _, line)) = map.iter().find(|(_, v, _)| v.is_empty()) {
        return Err(TableFileError {
            line: *line,
            message: "key without a value".to_owned(),
        });
    }
    Ok(if kind == Kind::Map {
        Entries::Map(map.into_iter().map(|(k, v, _)| (k, v)).collect())
    } else {
        Entries::List(list)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> Entries {
        Entries::Map(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn lists_and_maps() {
        assert_eq!(
            parse("# domains\nexample.org\n\n  \n  *.example.net  \n").unwrap(),
            Entries::List(vec!["example.org".into(), "*.example.net".into()])
        );
        assert_eq!(
            parse("alice\t$2b$10$abc\nbob  secret with spaces \n").unwrap(),
            map(&[("alice", "$2b$10$abc"), ("bob", "secret with spaces")])
        );
        // The first entry decides: later lines of a list are whole values.
        assert_eq!(
            parse("a\nb c\n").unwrap(),
            Entries::List(vec!["a".into(), "b c".into()])
        );
        assert_eq!(parse("").unwrap(), Entries::List(vec![]));
    }

    #[test]
    fn forced_lists_and_bracketed_keys() {
        assert_eq!(
            parse("# @list\nalice@example.org: not a key\n").unwrap(),
            Entries::List(vec!["alice@example.org: not a key".into()])
        );
        assert_eq!(
            parse("[::1]\tlocalhost\n127.0.0.1 localhost\n").unwrap(),
            map(&[("[::1]", "localhost"), ("127.0.0.1", "localhost")])
        );
        assert_eq!(
            parse("[::1\tlocalhost\n").unwrap_err().message,
            "missing `]` after a bracketed key"
        );
    }

    #[test]
    fn separators_as_opensmtpd_reads_them() {
        // One separator, then blanks: "key :v" keeps the colon in the value.
        assert_eq!(
            parse("a: x\nb :y\nc\t\tz\n").unwrap(),
            map(&[("a", "x"), ("b", ":y"), ("c", "z")])
        );
    }

    #[test]
    fn aliases_form_with_continuations() {
        let text = "root: alice, bob\nlist:\n  carol@example.org,\n  dave\nnobody: /dev/null\n";
        assert_eq!(
            parse(text).unwrap(),
            map(&[
                ("root", "alice, bob"),
                ("list", "carol@example.org, dave"),
                ("nobody", "/dev/null")
            ])
        );
        // An indented line after a complete entry is an entry of its own, as in OpenSMTPD.
        assert_eq!(
            parse("root: alice\n  bob: carol\n").unwrap(),
            map(&[("root", "alice"), ("bob", "carol")])
        );
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("a b\nc\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 2: list value in a table of key/value pairs"
        );
        assert_eq!(parse(": value\n").unwrap_err().message, "missing key");
        assert_eq!(
            parse("# @list\n:odd\n").unwrap(),
            Entries::List(vec![":odd".into()])
        );
        let e = parse("a b\nlist:\nc d\n").unwrap_err();
        assert_eq!(e.to_string(), "line 2: key without a value");
    }
}
