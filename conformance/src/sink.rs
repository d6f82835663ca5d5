//! A deliberately broken server that answers 250 to everything (354 to DATA, 221 to QUIT):
//! the suite must fail it loudly. `petrel-conformance fake-sink` runs it.

use std::io;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// Serves one connection.
///
/// # Errors
/// The connection failed.
pub async fn serve_connection<S: AsyncRead + AsyncWrite + Unpin>(stream: S) -> io::Result<()> {
    let mut stream = BufReader::new(stream);
    stream.write_all(b"220 fake-sink ready\r\n").await?;
    let mut in_data = false;
    let mut line = Vec::new();
    loop {
        line.clear();
        if stream.read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&line);
        let trimmed = text.trim_end_matches(['\r', '\n']);
        if in_data {
            // Like many naive servers: any line that is a lone dot ends the data, whatever
            // its line ending.
            if trimmed == "." {
                in_data = false;
                stream.write_all(b"250 OK\r\n").await?;
            }
            continue;
        }
        let verb = trimmed
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        match verb.as_str() {
            "DATA" => {
                in_data = true;
                stream.write_all(b"354 go ahead\r\n").await?;
            }
            "QUIT" => {
                stream.write_all(b"221 bye\r\n").await?;
                return stream.get_mut().shutdown().await;
            }
            _ => stream.write_all(b"250 OK\r\n").await?,
        }
    }
}

/// Accepts connections for ever, one task each.
///
/// # Errors
/// Accepting failed.
pub async fn run(listener: TcpListener) -> io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            let _ = serve_connection(stream).await;
        });
    }
}
