//! SRS where routing meets it: decoding bounces to our SRS addresses when a recipient is
//! resolved (`lka_session.c`), and rewriting the sender of forwarded mail when it is relayed
//! (`mta_session.c`).
//!
//! - **Bounces.** When `srs key` is set and the envelope sender is `<>`, a recipient whose user
//!   part starts with `SRS0=` or `SRS1=` (any case) is decoded and replaced by the original
//!   sender (or, for SRS1, by the SRS0 address at the first forwarder), which is then routed
//!   through the rules as internal, `from local` mail. [`Ruleset::resolve`] does this for every
//!   address of an expansion.
//! - **Forwards.** When mail leaves through a `relay` action with `srs`, and the envelope
//!   sender is an address (not `<>`), and the recipient was rewritten by expansion (the
//!   original recipient differs from the destination), the sender is replaced by its SRS form
//!   in the domain of the **original recipient** — the forwarding address — signed with the
//!   current key. If rewriting fails (the result would be too long, the sender is odd) the
//!   sender is left unchanged, as OpenSMTPD does.
//!
//! [`Ruleset::resolve`]: super::router::Ruleset::resolve

use super::address::MailAddr;
use super::router::Ruleset;
use crate::Time;
use crate::config::Delivery;
use crate::smtp::{EnhancedCode, Reply};
use crate::srs::{Srs, SrsError};

/// Decodes `rcpt` if it is an SRS bounce: `None` when it is not one (the sender is not `<>`, or
/// the user part has no SRS tag), else the decoded address or why it does not decode.
#[must_use]
pub fn decode_bounce(
    srs: &Srs,
    sender: &MailAddr,
    rcpt: &MailAddr,
    now: Time,
) -> Option<Result<MailAddr, SrsError>> {
    let text = rcpt.to_string();
    if !sender.is_null() || !srs.is_srs(&text) {
        return None;
    }
    Some(srs.decode(&text, now).map(|d| MailAddr::parse(&d.address)))
}

/// The permanent refusal of an SRS address that does not decode, e.g.
/// `550 5.7.1 Invalid SRS hash`.
#[must_use]
pub fn refusal(error: &SrsError) -> Reply {
    let enhanced = EnhancedCode::parse_prefix(error.enhanced_status())
        .map_or(EnhancedCode::new(5, 7, 1), |(code, _)| code);
    Reply::new(550, enhanced, error.to_string())
}

/// The sender to announce when relaying forwarded mail with SRS, or `None` to keep `sender`.
///
/// `rcpt` is the recipient the client gave, `dest` the address being relayed to; they differ
/// when expansion forwarded the mail. The forwarding domain is the part of `rcpt` after its
/// first `@`, as in OpenSMTPD.
#[must_use]
pub fn forwarded_sender(
    srs: &Srs,
    sender: &MailAddr,
    rcpt: &MailAddr,
    dest: &MailAddr,
    now: Time,
) -> Option<String> {
    let sender_text = sender.to_string();
    let rcpt_text = rcpt.to_string();
    if sender.is_null() || rcpt_text == dest.to_string() {
        return None;
    }
    let (_, forwarding_domain) = rcpt_text.split_once('@')?;
    srs.encode(&sender_text, forwarding_domain, now).ok()
}

