//! Recording SMTP sessions to files (`petreld -T DIR`), in the transcript format that
//! `petrel-sim replay` plays back against a simulated Petrel: one `C:` line per line the client
//! sent, one `S:` line per reply (its last line: the code is what replay compares).
//!
//! Credentials are never written: an AUTH command keeps only its mechanism, and the client's
//! lines answering a `334` challenge are written as `*`. BDAT chunks are recorded as lines too,
//! so a session that used BDAT does not replay byte for byte.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Where the transcripts of a listener's sessions go.
#[derive(Clone, Debug)]
pub struct TranscriptDir(pub PathBuf);

/// One session's transcript file, written as the session goes.
#[derive(Debug)]
pub struct Transcript {
    file: std::io::BufWriter<std::fs::File>,
    /// Client bytes after the last line end.
    partial: Vec<u8>,
    /// Server bytes after the last line end.
    partial_reply: Vec<u8>,
    /// The last reply was a `334` challenge: the next client line is a SASL response.
    in_auth: bool,
}

impl Transcript {
    /// Creates `<dir>/<session>.txt`, with a comment line naming the peer. `None` (and a log
    /// line) when the file cannot be created: recording never stops a session.
    #[must_use]
    pub fn create(dir: &Path, session: &str, peer: &str) -> Option<Transcript> {
        let path = dir.join(format!("{session}.txt"));
        let open = std::fs::create_dir_all(dir).and_then(|()| std::fs::File::create(&path));
        match open {
            Ok(f) => {
                let mut file = std::io::BufWriter::new(f);
                let _ = writeln!(file, "# session {session} from {peer}");
                Some(Transcript {
                    file,
                    partial: Vec::new(),
                    partial_reply: Vec::new(),
                    in_auth: false,
                })
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot record the session");
                None
            }
        }
    }

    /// Bytes the client sent.
    pub fn client(&mut self, bytes: &[u8]) {
        self.partial.extend_from_slice(bytes);
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\r', '\n']);
            let shown = if self.in_auth {
                "*".to_owned()
            } else if line.len() >= 5 && line[..5].eq_ignore_ascii_case("AUTH ") {
                // The mechanism only, never an initial response.
                line.split(' ').take(2).collect::<Vec<_>>().join(" ")
            } else {
                line.to_owned()
            };
            let _ = writeln!(self.file, "C: {shown}");
        }
    }

    /// Bytes the server sent.
    pub fn server(&mut self, bytes: &[u8]) {
        self.partial_reply.extend_from_slice(bytes);
        while let Some(end) = self.partial_reply.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial_reply.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\r', '\n']);
            // A reply's last line has a space (or nothing) after its code.
            if line.as_bytes().get(3).is_none_or(|&b| b == b' ') {
                self.in_auth = line.starts_with("334");
                let _ = writeln!(self.file, "S: {line}");
            }
        }
        let _ = self.file.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_replies_and_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = Transcript::create(dir.path(), "s1", "127.0.0.1").unwrap();
        t.server(b"220 mx ESMTP\r\n");
        t.client(b"EHLO a\r\nAUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n");
        t.server(b"250-mx\r\n250 AUTH PLAIN LOGIN\r\n535 5.7.8 no\r\n");
        t.client(b"AUTH LOGIN\r\n");
        t.server(b"334 VXNlcm5hbWU6\r\n");
        t.client(b"YWxpY2U=\r\n");
        t.server(b"334 UGFzc3dvcmQ6\r\n");
        t.client(b"c2VjcmV0\r\nMAIL FROM:<a@");
        t.server(b"535 5.7.8 no\r\n");
        t.client(b"b>\r\n");
        t.server(b"250 ok\r\n");
        drop(t);
        let text = std::fs::read_to_string(dir.path().join("s1.txt")).unwrap();
        assert_eq!(
            text,
            "# session s1 from 127.0.0.1\nS: 220 mx ESMTP\nC: EHLO a\nC: AUTH PLAIN\n\
             S: 250 AUTH PLAIN LOGIN\nS: 535 5.7.8 no\nC: AUTH LOGIN\nS: 334 VXNlcm5hbWU6\n\
             C: *\nS: 334 UGFzc3dvcmQ6\nC: *\nS: 535 5.7.8 no\nC: MAIL FROM:<a@b>\nS: 250 ok\n"
        );
        assert!(!text.contains("c2VjcmV0") && !text.contains("AGFsaWNl"));
    }
}
