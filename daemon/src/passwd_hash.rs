//! Password hashes for credentials tables (`encrypt [PASSWORD]`).
//!
//! [`hash`] turns a password into the crypt(3) string a credentials table holds next to the
//! user name (`alice  $6$…`), with a fresh random salt each time:
//!
//! ```
//! use petrel_daemon::passwd_hash::{self, Scheme};
//!
//! let line = passwd_hash::hash("s3cret", Scheme::default()).unwrap();
//! assert!(line.starts_with("$6$"));
//! assert_eq!(petrel_daemon::auth::verify_password("s3cret", &line), Ok(true));
//! ```
//!
//! The default is SHA-512-crypt (`$6$`, the default 5000 rounds), what `smtpctl encrypt` makes
//! on systems whose crypt(3) is glibc's; bcrypt (`$2b$`, cost [`BCRYPT_COST`]) is what it
//! makes on OpenBSD. Both are verified by the daemon's AUTH ([`crate::auth::verify_password`]).
//!
//! A password that a crypt(3) implementation could not take whole is refused rather than hashed
//! into something that would not verify elsewhere: an empty password, one with a NUL byte
//! (crypt(3) stops at it), and for bcrypt one longer than 72 bytes (bcrypt ignores the rest).

use std::fmt;
use std::str::FromStr;

use sha_crypt::{PasswordHasher as _, ShaCrypt};

use crate::auth::{BCRYPT_COST, PasswordScheme};

/// The rounds of the SHA-512-crypt hashes [`hash`] makes: crypt(3)'s default.
const SHA512_ROUNDS: u32 = 5000;

/// The longest password bcrypt uses whole, in bytes.
pub const BCRYPT_MAX_PASSWORD: usize = 72;

/// How to hash a password.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// SHA-512-crypt (`$6$`), 5000 rounds, 16 characters of salt. The default.
    #[default]
    Sha512Crypt,
    /// bcrypt (`$2b$`), cost [`BCRYPT_COST`].
    Bcrypt,
}

impl Scheme {
    /// The name [`FromStr`] reads: `sha512-crypt` or `bcrypt`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Sha512Crypt => "sha512-crypt",
            Scheme::Bcrypt => "bcrypt",
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Scheme {
    type Err = HashError;

    /// `sha512-crypt` (or `sha512`), `bcrypt` (or `blowfish`), in any case.
    fn from_str(s: &str) -> Result<Scheme, HashError> {
        match s.to_ascii_lowercase().as_str() {
            "sha512-crypt" | "sha512" => Ok(Scheme::Sha512Crypt),
            "bcrypt" | "blowfish" => Ok(Scheme::Bcrypt),
            _ => Err(HashError::UnknownScheme(s.to_owned())),
        }
    }
}

impl From<Scheme> for PasswordScheme {
    fn from(scheme: Scheme) -> PasswordScheme {
        match scheme {
            Scheme::Sha512Crypt => PasswordScheme::Sha512Crypt,
            Scheme::Bcrypt => PasswordScheme::Bcrypt,
        }
    }
}

/// Why a password was not hashed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    /// The password is empty.
    #[error("the password is empty")]
    Empty,
    /// The password holds a NUL byte, where crypt(3) would stop reading it.
    #[error("the password contains a NUL byte, which crypt(3) cannot take")]
    Nul,
    /// bcrypt would use only the first 72 bytes of the password.
    #[error(
        "the password is {0} bytes long, and bcrypt uses only the first 72: \
         choose a shorter one or sha512-crypt"
    )]
    TooLong(usize),
    /// The system gave no random bytes for the salt.
    #[error("no random bytes for the salt from the system")]
    Random,
    /// A scheme name [`Scheme::from_str`] does not know.
    #[error("unknown password scheme \"{0}\" (sha512-crypt or bcrypt)")]
    UnknownScheme(String),
}

