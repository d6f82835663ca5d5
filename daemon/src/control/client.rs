//! `petrelctl`'s side of the control socket.

use std::path::Path;

use thiserror::Error;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::UnixStream;
use tokio::net::unix::OwnedReadHalf;

use super::protocol::{Request, Response};

/// Why the daemon could not be asked.
#[derive(Debug, Error)]
pub enum ClientError {
    /// Nothing listens on the socket.
    #[error("petreld is not running (no control socket at {path}: {source})")]
    NotRunning {
        /// The socket path.
        path: String,
        /// The connection error.
        source: std::io::Error,
    },
    /// The connection broke.
    #[error("control socket: {0}")]
    Io(#[from] std::io::Error),
    /// The daemon's answer could not be read.
    #[error("unreadable answer from petreld: {0}")]
    Protocol(String),
    /// The daemon closed the connection without answering.
    #[error("petreld closed the connection without answering")]
    NoAnswer,
}

/// A connection that has sent its request; read the answers with [`Answers::next`].
pub struct Answers {
    lines: Lines<BufReader<OwnedReadHalf>>,
    _write: tokio::net::unix::OwnedWriteHalf,
}

impl Answers {
    /// The next answer line; `None` when the daemon closed the connection.
    ///
    /// # Errors
    /// The connection broke or the line is not a [`Response`].
    pub async fn next(&mut self) -> Result<Option<Response>, ClientError> {
        match self.lines.next_line().await? {
            None => Ok(None),
            Some(line) => serde_json::from_str(&line)
                .map(Some)
                .map_err(|e| ClientError::Protocol(e.to_string())),
        }
    }
}

/// Connects to the daemon's socket and sends `request`.
///
/// # Errors
/// The daemon is not running, or the request could not be sent.
pub async fn send(socket: &Path, request: &Request) -> Result<Answers, ClientError> {
    let stream = UnixStream::connect(socket)
        .await
        .map_err(|source| ClientError::NotRunning {
            path: socket.display().to_string(),
            source,
        })?;
    let (read, mut write) = stream.into_split();
    let mut line =
        serde_json::to_string(request).map_err(|e| ClientError::Protocol(e.to_string()))?;
    line.push('\n');
    write.write_all(line.as_bytes()).await?;
    Ok(Answers {
        lines: BufReader::new(read).lines(),
        _write: write,
    })
}

/// Sends `request` and returns the single answer.
///
/// # Errors
/// As [`send`], or the daemon closed the connection without answering.
pub async fn ask(socket: &Path, request: &Request) -> Result<Response, ClientError> {
    let mut answers = send(socket, request).await?;
    answers.next().await?.ok_or(ClientError::NoAnswer)
}
