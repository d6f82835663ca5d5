//! Splitting SRS addresses into their fields (no hashing, no clock).
//!
//! ```text
//! SRS0<sep>HHHH<sep>TT<sep>orig-domain=orig-local@forwarder
//! SRS1<sep>HHHH<sep>first-forwarder=<sep>HHHH<sep>TT<sep>orig-domain=orig-local@forwarder
//! ```
//!
//! Fields are split from the left a fixed number of times, so the original local part (last)
//! may itself contain `=`; the forwarder domain is after the last `@`.

use super::error::{MalformedSrs, SrsError};
use super::hash::HASH_LEN;

/// Separators accepted where SRS expects one after the tag, the hash or the stamp. OpenSMTPD
/// writes `=` only; libsrs2 can be configured to write `+` or `-`.
pub(crate) const SEPARATORS: &[u8] = b"=+-";

/// Length of `SRS0` / `SRS1` without the separator.
const TAG_LEN: usize = 4;
const STAMP_LEN: usize = 2;

/// Which of the two address forms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tag {
    Srs0,
    Srs1,
}

/// `HHHH<sep>TT<sep>domain=local`: an SRS0 local part after `SRS0<sep>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Srs0Tail<'a> {
    pub hash: &'a str,
    pub stamp: &'a str,
    pub domain: &'a str,
    pub local: &'a str,
}

/// `HHHH<sep>first-forwarder=<inner>`: an SRS1 local part after `SRS1<sep>`, where `inner` is a
/// separator followed by the [`Srs0Tail`] minted by the first forwarder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Srs1Tail<'a> {
    pub hash: &'a str,
    pub first_domain: &'a str,
    pub inner: &'a str,
    pub inner_tail: Srs0Tail<'a>,
}

/// A whole SRS address split into its fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SrsAddress<'a> {
    Srs0 { tail: Srs0Tail<'a>, body: &'a str },
    Srs1 { tail: Srs1Tail<'a>, body: &'a str },
}

impl<'a> SrsAddress<'a> {
    /// The hash field as found in the address.
    pub(crate) fn hash(&self) -> &'a str {
        match self {
            SrsAddress::Srs0 { tail, .. } => tail.hash,
            SrsAddress::Srs1 { tail, .. } => tail.hash,
        }
    }

    /// Everything after `SRSx<sep>HHHH<sep>`, `@forwarder` included: what OpenSMTPD hashes.
    pub(crate) fn body(&self) -> &'a str {
        match self {
            SrsAddress::Srs0 { body, .. } | SrsAddress::Srs1 { body, .. } => body,
        }
    }
}

/// The tag and separator `address` starts with, if it is one of `seps` (ASCII case ignored).
pub(crate) fn tag(address: &str, seps: &[u8]) -> Option<Tag> {
    let bytes = address.as_bytes();
    let sep = *bytes.get(TAG_LEN)?;
    if !seps.contains(&sep) {
        return None;
    }
    let head = &bytes[..TAG_LEN];
    if head.eq_ignore_ascii_case(b"SRS0") {
        Some(Tag::Srs0)
    } else if head.eq_ignore_ascii_case(b"SRS1") {
        Some(Tag::Srs1)
    } else {
        None
    }
}

/// Splits `address` at its last `@` into local part and domain, both non-empty.
pub(crate) fn split_address(address: &str) -> Option<(&str, &str)> {
    let (local, domain) = address.rsplit_once('@')?;
    (!local.is_empty() && !domain.is_empty()).then_some((local, domain))
}

