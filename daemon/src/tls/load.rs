//! Loading certificates, private keys and CA bundles from PEM files, with errors that name the
//! file and say what is wrong with it: these errors are printed at start, to an administrator
//! who must be able to fix the configuration from the message alone.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why TLS material or a TLS setting cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file cannot be read.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A file is not valid PEM.
    #[error("{}: invalid PEM: {reason}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What the PEM parser said.
        reason: String,
    },
    /// A certificate or CA file holds no certificate.
    #[error("{}: no certificate found (expected PEM \"BEGIN CERTIFICATE\" blocks)", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// A certificate cannot be used as a trust anchor.
    #[error("{}: invalid CA certificate: {reason}", path.display())]
    BadCertificate {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A key file holds no usable private key.
    #[error(
        "{}: no private key found (expected an unencrypted PKCS#8, RSA or EC private key in PEM)",
        path.display()
    )]
    NoKey {
        /// The file.
        path: PathBuf,
    },
    /// A key file holds a key protected by a passphrase, which a daemon cannot type.
    #[error("{}: the private key is encrypted; decrypt it (openssl pkey -in … -out …)", path.display())]
    EncryptedKey {
        /// The file.
        path: PathBuf,
    },
    /// The key is of a kind or size the TLS library cannot sign with.
    #[error("{}: unsupported private key: {reason}", path.display())]
    BadKey {
        /// The file.
        path: PathBuf,
        /// What the TLS library said.
        reason: String,
    },
    /// The private key is not the one of the certificate.
    #[error(
        "{}: the private key does not match the certificate in {}",
        key.display(),
        cert.display()
    )]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// A listener or relay names a pki that is not declared.
    #[error("pki \"{0}\" is not declared")]
    UnknownPki(String),
    /// A listener or relay names a ca that is not declared.
    #[error("ca \"{0}\" is not declared")]
    UnknownCa(String),
    /// A TLS listener has no certificate.
    #[error("no certificate: declare `pki {0} cert … key …` or name a pki with `pki NAME`")]
    NoPki(String),
    /// Client certificates are to be verified but no trust anchor is configured.
    #[error("`verify` needs a `ca NAME` to check client certificates against")]
    VerifyWithoutCa,
    /// A `protocols` value is not understood or leaves no usable version.
    #[error("protocols \"{value}\": {reason}")]
    Protocols {
        /// The value as written.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// A `ciphers` value is not understood or leaves no suite.
    #[error("ciphers \"{value}\": {reason}")]
    Ciphers {
        /// The value as written.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// The TLS library refused a configuration.
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// A certificate chain with its private key, ready to be served (or presented as a client).
#[derive(Clone, Debug)]
pub struct Pki {
    /// The pki's name (lowercase): the host name it serves, or `*`.
    pub name: String,
    /// The chain (leaf first) and the signing key.
    pub certified: Arc<CertifiedKey>,
}

/// Reads a file, naming it in the error.
fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

fn pem_error(path: &Path, e: &pem::Error) -> TlsError {
    TlsError::Pem {
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

/// Reads every certificate of a PEM file, in order (a full chain: leaf first).
pub fn load_certs(path: impl AsRef<Path>) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let path = path.as_ref();
    let bytes = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, &e))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// Reads the first private key of a PEM file: PKCS#8 (`BEGIN PRIVATE KEY`), PKCS#1 RSA
/// (`BEGIN RSA PRIVATE KEY`) or SEC1 EC (`BEGIN EC PRIVATE KEY`).
pub fn load_private_key(path: impl AsRef<Path>) -> Result<PrivateKeyDer<'static>, TlsError> {
    let path = path.as_ref();
    let bytes = read(path)?;
    match PrivateKeyDer::from_pem_slice(&bytes) {
        Ok(key) => Ok(key),
        Err(pem::Error::NoItemsFound) => {
            // Say why, rather than only "no key": an encrypted key is the common mistake.
            if bytes.windows(b"ENCRYPTED".len()).any(|w| w == b"ENCRYPTED") {
                Err(TlsError::EncryptedKey {
                    path: path.to_owned(),
                })
            } else {
                Err(TlsError::NoKey {
                    path: path.to_owned(),
                })
            }
        }
        Err(e) => Err(pem_error(path, &e)),
    }
}

/// Loads a `pki`: the chain in `cert` and the key in `key`, checked to belong together.
pub fn load_pki(
    name: &str,
    cert: impl AsRef<Path>,
    key: impl AsRef<Path>,
) -> Result<Pki, TlsError> {
    let (cert, key) = (cert.as_ref(), key.as_ref());
    let chain = load_certs(cert)?;
    let der = load_private_key(key)?;
    let provider = super::provider();
    let signing = provider
        .key_provider
        .load_private_key(der)
        .map_err(|e| TlsError::BadKey {
            path: key.to_owned(),
            reason: e.to_string(),
        })?;
    let certified = CertifiedKey::new(chain, signing);
    match certified.keys_match() {
        // A key type whose public half rustls cannot extract is not known to mismatch.
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            return Err(TlsError::KeyMismatch {
                cert: cert.to_owned(),
                key: key.to_owned(),
            });
        }
        Err(e) => {
            return Err(TlsError::BadCertificate {
                path: cert.to_owned(),
                reason: e.to_string(),
            });
        }
    }
    Ok(Pki {
        name: name.to_lowercase(),
        certified: Arc::new(certified),
    })
}

/// Reads a CA bundle: every certificate in the file becomes a trust anchor.
pub fn load_ca(path: impl AsRef<Path>) -> Result<RootCertStore, TlsError> {
    let path = path.as_ref();
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path)? {
        roots.add(cert).map_err(|e| TlsError::BadCertificate {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    }
    Ok(roots)
}