/// Hashes `password` with a fresh random salt into the crypt(3) form of `scheme`, ready for
/// a credentials table. Two calls with the same password give different hashes.
///
/// # Errors
/// An empty password, a NUL byte in it, more than 72 bytes for bcrypt, or no random salt.
pub fn hash(password: &str, scheme: Scheme) -> Result<String, HashError> {
    if password.is_empty() {
        return Err(HashError::Empty);
    }
    if password.contains('\0') {
        return Err(HashError::Nul);
    }
    if scheme == Scheme::Bcrypt && password.len() > BCRYPT_MAX_PASSWORD {
        return Err(HashError::TooLong(password.len()));
    }
    let mut salt = [0u8; 16];
    crate::tls::provider()
        .secure_random
        .fill(&mut salt)
        .map_err(|_| HashError::Random)?;
    match scheme {
        // bcrypt hashes the password with its terminating NUL, at most 72 bytes in all: a
        // 72-byte password loses only the NUL, as in OpenBSD's bcrypt(3), so the truncating
        // function is the right one after the length check above.
        Scheme::Bcrypt => bcrypt::hash_with_salt(password, BCRYPT_COST, salt)
            .map(|parts| parts.format_for_version(bcrypt::Version::TwoB))
            // The cost is a valid constant and the salt is given: nothing can fail.
            .map_err(|_| HashError::Random),
        // 12 random bytes make the 16 characters of salt the scheme allows. The default
        // rounds are left implicit (`$6$SALT$…`, as glibc writes them): an explicit
        // `rounds=5000` gives the same hash.
        Scheme::Sha512Crypt => ShaCrypt::SHA512
            .hash_password_with_salt(password.as_bytes(), &salt[..12])
            .map(|h| {
                h.to_string()
                    .replacen(&format!("$6$rounds={SHA512_ROUNDS}$"), "$6$", 1)
            })
            .map_err(|_| HashError::Random),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::verify_password;

    #[test]
    fn every_hash_verifies_with_the_auth_verifier() {
        for scheme in [Scheme::Sha512Crypt, Scheme::Bcrypt] {
            for password in ["s3cret", "pässwörd with spaces", &"x".repeat(72)] {
                let h = hash(password, scheme).unwrap();
                assert_eq!(
                    PasswordScheme::of_hash(&h),
                    Some(scheme.into()),
                    "{scheme}: {h}"
                );
                assert_eq!(verify_password(password, &h), Ok(true), "{scheme}: {h}");
                assert_eq!(verify_password("wrong", &h), Ok(false), "{scheme}: {h}");
            }
        }
    }

    #[test]
    fn the_same_password_hashes_differently_each_time() {
        for scheme in [Scheme::Sha512Crypt, Scheme::Bcrypt] {
            let a = hash("same", scheme).unwrap();
            let b = hash("same", scheme).unwrap();
            assert_ne!(a, b, "{scheme}");
            assert_eq!(verify_password("same", &a), Ok(true));
            assert_eq!(verify_password("same", &b), Ok(true));
        }
    }

    #[test]
    fn the_default_is_sha512_crypt_with_default_rounds() {
        assert_eq!(Scheme::default(), Scheme::Sha512Crypt);
        let h = hash("pw", Scheme::default()).unwrap();
        // `$6$SALT$HASH`: no `rounds=` field, a 16-character salt, an 86-character hash.
        let fields: Vec<&str> = h.split('$').collect();
        assert_eq!(fields.len(), 4, "{h}");
        assert_eq!(fields[1], "6");
        assert_eq!(fields[2].len(), 16, "{h}");
        assert_eq!(fields[3].len(), 86, "{h}");
        // The same hash with the rounds written out.
        let explicit = format!("$6$rounds=5000${}${}", fields[2], fields[3]);
        assert_eq!(verify_password("pw", &explicit), Ok(true));
        let b = hash("pw", Scheme::Bcrypt).unwrap();
        assert!(b.starts_with(&format!("$2b${BCRYPT_COST}$")), "{b}");
        assert_eq!(b.len(), 60);
    }

    #[test]
    fn passwords_crypt_cannot_take_are_refused() {
        assert_eq!(hash("", Scheme::Sha512Crypt), Err(HashError::Empty));
        assert_eq!(hash("a\0b", Scheme::Bcrypt), Err(HashError::Nul));
        assert_eq!(
            hash(&"x".repeat(73), Scheme::Bcrypt),
            Err(HashError::TooLong(73))
        );
        // SHA-512-crypt has no length limit.
        let long = "x".repeat(200);
        let h = hash(&long, Scheme::Sha512Crypt).unwrap();
        assert_eq!(verify_password(&long, &h), Ok(true));
        assert_eq!(
            HashError::TooLong(73).to_string(),
            "the password is 73 bytes long, and bcrypt uses only the first 72: \
             choose a shorter one or sha512-crypt"
        );
    }

    #[test]
    fn scheme_names() {
        assert_eq!("SHA512-crypt".parse::<Scheme>(), Ok(Scheme::Sha512Crypt));
        assert_eq!("sha512".parse::<Scheme>(), Ok(Scheme::Sha512Crypt));
        assert_eq!("bcrypt".parse::<Scheme>(), Ok(Scheme::Bcrypt));
        assert_eq!("blowfish".parse::<Scheme>(), Ok(Scheme::Bcrypt));
        assert_eq!(
            "md5".parse::<Scheme>(),
            Err(HashError::UnknownScheme("md5".into()))
        );
        for scheme in [Scheme::Sha512Crypt, Scheme::Bcrypt] {
            assert_eq!(scheme.to_string().parse::<Scheme>(), Ok(scheme));
        }
    }
}
