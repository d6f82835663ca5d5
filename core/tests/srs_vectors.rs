//! Every test vector of `spec/srs.md` §6, plus the decode expectation table.

use petrel_core::Time;
use petrel_core::srs::{Decoded, Flavour, MalformedSrs, Srs, SrsConfig, SrsError, SrsKind};

const KEY: &str = "s3cr3t-k3y";
const BACKUP: &str = "old-k3y";
/// 2023-11-14T22:13:20Z: day 19675, 219 modulo 1024, stamp `G3`.
const NOW: Time = Time::from_secs(1_700_000_000);
const DAY_219: u64 = 19_675;

fn codec(flavour: Flavour, key: &str, backup: Option<&str>) -> Srs {
    Srs::new(SrsConfig {
        flavour,
        backup_key: backup.map(Into::into),
        ..SrsConfig::new(key)
    })
    .unwrap()
}

fn opensmtpd() -> Srs {
    codec(Flavour::OpenSmtpd, KEY, Some(BACKUP))
}

fn standard() -> Srs {
    codec(Flavour::Standard, KEY, Some(BACKUP))
}

/// Noon on the day whose stamp value is `day_mod_1024`, in the same 1024-day cycle as `NOW`.
fn on_day(day_mod_1024: u64) -> Time {
    Time::from_secs((DAY_219 - 219 + day_mod_1024) * 86_400 + 43_200)
}

fn decoded(address: &str, kind: SrsKind, backup_key: bool) -> Result<Decoded, SrsError> {
    Ok(Decoded {
        address: address.into(),
        kind,
        backup_key,
    })
}

const ALICE_SRS0: &str = "SRS0=Hy2-=G3=example.org=alice@forwarder.example";
const ALICE_SRS0_BACKUP: &str = "SRS0=FJGj=G3=example.org=alice@forwarder.example";
const ALICE_SRS1: &str = "SRS1=hk-9=forwarder.example==Hy2-=G3=example.org=alice@second.example";
const ALICE_SRS1_REWRAP: &str =
    "SRS1=saUw=forwarder.example==Hy2-=G3=example.org=alice@third.example";

#[test]
fn opensmtpd_encode_vectors() {
    let srs = opensmtpd();
    assert_eq!(
        srs.encode("alice@example.org", "forwarder.example", NOW)
            .unwrap(),
        ALICE_SRS0
    );
    assert_eq!(
        srs.encode(ALICE_SRS0, "second.example", NOW).unwrap(),
        ALICE_SRS1
    );
    assert_eq!(
        srs.encode(ALICE_SRS1, "third.example", NOW).unwrap(),
        ALICE_SRS1_REWRAP
    );
    assert_eq!(
        srs.encode("bob+tag=x@Sub.Example.COM", "fwd.example", NOW)
            .unwrap(),
        "SRS0=00GW=G3=Sub.Example.COM=bob+tag=x@fwd.example"
    );
}

#[test]
fn opensmtpd_encode_with_backup_key_as_current() {
    let old = codec(Flavour::OpenSmtpd, BACKUP, None);
    assert_eq!(
        old.encode("alice@example.org", "forwarder.example", NOW)
            .unwrap(),
        ALICE_SRS0_BACKUP
    );
}

#[test]
fn encoding_always_signs_with_the_current_key() {
    // The backup key only verifies: a codec holding both still mints with the current one.
    let srs = opensmtpd();
    assert_eq!(
        srs.encode("alice@example.org", "forwarder.example", NOW)
            .unwrap(),
        ALICE_SRS0
    );
}

#[test]
fn live_opensmtpd_vectors() {
    // Produced by a running OpenSMTPD 6.8.0p2 (spec §6.1, marked live).
    let live_now = Time::from_secs(1_795_310_452);
    let srs = opensmtpd();
    let bob = "SRS0=EqAm=JL=sender.test=bob@local.test";
    let a = "SRS0=9j3d=JL=local.test=a@local.test";
    assert_eq!(
        srs.encode("bob@sender.test", "local.test", live_now)
            .unwrap(),
        bob
    );
    assert_eq!(
        srs.encode("a@local.test", "local.test", live_now).unwrap(),
        a
    );
    assert_eq!(
        srs.decode(bob, live_now),
        decoded("bob@sender.test", SrsKind::Srs0, false)
    );
    assert_eq!(
        srs.decode(a, live_now),
        decoded("a@local.test", SrsKind::Srs0, false)
    );
}

