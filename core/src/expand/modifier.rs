//! `:lowercase`, `:uppercase`, `:strip` and `:raw`.

use super::variable::Shape;

/// A modifier after `:` in `%{name:mod|mod}`, applied left to right.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Modifier {
    /// ASCII lower case, like OpenSMTPD's `tolower` in the C locale.
    Lowercase,
    /// ASCII upper case.
    Uppercase,
    /// Drops a `+tag` (or whatever the sub-address delimiter is) from the local part.
    Strip,
    /// Turns sanitising off for this token.
    Raw,
}

impl Modifier {
    /// The modifier called `name`, ignoring ASCII case as OpenSMTPD does.
    pub(crate) fn from_name(name: &str) -> Option<Modifier> {
        [
            ("lowercase", Modifier::Lowercase),
            ("uppercase", Modifier::Uppercase),
            ("strip", Modifier::Strip),
            ("raw", Modifier::Raw),
        ]
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, m)| m)
    }

    /// Applies the modifier to a value of the given shape; `Raw` changes nothing here.
    pub(crate) fn apply(self, value: String, shape: Shape, delim: char) -> String {
        match self {
            Modifier::Lowercase => value.to_ascii_lowercase(),
            Modifier::Uppercase => value.to_ascii_uppercase(),
            Modifier::Strip => strip(&value, shape, delim),
            Modifier::Raw => value,
        }
    }
}

/// `gilles+hackers@poolp.org` → `gilles@poolp.org`, `gilles+hackers` → `gilles`.
///
/// OpenSMTPD cuts from the first delimiter anywhere in the value, so with `-` as the delimiter
/// `%{rcpt:strip}` of `john@my-domain.org` would give `john@my`; here the tag is only looked
/// for in the local part, and domains are left alone.
fn strip(value: &str, shape: Shape, delim: char) -> String {
    let cut_local = |local: &str| local.split(delim).next().unwrap_or_default().to_owned();
    match shape {
        Shape::Domain => value.to_owned(),
        Shape::LocalPart => cut_local(value),
        Shape::Address => match value.rsplit_once('@') {
            Some((local, domain)) => format!("{}@{domain}", cut_local(local)),
            None => cut_local(value),
        },
        Shape::Other => match value.split_once(delim) {
            Some((head, tail)) => match tail.find('@') {
                Some(at) => format!("{head}{}", &tail[at..]),
                None => head.to_owned(),
            },
            None => value.to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_ignore_case() {
        assert_eq!(Modifier::from_name("LowerCase"), Some(Modifier::Lowercase));
        assert_eq!(Modifier::from_name("RAW"), Some(Modifier::Raw));
        assert_eq!(Modifier::from_name("lower"), None);
        assert_eq!(Modifier::from_name(""), None);
    }

    #[test]
    fn case_changes_are_ascii_only() {
        let v = "User+Tag@Exämple.ORG".to_owned();
        assert_eq!(
            Modifier::Lowercase.apply(v.clone(), Shape::Address, '+'),
            "user+tag@exämple.org"
        );
        assert_eq!(
            Modifier::Uppercase.apply(v, Shape::Address, '+'),
            "USER+TAG@EXäMPLE.ORG"
        );
    }

    #[test]
    fn strip_follows_the_manual() {
        let s = |v: &str, shape| Modifier::Strip.apply(v.to_owned(), shape, '+');
        assert_eq!(
            s("User+Tag@Example.org", Shape::Address),
            "User@Example.org"
        );
        assert_eq!(
            s("user+a+b@example.org", Shape::Address),
            "user@example.org"
        );
        assert_eq!(s("user@example.org", Shape::Address), "user@example.org");
        assert_eq!(s("user+tag", Shape::LocalPart), "user");
        assert_eq!(s("+tag", Shape::LocalPart), "");
        assert_eq!(s("MAILER-DAEMON", Shape::Address), "MAILER-DAEMON");
        assert_eq!(s("", Shape::Address), "");
        assert_eq!(s("/home/a+b", Shape::Other), "/home/a");
        assert_eq!(s("x+y@z", Shape::Other), "x@z");
    }

    #[test]
    fn strip_uses_the_configured_delimiter_in_the_local_part_only() {
        let s = |v: &str, shape| Modifier::Strip.apply(v.to_owned(), shape, '-');
        assert_eq!(
            s("john-list@my-domain.org", Shape::Address),
            "john@my-domain.org"
        );
        assert_eq!(
            s("john@my-domain.org", Shape::Address),
            "john@my-domain.org"
        );
        assert_eq!(s("my-domain.org", Shape::Domain), "my-domain.org");
        assert_eq!(s("john+x-y", Shape::LocalPart), "john+x");
    }
}
