//! Queue files at rest: `queue compression` (deflate) and `queue encryption` (AES-256-GCM).
//!
//! # Key
//!
//! The passphrase is stretched once, at start, with PBKDF2-HMAC-SHA256 ([`ROUNDS`] rounds)
//! and a random salt kept in the queue's `encryption` file, next to a sealed check value so
//! that a wrong passphrase stops the start with a clear message instead of making every file
//! look damaged. Each file then gets a random salt of its own, and its key is derived from the
//! stretched key and that salt (PBKDF2 again, one round: the input is already a uniform
//! 256-bit key). No two files share a key; stretching per file would cost tens of
//! milliseconds per message.
//!
//! # Format
//!
//! ```text
//! "PETRELS1" flags(1: bit 0 compressed, bit 1 encrypted) [salt(16) when encrypted]
//! frames: length(4, big-endian; top bit set on the last frame) then the frame
//! ```
//!
//! A frame holds up to [`FRAME`] bytes of the (compressed) stream. Encrypted, it is a fresh
//! random nonce (12), the ciphertext and the tag (16), and its additional data binds the file's
//! header, its identity (which message, content or envelopes), the frame's index and whether it
//! is the last: frames cannot be reordered, dropped, moved to another file or cut short without
//! the check failing. A file must end with exactly one last frame, so a truncated file is
//! refused even at a frame boundary.
//!
//! Files are written as a stream ([`SealWriter`]), so a large message is sealed as it arrives;
//! they are read whole ([`Sealing::open`]), as the queue reads them.

use std::io::{self, Write};
use std::num::NonZeroU32;
use std::path::Path;

use flate2::Compression;
use flate2::write::{DeflateDecoder, DeflateEncoder};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::pbkdf2;
use ring::rand::{SecureRandom, SystemRandom};

use super::fs::{Fs, FsFile};

/// The magic of a sealed file.
const MAGIC: &[u8; 8] = b"PETRELS1";
/// The magic of the `encryption` file.
const KEY_MAGIC: &[u8; 8] = b"PETRELK1";
/// PBKDF2 rounds for the passphrase.
pub const ROUNDS: u32 = 200_000;
/// Plaintext (compressed) bytes per frame.
pub const FRAME: usize = 64 * 1024;
const FLAG_COMPRESSED: u8 = 1;
const FLAG_ENCRYPTED: u8 = 2;
const SALT_LEN: usize = 16;
const TAG_LEN: usize = 16;
const LAST: u32 = 0x8000_0000;
/// What the `encryption` file's check value says once opened.
const CHECK: &[u8] = b"petrel queue key check";

/// Why a sealed file cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    /// Not a sealed file, or sealed differently than the queue is configured.
    #[error("{0}")]
    Format(String),
    /// The file is shorter than its frames say, or has no last frame.
    #[error("truncated")]
    Truncated,
    /// A frame does not authenticate: the file was changed, or the key is not the one it was
    /// written with.
    #[error("frame {0} fails authentication (tampered, or another key)")]
    Tampered(u64),
    /// The compressed stream is damaged.
    #[error("cannot decompress: {0}")]
    Compression(String),
}

/// How queue files are stored: as they are, compressed, encrypted, or both.
#[derive(Clone)]
pub struct Sealing {
    compress: bool,
    key: Option<[u8; 32]>,
}

impl std::fmt::Debug for Sealing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealing")
            .field("compress", &self.compress)
            .field("encrypt", &self.key.is_some())
            .finish()
    }
}

/// Why the queue's key cannot be set up.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The `encryption` file cannot be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The `encryption` file is damaged.
    #[error("{0}: not a queue key file")]
    Damaged(std::path::PathBuf),
    /// The passphrase is not the one the queue was encrypted with.
    #[error("the queue encryption key is not the one this queue was encrypted with")]
    WrongKey,
    /// No passphrase.
    #[error("the queue encryption key is empty")]
    Empty,
}

impl Sealing {
    /// Files stored as they are.
    #[must_use]
    pub fn plain() -> Sealing {
        Sealing {
            compress: false,
            key: None,
        }
    }