/// Splits an SRS address whose tag is one of `prefix_seps`.
pub(crate) fn parse<'a>(address: &'a str, prefix_seps: &[u8]) -> Result<SrsAddress<'a>, SrsError> {
    let tag = tag(address, prefix_seps).ok_or(SrsError::NotSrs)?;
    let (local, _) = split_address(address).ok_or(MalformedSrs::NoDomain)?;
    // The tag and its separator are ASCII, so TAG_LEN + 1 is a character boundary.
    let tail = &local[TAG_LEN + 1..];
    let body_start = TAG_LEN + 1 + HASH_LEN + 1;
    Ok(match tag {
        Tag::Srs0 => {
            let tail = srs0_tail(tail)?;
            // The hash and its separator were checked to be ASCII.
            SrsAddress::Srs0 {
                tail,
                body: &address[body_start..],
            }
        }
        Tag::Srs1 => {
            let tail = srs1_tail(tail)?;
            SrsAddress::Srs1 {
                tail,
                body: &address[body_start..],
            }
        }
    })
}

/// Splits `HHHH<sep>rest`, checking the hash field looks like base64 (either alphabet).
fn hash_field(s: &str) -> Result<(&str, &str), MalformedSrs> {
    let bytes = s.as_bytes();
    if bytes.len() <= HASH_LEN {
        return Err(MalformedSrs::Truncated);
    }
    let is_b64 = |c: &u8| c.is_ascii_alphanumeric() || b"+/-_".contains(c);
    if !bytes[..HASH_LEN].iter().all(is_b64) {
        return Err(MalformedSrs::HashField);
    }
    if !SEPARATORS.contains(&bytes[HASH_LEN]) {
        return Err(MalformedSrs::Separator);
    }
    // All checked bytes are ASCII, hence character boundaries.
    Ok((&s[..HASH_LEN], &s[HASH_LEN + 1..]))
}

/// Splits the local part of an SRS0 address after `SRS0<sep>`.
pub(crate) fn srs0_tail(s: &str) -> Result<Srs0Tail<'_>, MalformedSrs> {
    let (hash, rest) = hash_field(s)?;
    let bytes = rest.as_bytes();
    if bytes.len() <= STAMP_LEN {
        return Err(MalformedSrs::Truncated);
    }
    if !SEPARATORS.contains(&bytes[STAMP_LEN]) {
        return Err(MalformedSrs::Separator);
    }
    // The byte at STAMP_LEN is ASCII, so both slices below start and end on boundaries.
    let stamp = &rest[..STAMP_LEN];
    let (domain, local) = rest[STAMP_LEN + 1..]
        .split_once('=')
        .ok_or(MalformedSrs::Separator)?;
    if domain.is_empty() || local.is_empty() {
        return Err(MalformedSrs::EmptyPart);
    }
    Ok(Srs0Tail {
        hash,
        stamp,
        domain,
        local,
    })
}