impl Ruleset {
    /// The sender to announce when `action` relays `dest` for the original recipient `rcpt`:
    /// the SRS form when the action is a relay with `srs` and `srs key` is set, `None` to keep
    /// the sender. See [`forwarded_sender`].
    #[must_use]
    pub fn relay_sender(
        &self,
        action: &str,
        sender: &MailAddr,
        rcpt: &MailAddr,
        dest: &MailAddr,
        now: Time,
    ) -> Option<String> {
        let srs = self.srs()?;
        match &self.action(action)?.delivery {
            Delivery::Relay(relay) if relay.srs => forwarded_sender(srs, sender, rcpt, dest, now),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ParseOptions, parse};
    use crate::srs::SrsConfig;

    const NOW: Time = Time::from_secs(1_700_000_000);

    fn srs() -> Srs {
        Srs::new(SrsConfig {
            backup_key: Some(b"old-k3y".to_vec()),
            ..SrsConfig::new("s3cr3t-k3y")
        })
        .unwrap()
    }

    fn addr(s: &str) -> MailAddr {
        MailAddr::parse(s)
    }

    #[test]
    fn only_bounces_to_tagged_addresses_are_decoded() {
        let s = srs();
        let valid = addr("SRS0=Hy2-=G3=example.org=alice@forwarder.example");
        assert_eq!(
            decode_bounce(&s, &MailAddr::null(), &valid, NOW),
            Some(Ok(addr("alice@example.org")))
        );
        assert_eq!(decode_bounce(&s, &addr("x@y"), &valid, NOW), None);
        assert_eq!(
            decode_bounce(&s, &MailAddr::null(), &addr("alice@forwarder.example"), NOW),
            None
        );
        let forged = addr("SRS0=XXXX=G3=example.org=alice@forwarder.example");
        let Some(Err(e)) = decode_bounce(&s, &MailAddr::null(), &forged, NOW) else {
            panic!()
        };
        assert_eq!(refusal(&e).to_string(), "550 5.7.1 Invalid SRS hash");
        let Some(Err(e)) = decode_bounce(&s, &MailAddr::null(), &addr("srs0=x@y"), NOW) else {
            panic!()
        };
        assert!(
            refusal(&e)
                .to_string()
                .starts_with("550 5.1.3 Malformed SRS address")
        );
    }

    #[test]
    fn forwarded_senders_take_the_forwarding_domain() {
        let s = srs();
        assert_eq!(
            forwarded_sender(
                &s,
                &addr("alice@example.org"),
                &addr("fwd@forwarder.example"),
                &addr("alice@mailbox.example"),
                NOW
            )
            .as_deref(),
            Some("SRS0=Hy2-=G3=example.org=alice@forwarder.example")
        );
        // Not forwarded, a bounce, or unencodable: unchanged.
        let same = addr("bob@example.net");
        assert_eq!(
            forwarded_sender(&s, &addr("a@b.example"), &same, &same, NOW),
            None
        );
        assert_eq!(
            forwarded_sender(&s, &MailAddr::null(), &addr("f@x.example"), &same, NOW),
            None
        );
        let long = addr(&format!("{}@example.org", "a".repeat(240)));
        assert_eq!(
            forwarded_sender(&s, &long, &addr("f@x.example"), &same, NOW),
            None
        );
    }

    #[test]
    fn only_relay_actions_with_srs_rewrite() {
        let text = r#"
srs key "s3cr3t-k3y"
action "srs" relay srs
action "plain" relay
action "local" mbox
match from any for any action "srs"
"#;
        let config = parse("t.conf", text, &ParseOptions::default()).unwrap();
        let rules = Ruleset::new(&config).unwrap();
        let (sender, rcpt, dest) = (
            addr("alice@example.org"),
            addr("fwd@forwarder.example"),
            addr("alice@mailbox.example"),
        );
        assert!(
            rules
                .relay_sender("srs", &sender, &rcpt, &dest, NOW)
                .is_some()
        );
        assert_eq!(
            rules.relay_sender("plain", &sender, &rcpt, &dest, NOW),
            None
        );
        assert_eq!(
            rules.relay_sender("local", &sender, &rcpt, &dest, NOW),
            None
        );
        assert_eq!(rules.relay_sender("nope", &sender, &rcpt, &dest, NOW), None);
        let without_key = parse(
            "t.conf",
            &text
                .replace("srs key \"s3cr3t-k3y\"\n", "")
                .replace(" srs\n", "\n"),
            &ParseOptions::default(),
        )
        .unwrap();
        let rules = Ruleset::new(&without_key).unwrap();
        assert_eq!(rules.relay_sender("srs", &sender, &rcpt, &dest, NOW), None);
    }
}