    /// Compressed, not encrypted.
    #[must_use]
    pub fn compressed() -> Sealing {
        Sealing {
            compress: true,
            key: None,
        }
    }

    /// Encrypted with an already stretched key (tests; [`Sealing::for_queue`] stretches one).
    #[must_use]
    pub fn with_key(compress: bool, key: [u8; 32]) -> Sealing {
        Sealing {
            compress,
            key: Some(key),
        }
    }

    /// The sealing of the queue under `root`: compressed or not, encrypted with `passphrase`
    /// when given. The first start with encryption writes `root/encryption` (the salt and a
    /// check value); later starts check the passphrase against it.
    ///
    /// # Errors
    /// The key file cannot be read or written, is damaged, or the passphrase is wrong.
    pub fn for_queue<F: Fs>(
        fs: &F,
        root: &Path,
        compress: bool,
        passphrase: Option<&str>,
    ) -> Result<Sealing, KeyError> {
        let Some(passphrase) = passphrase else {
            return Ok(Sealing {
                compress,
                key: None,
            });
        };
        if passphrase.is_empty() {
            return Err(KeyError::Empty);
        }
        let path = root.join("encryption");
        let io = |source| KeyError::Io {
            path: path.clone(),
            source,
        };
        match fs.read(&path) {
            Ok(data) => {
                let salt: [u8; SALT_LEN] = data
                    .strip_prefix(KEY_MAGIC)
                    .and_then(|rest| rest.get(..SALT_LEN))
                    .and_then(|s| s.try_into().ok())
                    .ok_or_else(|| KeyError::Damaged(path.clone()))?;
                let sealing = Sealing::with_key(compress, stretch(passphrase, &salt));
                let check = &data[KEY_MAGIC.len() + SALT_LEN..];
                match sealing.open("key-check", check) {
                    Ok(text) if text == CHECK => Ok(sealing),
                    Err(SealError::Tampered(_)) => Err(KeyError::WrongKey),
                    _ => Err(KeyError::Damaged(path.clone())),
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs.create_dir_all(root).map_err(io)?;
                let mut salt = [0u8; SALT_LEN];
                random(&mut salt);
                let sealing = Sealing::with_key(compress, stretch(passphrase, &salt));
                let mut data = KEY_MAGIC.to_vec();
                data.extend_from_slice(&salt);
                data.extend_from_slice(&sealing.seal("key-check", CHECK));
                let tmp = root.join("encryption.tmp");
                let mut file = fs.create(&tmp).map_err(io)?;
                file.write_all(&data).map_err(io)?;
                file.sync_all().map_err(io)?;
                drop(file);
                fs.rename(&tmp, &path).map_err(io)?;
                fs.sync_dir(root).map_err(io)?;
                Ok(sealing)
            }
            Err(e) => Err(io(e)),
        }
    }

    /// True when files are stored as they are.
    #[must_use]
    pub fn is_plain(&self) -> bool {
        !self.compress && self.key.is_none()
    }

    /// True when files are encrypted.
    #[must_use]
    pub fn encrypts(&self) -> bool {
        self.key.is_some()
    }

    /// Starts writing a sealed file to `out`; `id` names what it holds (the message id and
    /// the kind of file), and must be given again to open it.
    ///
    /// # Errors
    /// Writing the header fails.
    pub fn writer<W: Write>(&self, id: &str, mut out: W) -> io::Result<SealWriter<W>> {
        let mut header = MAGIC.to_vec();
        let mut flags = 0;
        if self.compress {
            flags |= FLAG_COMPRESSED;
        }
        let mut file_key = None;
        if let Some(master) = &self.key {
            flags |= FLAG_ENCRYPTED;
            let mut salt = [0u8; SALT_LEN];
            random(&mut salt);
            header.push(flags);
            header.extend_from_slice(&salt);
            file_key = Some(derive(master, &salt));
        } else {
            header.push(flags);
        }
        out.write_all(&header)?;
        let frames = Frames {
            out,
            key: file_key,
            aad_prefix: aad_prefix(&header, id),
            buf: Vec::with_capacity(FRAME),
            index: 0,
        };
        let inner = if self.compress {
            Inner::Compressed(DeflateEncoder::new(frames, Compression::fast()))
        } else {
            Inner::Raw(frames)
        };
        Ok(SealWriter { inner })
    }

    /// Seals a whole buffer.
    #[must_use]
    pub fn seal(&self, id: &str, data: &[u8]) -> Vec<u8> {
        let mut w = self
            .writer(id, Vec::new())
            .expect("writing to memory cannot fail");
        w.write_all(data).expect("writing to memory cannot fail");
        w.finish().expect("writing to memory cannot fail")
    }

    /// Reads a queue file written for `id`: opened when sealed, as it is when plain. A plain
    /// file is refused when the queue encrypts.
    ///
    /// # Errors
    /// See [`SealError`].
    pub fn read(&self, id: &str, data: Vec<u8>) -> Result<Vec<u8>, SealError> {
        if data.starts_with(MAGIC) {
            self.open(id, &data)
        } else if self.encrypts() {
            Err(SealError::Format(
                "not encrypted, in a queue that is: refused".into(),
            ))
        } else {
            Ok(data)
        }
    }

    /// Writes `data` as this queue stores files.
    #[must_use]
    pub fn store(&self, id: &str, data: Vec<u8>) -> Vec<u8> {
        if self.is_plain() {
            data
        } else {
            self.seal(id, &data)
        }
    }

    /// Opens a sealed file written for `id`. A file written with other settings is refused:
    /// an encrypted queue never reads a plain or unencrypted file, which anyone able to write
    /// into the queue could have put there.
    ///
    /// # Errors
    /// See [`SealError`].
    pub fn open(&self, id: &str, data: &[u8]) -> Result<Vec<u8>, SealError> {
        let rest = data
            .strip_prefix(MAGIC)
            .ok_or_else(|| SealError::Format("not a sealed queue file".into()))?;
        let (&flags, mut rest) = rest.split_first().ok_or(SealError::Truncated)?;
        let compressed = flags & FLAG_COMPRESSED != 0;
        let encrypted = flags & FLAG_ENCRYPTED != 0;
        if flags & !(FLAG_COMPRESSED | FLAG_ENCRYPTED) != 0 {
            return Err(SealError::Format(format!("unknown flags {flags:#x}")));
        }
        let key = match (&self.key, encrypted) {
            (Some(master), true) => {
                let salt = rest.get(..SALT_LEN).ok_or(SealError::Truncated)?;
                rest = &rest[SALT_LEN..];
                Some(derive(master, salt))
            }
            (None, true) => {
                return Err(SealError::Format(
                    "encrypted, and no queue encryption key is configured".into(),
                ));
            }
            (Some(_), false) => {
                return Err(SealError::Format(
                    "not encrypted, in a queue that is: refused".into(),
                ));
            }
            (None, false) => None,
        };
        let header_len = data.len() - rest.len();
        let prefix = aad_prefix(&data[..header_len], id);
        let mut stream = Vec::with_capacity(rest.len());
        let mut index = 0u64;
        loop {
            let len_bytes: [u8; 4] = rest
                .get(..4)
                .and_then(|b| b.try_into().ok())
                .ok_or(SealError::Truncated)?;
            let word = u32::from_be_bytes(len_bytes);
            let last = word & LAST != 0;
            let len = (word & !LAST) as usize;
            let frame = rest.get(4..4 + len).ok_or(SealError::Truncated)?;
            rest = &rest[4 + len..];
            match &key {
                Some(key) => {
                    if frame.len() < NONCE_LEN + TAG_LEN {
                        return Err(SealError::Tampered(index));
                    }
                    let (nonce, sealed) = frame.split_at(NONCE_LEN);
                    let nonce = Nonce::try_assume_unique_for_key(nonce)
                        .map_err(|_| SealError::Tampered(index))?;
                    let mut buf = sealed.to_vec();
                    let aad = frame_aad(&prefix, index, last);
                    let plain = key
                        .open_in_place(nonce, Aad::from(&aad), &mut buf)
                        .map_err(|_| SealError::Tampered(index))?;
                    stream.extend_from_slice(plain);
                }
                None => stream.extend_from_slice(frame),
            }
            index += 1;
            if last {
                break;
            }
        }
        if !rest.is_empty() {
            return Err(SealError::Format("data after the last frame".into()));
        }
        if !compressed {
            return Ok(stream);
        }
        let mut decoder = DeflateDecoder::new(Vec::with_capacity(stream.len() * 3));
        decoder
            .write_all(&stream)
            .and_then(|()| decoder.finish())
            .map_err(|e| SealError::Compression(e.to_string()))
    }
}

/// A sealed file being written. Call [`finish`](Self::finish): dropping it leaves the file
/// without its last frame, which reads as truncated.
pub struct SealWriter<W: Write> {
    inner: Inner<W>,
}

enum Inner<W: Write> {
    Raw(Frames<W>),
    Compressed(DeflateEncoder<Frames<W>>),
}

impl<W: Write> Write for SealWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.inner {
            Inner::Raw(f) => f.write(buf),
            Inner::Compressed(c) => c.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        // Frames are written whole; a partial frame waits for more data or `finish`.
        Ok(())
    }
}