/// Splits the local part of an SRS1 address after `SRS1<sep>`.
pub(crate) fn srs1_tail(s: &str) -> Result<Srs1Tail<'_>, MalformedSrs> {
    let (hash, rest) = hash_field(s)?;
    let (first_domain, inner) = rest.split_once('=').ok_or(MalformedSrs::Separator)?;
    if first_domain.is_empty() {
        return Err(MalformedSrs::EmptyPart);
    }
    let Some((&sep, _)) = inner.as_bytes().split_first() else {
        return Err(MalformedSrs::Truncated);
    };
    if !SEPARATORS.contains(&sep) {
        return Err(MalformedSrs::Separator);
    }
    let inner_tail = srs0_tail(&inner[1..])?;
    Ok(Srs1Tail {
        hash,
        first_domain,
        inner,
        inner_tail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_is_case_insensitive_and_needs_an_allowed_separator() {
        assert_eq!(tag("SRS0=x", b"="), Some(Tag::Srs0));
        assert_eq!(tag("srs1=x", b"="), Some(Tag::Srs1));
        assert_eq!(tag("SRS0+x", b"="), None);
        assert_eq!(tag("SRS0+x", SEPARATORS), Some(Tag::Srs0));
        assert_eq!(tag("SRS2=x", SEPARATORS), None);
        assert_eq!(tag("SRS0", SEPARATORS), None);
        assert_eq!(tag("", SEPARATORS), None);
        assert_eq!(tag("SRé0=", SEPARATORS), None);
    }

    #[test]
    fn parses_srs0_with_equals_in_local_part() {
        let a = "SRS0=00GW=G3=Sub.Example.COM=bob+tag=x@fwd.example";
        let SrsAddress::Srs0 { tail, body } = parse(a, b"=").unwrap() else {
            panic!("not SRS0")
        };
        assert_eq!(
            tail,
            Srs0Tail {
                hash: "00GW",
                stamp: "G3",
                domain: "Sub.Example.COM",
                local: "bob+tag=x"
            }
        );
        assert_eq!(body, "G3=Sub.Example.COM=bob+tag=x@fwd.example");
    }

    #[test]
    fn parses_srs1_and_its_inner_srs0() {
        let a = "SRS1=hk-9=forwarder.example==Hy2-=G3=example.org=alice@second.example";
        let SrsAddress::Srs1 { tail, body } = parse(a, b"=").unwrap() else {
            panic!("not SRS1")
        };
        assert_eq!(tail.hash, "hk-9");
        assert_eq!(tail.first_domain, "forwarder.example");
        assert_eq!(tail.inner, "=Hy2-=G3=example.org=alice");
        assert_eq!(tail.inner_tail.stamp, "G3");
        assert_eq!(
            body,
            "forwarder.example==Hy2-=G3=example.org=alice@second.example"
        );
    }

    #[test]
    fn reports_what_is_wrong() {
        let m = |a: &str| parse(a, SEPARATORS).unwrap_err();
        assert_eq!(m("alice@example.org"), SrsError::NotSrs);
        assert_eq!(
            m("SRS0=Hy2-=G3=example.org=alice"),
            MalformedSrs::NoDomain.into()
        );
        assert_eq!(
            m("SRS0=Hy2-=G3=example.org=alice@"),
            MalformedSrs::NoDomain.into()
        );
        assert_eq!(m("SRS0=Hy2@x"), MalformedSrs::Truncated.into());
        assert_eq!(m("SRS0=Hy2-=G@x"), MalformedSrs::Truncated.into());
        assert_eq!(m("SRS0=H.2-=G3=a=b@x"), MalformedSrs::HashField.into());
        assert_eq!(m("SRS0=Hy2-xG3=a=b@x"), MalformedSrs::Separator.into());
        assert_eq!(m("SRS0=Hy2-=G3xa=b@x"), MalformedSrs::Separator.into());
        assert_eq!(
            m("SRS0=Hy2-=G3=example.org@x"),
            MalformedSrs::Separator.into()
        );
        assert_eq!(m("SRS0=Hy2-=G3==alice@x"), MalformedSrs::EmptyPart.into());
        assert_eq!(
            m("SRS0=Hy2-=G3=example.org=@x"),
            MalformedSrs::EmptyPart.into()
        );
        assert_eq!(
            m("SRS1=hk-9=forwarder.example@x"),
            MalformedSrs::Separator.into()
        );
        assert_eq!(
            m("SRS1=hk-9==Hy2-=G3=a=b@x"),
            MalformedSrs::EmptyPart.into()
        );
        assert_eq!(m("SRS1=hk-9=f=@x"), MalformedSrs::Truncated.into());
        assert_eq!(
            m("SRS1=hk-9=f=xHy2-=G3=a=b@x"),
            MalformedSrs::Separator.into()
        );
        assert_eq!(
            m("SRS1=hk-9=f==Hy2-=G3=a@x"),
            MalformedSrs::Separator.into()
        );
    }

    #[test]
    fn multibyte_characters_never_split_a_field_boundary() {
        for a in ["SRS0=ééé=G3=a=b@x", "SRS0=Hy2-=Gé=a@x", "SRS1=Hy2-=é=é@x"] {
            assert!(parse(a, SEPARATORS).is_err(), "{a}");
        }
        let SrsAddress::Srs0 { tail, .. } = parse("SRS0=Hy2-=é=dø=ü@x", SEPARATORS).unwrap()
        else {
            panic!("not SRS0")
        };
        assert_eq!((tail.stamp, tail.domain, tail.local), ("é", "dø", "ü"));
    }
}
