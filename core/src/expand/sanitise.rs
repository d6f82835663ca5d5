//! Making peer-supplied values safe to paste into paths and shell commands.
//!
//! The policy (an allow-list, dot runs, the lone dot) and why it differs from OpenSMTPD's
//! deny-list are described in the [module documentation](super).

/// What every unsafe character becomes, as in OpenSMTPD.
pub(crate) const REPLACEMENT: char = ':';

/// Whether `c` may appear in a sanitised value.
pub(crate) fn is_safe(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_alphanumeric() || "@.+-=_:".contains(c)
    } else {
        c.is_alphanumeric()
    }
}

/// Replaces unsafe characters and every dot of a `..` run.
pub(crate) fn sanitise(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    let is_dot = |i: usize| chars.get(i) == Some(&'.');
    chars
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let in_dot_run = c == '.' && ((i > 0 && is_dot(i - 1)) || is_dot(i + 1));
            if is_safe(c) && !in_dot_run {
                c
            } else {
                REPLACEMENT
            }
        })
        .collect()
}

/// The final guard after a substring has been taken: a lone `.` would name the directory the
/// template put it in.
pub(crate) fn guard_lone_dot(value: String) -> String {
    if value == "." {
        REPLACEMENT.to_string()
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_what_addresses_are_made_of() {
        for v in [
            "user+tag@example.org",
            "first.last@sub.example.org",
            "SRS0=Hy2-=G3=example.org=alice@forwarder.example",
            "under_score",
            "IPv6:2001:db8::1",
            "jürgen@bücher.example",
            "用户@例子.广告",
        ] {
            assert_eq!(sanitise(v), v);
        }
    }

    #[test]
    fn replaces_opensmtpd_escapes() {
        // The manual's own example: user+t?g → user+t:g.
        assert_eq!(sanitise("user+t?g@example.org"), "user+t:g@example.org");
        assert_eq!(sanitise("!#$%&'*?`{|}~"), ":::::::::::::");
    }

    #[test]
    fn replaces_path_and_shell_characters_opensmtpd_keeps() {
        assert_eq!(sanitise("a/b"), "a:b");
        assert_eq!(sanitise("a\\b"), "a:b");
        assert_eq!(sanitise("a^b"), "a:b");
        assert_eq!(sanitise("[192.0.2.1]"), ":192.0.2.1:");
        assert_eq!(sanitise("x;rm -rf ~"), "x:rm:-rf::");
        assert_eq!(sanitise("a\"b'c(d)e<f>g,h"), "a:b:c:d:e:f:g:h");
        assert_eq!(sanitise("tab\there\nnul\0"), "tab:here:nul:");
        assert_eq!(sanitise("a\u{202e}b\u{ff0f}c"), "a:b:c");
    }

    #[test]
    fn breaks_up_dot_runs_only() {
        assert_eq!(sanitise(".."), "::");
        assert_eq!(sanitise("../../etc"), "::::::etc");
        assert_eq!(sanitise("a...b"), "a:::b");
        assert_eq!(sanitise("a.b.c"), "a.b.c");
        assert_eq!(sanitise(".hidden"), ".hidden");
        assert_eq!(sanitise("trailing."), "trailing.");
        assert_eq!(sanitise("."), ".");
        assert_eq!(guard_lone_dot(sanitise(".")), ":");
        assert_eq!(
            guard_lone_dot("..".into()),
            "..",
            "only the lone dot is the guard's job"
        );
        assert_eq!(guard_lone_dot(".a".into()), ".a");
    }
}
