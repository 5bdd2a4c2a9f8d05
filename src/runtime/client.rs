//! One request/reply exchange with a daemon: connect, write one frame, read one frame, close.

use super::frame::{self, FrameError};
use std::io;
use std::path::Path;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// How an exchange failed. Only `Connect` is safe to retry on another socket: nothing was sent.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error("connect: {0}")]
    Connect(io::Error),
    #[error("{0}")]
    Io(io::Error),
    #[error("invalid reply frame: {0}")]
    Frame(#[from] FrameError),
}

/// Send `payload` as one frame and return the reply payload. No timeout here: the caller
/// bounds the whole exchange (connect included) with the function's `timeout_ms`.
pub async fn exchange(socket: &Path, payload: &[u8], max_reply: usize) -> Result<Vec<u8>, ExchangeError> {
    let mut stream = UnixStream::connect(socket).await.map_err(ExchangeError::Connect)?;
    // Header and payload in one buffer: one write syscall, no Nagle-style split on the daemon side.
    stream
        .write_all(&frame::encode(payload))
        .await
        .map_err(ExchangeError::Io)?;
    let mut header = [0u8; 4];
    stream.read_exact(&mut header).await.map_err(ExchangeError::Io)?;
    let len = frame::decode_header(header, max_reply)?;
    let mut reply = vec![0u8; len];
    stream.read_exact(&mut reply).await.map_err(ExchangeError::Io)?;
    Ok(reply)
}

/// Whether something accepts connections on `socket` (the health probe and readiness check).
pub async fn probe(socket: &Path) -> Result<(), io::Error> {
    UnixStream::connect(socket).await.map(drop)
}
