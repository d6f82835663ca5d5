//! Property tests: encoding then decoding gives the sender back, for any key, time and flavour,
//! and SRS1 chains unwind one hop at a time.

use std::time::Duration;

use petrel_core::Time;
use petrel_core::srs::{Flavour, Srs, SrsConfig, SrsError, SrsKind, fuzzing};
use proptest::prelude::*;

const DAY: Duration = Duration::from_secs(86_400);

fn flavour() -> impl Strategy<Value = Flavour> {
    prop_oneof![Just(Flavour::OpenSmtpd), Just(Flavour::Standard)]
}

fn key() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 1..48)
}

/// Any time up to the year 2100, to the millisecond.
fn time() -> impl Strategy<Value = Time> {
    (0u64..4_102_444_800_000).prop_map(Time::from_millis)
}

/// Local parts with the characters SRS has to survive: `=`, `+`, dots, dashes, and UTF-8.
fn local_part() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9][a-zA-Z0-9.+=_-]{0,30}",
        "[a-z]{1,8}\\+[a-z0-9=+.-]{0,12}",
        "[a-z]{1,5}(=[a-z]{0,5}){1,3}",
        "[^@\\s]{1,12}",
    ]
}

fn domain() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9]([a-zA-Z0-9-]{0,10}[a-zA-Z0-9])?(\\.[a-zA-Z0-9]{1,10}){0,3}"
}

fn codec(flavour: Flavour, key: &[u8], backup: Option<&[u8]>, ttl_days: u16) -> Srs {
    Srs::new(SrsConfig {
        flavour,
        key: key.to_vec(),
        backup_key: backup.map(<[u8]>::to_vec),
        ttl_days,
    })
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn plain_senders_round_trip_for_the_whole_ttl(
        flavour in flavour(), key in key(), now in time(), ttl in 1u16..40,
        local in local_part(), sender_domain in domain(), fwd in domain(),
    ) {
        let sender = format!("{local}@{sender_domain}");
        let srs = codec(flavour, &key, None, ttl);
        prop_assume!(!srs.is_srs(&sender));
        let encoded = srs.encode(&sender, &fwd, now).unwrap();
        prop_assert!(encoded.starts_with("SRS0="), "{}", encoded);
        let suffix = format!("@{fwd}");
        prop_assert!(encoded.ends_with(&suffix), "{}", encoded);
        for days in 0..=u32::from(ttl) {
            let decoded = srs.decode(&encoded, now + DAY * days).unwrap();
            prop_assert_eq!(&decoded.address, &sender);
            prop_assert_eq!(decoded.kind, SrsKind::Srs0);
            prop_assert!(!decoded.backup_key);
        }
        prop_assert_eq!(srs.decode(&encoded, now + DAY * (u32::from(ttl) + 1)), Err(SrsError::Expired));
    }

    #[test]
    fn backup_key_verifies_addresses_minted_before_rotation(
        flavour in flavour(), old in key(), new in key(), now in time(),
        local in local_part(), sender_domain in domain(), fwd in domain(),
    ) {
        let sender = format!("{local}@{sender_domain}");
        let before = codec(flavour, &old, None, 4);
        prop_assume!(!before.is_srs(&sender));
        let encoded = before.encode(&sender, &fwd, now).unwrap();
        let after = codec(flavour, &new, Some(&old), 4);
        let decoded = after.decode(&encoded, now + DAY).unwrap();
        prop_assert_eq!(&decoded.address, &sender);
        // Four hash characters can collide; the flag says which key matched first.
        let new_key_alone = codec(flavour, &new, None, 4).decode(&encoded, now + DAY);
        prop_assert_eq!(decoded.backup_key, new_key_alone.is_err());
    }

    #[test]
    fn srs1_chains_unwind_one_hop_at_a_time(
        flavour in flavour(),
        keys in prop::array::uniform4(key()),
        domains in prop::array::uniform4(domain()),
        now in time(),
        local in local_part(), sender_domain in domain(),
    ) {
        let sender = format!("{local}@{sender_domain}");
        // Each forwarder has its own key and domain; mail goes sender -> f0 -> f1 -> f2 -> f3.
        let hops: Vec<Srs> = keys.iter().map(|k| codec(flavour, k, None, 4)).collect();
        prop_assume!(!hops[0].is_srs(&sender));
        let mut chain = vec![sender.clone()];
        for (hop, fwd) in hops.iter().zip(&domains) {
            let next = hop.encode(chain.last().unwrap(), fwd, now).unwrap();
            chain.push(next);
        }
        let first = &chain[1];
        prop_assert!(first.starts_with("SRS0="), "{}", first);
        for later in &chain[2..] {
            prop_assert!(later.starts_with("SRS1="), "{}", later);
            // Chains never grow: every SRS1 names the first forwarder and carries its SRS0.
            let inner = format!("={}=", domains[0]);
            prop_assert!(later.contains(&inner), "{}", later);
        }
        // A bounce to any later hop goes straight back to the first forwarder ...
        for (i, later) in chain.iter().enumerate().skip(2) {
            let decoded = hops[i - 1].decode(later, now + DAY).unwrap();
            prop_assert_eq!(&decoded.address, first);
            prop_assert_eq!(decoded.kind, SrsKind::Srs1);
        }
        // ... which gives back the original sender.
        let decoded = hops[0].decode(first, now + DAY).unwrap();
        prop_assert_eq!(&decoded.address, &sender);
    }

    #[test]
    fn standard_flavour_decodes_case_smashed_addresses(
        key in key(), now in time(), local in local_part(), sender_domain in domain(), fwd in domain(),
    ) {
        let sender = format!("{local}@{sender_domain}");
        let srs = codec(Flavour::Standard, &key, None, 4);
        prop_assume!(!srs.is_srs(&sender));
        let encoded = srs.encode(&sender, &fwd, now).unwrap();
        for smashed in [encoded.to_ascii_lowercase(), encoded.to_ascii_uppercase()] {
            let decoded = srs.decode(&smashed, now).unwrap();
            prop_assert!(decoded.address.eq_ignore_ascii_case(&sender));
        }
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(data in prop::collection::vec(any::<u8>(), 0..96)) {
        fuzzing::fuzz_decode(&data);
    }

    #[test]
    fn decoding_near_misses_never_panics(
        tag in "(?i)srs[01][=+-]", rest in "[A-Za-z0-9=+_@.-]{0,40}",
    ) {
        fuzzing::fuzz_decode(format!("{tag}{rest}").as_bytes());
    }
}