impl<W: Write> SealWriter<W> {
    /// Writes the last frame and returns the output.
    ///
    /// # Errors
    /// Writing fails.
    pub fn finish(self) -> io::Result<W> {
        let frames = match self.inner {
            Inner::Raw(f) => f,
            Inner::Compressed(c) => c.finish()?,
        };
        frames.finish()
    }
}

/// Cuts the stream into frames and seals each.
struct Frames<W: Write> {
    out: W,
    key: Option<LessSafeKey>,
    aad_prefix: Vec<u8>,
    buf: Vec<u8>,
    index: u64,
}

impl<W: Write> Frames<W> {
    fn emit(&mut self, last: bool) -> io::Result<()> {
        let aad = frame_aad(&self.aad_prefix, self.index, last);
        let body = match &self.key {
            Some(key) => {
                let mut nonce = [0u8; NONCE_LEN];
                random(&mut nonce);
                let mut sealed = std::mem::take(&mut self.buf);
                key.seal_in_place_append_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(&aad),
                    &mut sealed,
                )
                .map_err(|_| io::Error::other("encryption failed"))?;
                let mut frame = nonce.to_vec();
                frame.extend_from_slice(&sealed);
                frame
            }
            None => std::mem::take(&mut self.buf),
        };
        let len = u32::try_from(body.len()).map_err(|_| io::Error::other("frame too large"))?;
        let word = if last { len | LAST } else { len };
        self.out.write_all(&word.to_be_bytes())?;
        self.out.write_all(&body)?;
        self.index += 1;
        self.buf = Vec::with_capacity(FRAME);
        Ok(())
    }

    fn finish(mut self) -> io::Result<W> {
        self.emit(true)?;
        Ok(self.out)
    }
}