#[test]
fn opensmtpd_decode_table() {
    let srs = opensmtpd();
    assert_eq!(
        srs.decode(ALICE_SRS0, NOW),
        decoded("alice@example.org", SrsKind::Srs0, false)
    );
    assert_eq!(
        srs.decode(ALICE_SRS0_BACKUP, NOW),
        decoded("alice@example.org", SrsKind::Srs0, true)
    );
    assert_eq!(
        srs.decode("SRS0=XXXX=G3=example.org=alice@forwarder.example", NOW),
        Err(SrsError::BadHash)
    );
    // Hashes compare case-sensitively; a case-smashed address is refused.
    assert_eq!(
        srs.decode("srs0=hy2-=g3=example.org=alice@forwarder.example", NOW),
        Err(SrsError::BadHash)
    );
    assert_eq!(
        srs.decode(ALICE_SRS1, NOW),
        decoded(ALICE_SRS0, SrsKind::Srs1, false)
    );
    assert_eq!(
        srs.decode(ALICE_SRS1_REWRAP, NOW),
        decoded(ALICE_SRS0, SrsKind::Srs1, false)
    );
}

#[test]
fn backup_key_is_optional() {
    let srs = codec(Flavour::OpenSmtpd, KEY, None);
    assert_eq!(srs.decode(ALICE_SRS0_BACKUP, NOW), Err(SrsError::BadHash));
}

#[test]
fn opensmtpd_decode_timestamp_window() {
    let srs = opensmtpd();
    assert_eq!(on_day(219), Time::from_secs(DAY_219 * 86_400 + 43_200));
    assert!(
        srs.decode(ALICE_SRS0, on_day(223)).is_ok(),
        "219 >= 223 - 4"
    );
    assert_eq!(srs.decode(ALICE_SRS0, on_day(224)), Err(SrsError::Expired));
    assert!(
        srs.decode(ALICE_SRS0, on_day(218)).is_ok(),
        "one day of future tolerance"
    );
    assert_eq!(srs.decode(ALICE_SRS0, on_day(217)), Err(SrsError::Expired));
    // The SRS1 check applies the same window to the inner stamp.
    assert!(srs.decode(ALICE_SRS1, on_day(223)).is_ok());
    assert_eq!(srs.decode(ALICE_SRS1, on_day(224)), Err(SrsError::Expired));
    assert_eq!(srs.decode(ALICE_SRS1, on_day(217)), Err(SrsError::Expired));
    // 1024 days later the same stamp is valid again: the day counter has 10 bits.
    assert!(srs.decode(ALICE_SRS0, on_day(219 + 1024)).is_ok());
}

#[test]
fn ttl_is_configurable() {
    let srs = Srs::new(SrsConfig {
        ttl_days: 10,
        ..SrsConfig::new(KEY)
    })
    .unwrap();
    assert!(srs.decode(ALICE_SRS0, on_day(229)).is_ok());
    assert_eq!(srs.decode(ALICE_SRS0, on_day(230)), Err(SrsError::Expired));
}

#[test]
fn opensmtpd_decode_rejects_a_bad_stamp_with_a_good_hash() {
    // A lower-case stamp hashed correctly: the hash passes, the stamp character does not.
    let srs = opensmtpd();
    let lower = srs
        .encode("alice@example.org", "forwarder.example", NOW)
        .unwrap()
        .replace("G3", "g3");
    let body = &lower["SRS0=HHHH=".len()..];
    let hash = &sha1_b64url(KEY, body)[..4];
    let forged = format!("SRS0={hash}={body}");
    assert_eq!(
        srs.decode(&forged, NOW),
        Err(SrsError::Malformed(MalformedSrs::Timestamp))
    );
}

