//! Fuzz target bodies for the SRS codec (used by `fuzz/`, not part of the public API).

use super::{Flavour, Srs, SrsConfig};
use crate::Time;

/// The time every fuzz run is evaluated at: 2023-11-14, stamp `G3`, as in the spec's vectors.
pub const NOW: Time = Time::from_secs(1_700_000_000);
/// The spec's test-vector key, so seeds in `corpora/srs/` verify and reach the deep paths.
pub const KEY: &str = "s3cr3t-k3y";
/// The spec's backup key.
pub const BACKUP_KEY: &str = "old-k3y";

/// Decodes arbitrary bytes (lossy UTF-8) with both flavours, [`KEY`] and [`BACKUP_KEY`] at
/// [`NOW`]; must never panic.
///
/// Also encodes the same input and checks that an ordinary (untagged) sender survives the
/// round trip, so the fuzzer exercises the encoder's handling of odd input too.
pub fn fuzz_decode(data: &[u8]) {
    let input = String::from_utf8_lossy(data);
    for flavour in [Flavour::OpenSmtpd, Flavour::Standard] {
        let config = SrsConfig {
            flavour,
            backup_key: Some(BACKUP_KEY.into()),
            ..SrsConfig::new(KEY)
        };
        let Ok(srs) = Srs::new(config) else { return };
        if let Ok(decoded) = srs.decode(&input, NOW) {
            assert!(srs.is_srs(&input), "decoded an untagged address: {input:?}");
            assert!(
                decoded.address.contains('@'),
                "decoded to a non-address: {decoded:?}"
            );
        }
        if let Ok(encoded) = srs.encode(&input, "fuzz.example", NOW)
            && !srs.is_srs(&input)
        {
            let back = srs.decode(&encoded, NOW).map(|d| d.address);
            assert_eq!(
                back.as_deref(),
                Ok(&*input),
                "round trip of {input:?} via {encoded:?}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_awkward_inputs() {
        for input in [
            &b""[..],
            b"SRS0=",
            b"SRS1=====@",
            b"SRS0=Hy2-=G3=example.org=alice@forwarder.example",
            b"srs1=\xff\xfe=\xc3=a=b@c",
            b"SRS0=\xc3\xa9\xc3\xa9=G3=a=b@x",
            b"a@b@c",
            b"SRS0=Hy2-=G3=example.org=SRS0=x@y",
        ] {
            fuzz_decode(input);
        }
    }
}