impl<W: Write> Write for Frames<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = FRAME - self.buf.len();
        let n = room.min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == FRAME {
            self.emit(false)?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn aad_prefix(header: &[u8], id: &str) -> Vec<u8> {
    let mut aad = header.to_vec();
    aad.extend_from_slice(&(id.len() as u64).to_be_bytes());
    aad.extend_from_slice(id.as_bytes());
    aad
}

fn frame_aad(prefix: &[u8], index: u64, last: bool) -> Vec<u8> {
    let mut aad = prefix.to_vec();
    aad.extend_from_slice(&index.to_be_bytes());
    aad.push(u8::from(last));
    aad
}

fn stretch(passphrase: &str, salt: &[u8]) -> [u8; 32] {
    let mut key = [0u8; 32];
    let rounds = NonZeroU32::new(ROUNDS).expect("nonzero");
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        rounds,
        salt,
        passphrase.as_bytes(),
        &mut key,
    );
    key
}

fn derive(master: &[u8; 32], salt: &[u8]) -> LessSafeKey {
    let mut key = [0u8; 32];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        NonZeroU32::MIN,
        salt,
        master,
        &mut key,
    );
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).expect("a 32-byte key"))
}

fn random(out: &mut [u8]) {
    // The system's generator failing is not something to go on without: a repeated nonce
    // under one key would give the key away.
    SystemRandom::new()
        .fill(out)
        .expect("the system random generator failed");
}

#[cfg(test)]
#[path = "seal_tests.rs"]
mod tests;