#[test]
fn standard_vectors() {
    let srs = standard();
    let alice = "SRS0=Cn9U=G3=example.org=alice@forwarder.example";
    let alice_srs1 = "SRS1=7QVk=forwarder.example==Cn9U=G3=example.org=alice@second.example";
    assert_eq!(
        srs.encode("alice@example.org", "forwarder.example", NOW)
            .unwrap(),
        alice
    );
    assert_eq!(
        srs.encode(alice, "second.example", NOW).unwrap(),
        alice_srs1
    );
    assert_eq!(
        srs.encode("Alice@Example.ORG", "forwarder.example", NOW)
            .unwrap(),
        "SRS0=Cn9U=G3=Example.ORG=Alice@forwarder.example"
    );
    assert_eq!(
        srs.decode(alice, NOW),
        decoded("alice@example.org", SrsKind::Srs0, false)
    );
    assert_eq!(
        srs.decode(alice_srs1, NOW),
        decoded(alice, SrsKind::Srs1, false)
    );
    // The forwarder domain is not hashed in this flavour, so re-wrapping keeps the hash.
    let rewrapped = srs.encode(alice_srs1, "third.example", NOW).unwrap();
    assert_eq!(
        rewrapped,
        "SRS1=7QVk=forwarder.example==Cn9U=G3=example.org=alice@third.example"
    );
}

#[test]
fn standard_decoding_survives_case_smashing() {
    let srs = standard();
    assert_eq!(
        srs.decode("srs0=cn9u=g3=example.org=alice@forwarder.example", NOW),
        decoded("alice@example.org", SrsKind::Srs0, false)
    );
    assert_eq!(
        srs.decode("SRS0=CN9U=G3=EXAMPLE.ORG=ALICE@FORWARDER.EXAMPLE", NOW),
        decoded("ALICE@EXAMPLE.ORG", SrsKind::Srs0, false)
    );
    assert_eq!(
        srs.decode("SRS0=Cn9V=G3=example.org=alice@forwarder.example", NOW),
        Err(SrsError::BadHash)
    );
}

#[test]
fn standard_accepts_libsrs2_separators_and_no_future_stamps() {
    let srs = standard();
    let plus = srs
        .encode("alice@example.org", "forwarder.example", NOW)
        .unwrap()
        .replacen('=', "+", 1);
    assert!(plus.starts_with("SRS0+Cn9U="), "{plus}");
    assert_eq!(
        srs.decode(&plus, NOW),
        decoded("alice@example.org", SrsKind::Srs0, false)
    );
    // libsrs2 keeps the sender's separator when wrapping, and gives it back on decoding.
    let wrapped = srs.encode(&plus, "second.example", NOW).unwrap();
    assert_eq!(
        wrapped,
        "SRS1=3LUN=forwarder.example=+Cn9U=G3=example.org=alice@second.example"
    );
    assert_eq!(
        srs.decode(&wrapped, NOW),
        decoded(&plus, SrsKind::Srs1, false)
    );
    assert_eq!(srs.decode(&plus, on_day(218)), Err(SrsError::Expired));
}

#[test]
fn flavours_do_not_verify_each_other() {
    assert_eq!(
        standard().decode(ALICE_SRS0, NOW),
        Err(SrsError::BadHash),
        "OpenSMTPD address under libsrs2 rules"
    );
    assert_eq!(
        opensmtpd().decode("SRS0=Cn9U=G3=example.org=alice@forwarder.example", NOW),
        Err(SrsError::BadHash)
    );
}

#[test]
fn decode_errors_are_distinguished() {
    let srs = opensmtpd();
    assert_eq!(srs.decode("alice@example.org", NOW), Err(SrsError::NotSrs));
    assert_eq!(
        srs.decode("SRS0=Hy2-", NOW),
        Err(SrsError::Malformed(MalformedSrs::NoDomain))
    );
    assert_eq!(
        srs.decode("SRS0=Hy2-=G3=example.org@forwarder.example", NOW),
        Err(SrsError::Malformed(MalformedSrs::Separator))
    );
    assert_eq!(srs.decode(ALICE_SRS0, on_day(300)), Err(SrsError::Expired));
    // The forwarder domain is covered by the OpenSMTPD hash.
    assert_eq!(
        srs.decode("SRS0=Hy2-=G3=example.org=alice@elsewhere.example", NOW),
        Err(SrsError::BadHash)
    );
}

/// Independent re-statement of the OpenSMTPD hash (spec §7 `h`) for forging test input.
fn sha1_b64url(key: &str, data: &str) -> String {
    use base64::Engine as _;
    use sha1::Digest as _;
    let digest = sha1::Sha1::new()
        .chain_update(key)
        .chain_update(data)
        .finalize();
    base64::engine::general_purpose::URL_SAFE.encode(digest)
}
