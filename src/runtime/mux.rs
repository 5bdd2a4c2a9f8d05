//! Persistent, multiplexed connections to one daemon socket (`docs/protocol.md`, v2).
//!
//! A [`Mux`] keeps up to `max_conns` long-lived connections to its socket. A call takes the
//! least-loaded live connection (opening another while every open one is busy and the cap
//! allows), registers a fresh id, writes one frame and waits for the reply that the
//! connection's reader task hands over. Dropping the call's future (client hang-up, timeout)
//! unregisters it and tells the daemon with a cancel frame. When a connection breaks, its
//! reader fails exactly the calls in flight on it; the next call opens a new one.
//!
//! The first use of a socket also learns which protocol it speaks: a v2 hello answered →
//! v2; an ordinary v1 reply → the one-call-per-connection protocol of the contract
//! ([`super::client::exchange`]); anything else → a foreign listener that gets no calls.

use super::frame::{self, FrameError};
use bytes::Bytes;
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;
use tokio::sync::oneshot;

/// Bytes of a v2 frame header: len, id, kind, meta_len.
pub const HEADER_LEN: usize = 13;
const KIND_CALL: u8 = 1;
const KIND_REPLY: u8 = 2;
const KIND_CANCEL: u8 = 3;
/// How long a socket may take to answer the hello before it counts as foreign.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(1);
const HELLO: &[u8] = br#"{"fastfn_hello":2}"#;

/// What a socket speaks, learnt from the hello.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Persistent, multiplexed (our daemons).
    V2,
    /// One call per connection (the contract's; FastFN's own daemons).
    V1,
}

/// Why a connection could not be opened or a call did not complete. Says whether the call can
/// be retried elsewhere: only when the daemon cannot have started it.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// Connecting failed; nothing was sent.
    #[error("connect: {0}")]
    Connect(io::Error),
    /// The listener accepted but is not a FastFN daemon (no valid hello answer).
    #[error("foreign listener: {0}")]
    Foreign(String),
    /// The frame could not be written whole: the daemon never saw a complete call.
    #[error("write: {0}")]
    NotSent(io::Error),
    /// The connection broke after the call was sent: the daemon may have run it.
    #[error("connection lost before a reply")]
    Lost,
    /// The reply frame broke the protocol.
    #[error("invalid reply frame: {0}")]
    Frame(String),
    /// The call's frame is over the daemon's `FN_MAX_FRAME_BYTES`: not sent.
    #[error("frame too large")]
    TooLarge,
}

impl CallError {
    /// Nothing reached a handler: safe to retry on another socket whatever the method.
    pub fn not_sent(&self) -> bool {
        matches!(self, CallError::Connect(_) | CallError::NotSent(_))
    }
}

/// A reply: the v1 reply object as JSON, and the raw body when the daemon sent it apart.
#[derive(Debug)]
pub struct ReplyFrame {
    pub meta: Bytes,
    pub body: Bytes,
}

/// One call's v2 frame, built once: header + meta + body in one buffer (one write).
pub fn call_frame(id: u32, meta: &[u8], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + meta.len() + body.len());
    push_header(&mut out, id, KIND_CALL, meta.len(), body.len());
    out.extend_from_slice(meta);
    out.extend_from_slice(body);
    out
}

/// Size on the wire of a call frame (what `FN_MAX_FRAME_BYTES` bounds): everything after `len`.
pub fn call_frame_len(meta_len: usize, body_len: usize) -> usize {
    HEADER_LEN - 4 + meta_len + body_len
}

fn push_header(out: &mut Vec<u8>, id: u32, kind: u8, meta_len: usize, body_len: usize) {
    let len = (HEADER_LEN - 4 + meta_len + body_len) as u32;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&id.to_be_bytes());
    out.push(kind);
    out.extend_from_slice(&(meta_len as u32).to_be_bytes());
}

/// A parsed frame header (pure, for the reader and its tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub id: u32,
    pub kind: u8,
    pub meta_len: usize,
    /// Bytes after the 13-byte header: meta + body.
    pub rest: usize,
}

/// Validate a v2 header against the largest frame we accept.
pub fn parse_header(h: &[u8; HEADER_LEN], max: usize) -> Result<Header, FrameError> {
    let len = u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize;
    let id = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
    let kind = h[8];
    let meta_len = u32::from_be_bytes([h[9], h[10], h[11], h[12]]) as usize;
    if len < HEADER_LEN - 4 || id == 0 || !(KIND_CALL..=KIND_CANCEL).contains(&kind) {
        return Err(FrameError::Empty);
    }
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    let rest = len - (HEADER_LEN - 4);
    if meta_len > rest {
        return Err(FrameError::Empty);
    }
    Ok(Header {
        id,
        kind,
        meta_len,
        rest,
    })
}

/// What a hello answer says about the listener.
pub fn classify_hello(reply: &[u8]) -> Result<Protocol, String> {
    match serde_json::from_slice::<serde_json::Value>(reply) {
        Ok(v) if v.get("fastfn_hello").and_then(|h| h.as_u64()) == Some(2) => Ok(Protocol::V2),
        // A v1 daemon answers the hello as an unknown call: a reply object with a status.
        Ok(v) if v.get("status").is_some_and(|s| s.is_u64()) => Ok(Protocol::V1),
        Ok(_) => Err("answered the hello with something that is not a FastFN reply".into()),
        Err(_) => Err("answered the hello with bytes that are not JSON".into()),
    }
}

/// Connect and say hello; on v2 the stream is ready for v2 frames.
pub async fn hello(path: &Path) -> Result<(Protocol, UnixStream), CallError> {
    let mut stream = UnixStream::connect(path).await.map_err(CallError::Connect)?;
    let exchange = async {
        stream.write_all(&frame::encode(HELLO)).await?;
        let mut header = [0u8; 4];
        stream.read_exact(&mut header).await?;
        let len = frame::decode_header(header, 64 * 1024)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        let mut reply = vec![0u8; len];
        stream.read_exact(&mut reply).await?;
        Ok::<_, io::Error>(reply)
    };
    let reply = match tokio::time::timeout(HELLO_TIMEOUT, exchange).await {
        Err(_) => return Err(CallError::Foreign("no answer to the hello within 1 s".into())),
        Ok(Err(e)) if e.kind() == io::ErrorKind::InvalidData => {
            return Err(CallError::Foreign(format!(
                "answered the hello with an invalid frame ({e})"
            )))
        }
        Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
            return Err(CallError::Foreign(
                "closed the connection without answering the hello".into(),
            ))
        }
        Ok(Err(e)) => return Err(CallError::NotSent(e)),
        Ok(Ok(reply)) => reply,
    };
    let protocol = classify_hello(&reply).map_err(CallError::Foreign)?;
    Ok((protocol, stream))
}

type Waiter = oneshot::Sender<Result<ReplyFrame, CallError>>;

/// Calls in flight on one connection, by id.
#[derive(Default)]
struct Pending {
    next_id: u32,
    waiting: HashMap<u32, Waiter>,
    /// Set by the reader when the connection broke: no new registrations.
    closed: bool,
}

struct Conn {
    writer: tokio::sync::Mutex<OwnedWriteHalf>,
    /// Frames waiting for the connection's flusher (see [`Conn::send`]).
    outbox: Mutex<Outbox>,
    pending: Mutex<Pending>,
    in_flight: AtomicUsize,
    alive: AtomicBool,
}

#[derive(Default)]
struct Outbox {
    buf: Vec<u8>,
    /// A caller is writing: frames added now go out with its next write.
    flushing: bool,
}

impl Conn {
    /// Queue `frame` for the connection, coalesced with the frames other calls send
    /// meanwhile. The first frame of a batch starts a flush task, which lets the other ready
    /// tasks run once (on a busy engine they are the rest of this tick's requests), then writes
    /// everything queued in as few `write`s as possible: fewer syscalls for the engine, and
    /// fewer wake-ups for the daemon, which reads the batch at once.
    ///
    /// The write is never done in the caller's future: a caller is dropped when its client
    /// hangs up, and a write cut there would leave `flushing` set (later frames queued and
    /// never written) or half a frame on the wire (the daemon's framing lost) — every later
    /// call on the connection would time out. If the write fails, the connection closes and
    /// its calls fail as lost.
    fn send(self: &Arc<Self>, frame: &[u8]) {
        {
            let mut o = self.outbox.lock().unwrap_or_else(|e| e.into_inner());
            o.buf.extend_from_slice(frame);
            if o.flushing {
                return;
            }
            o.flushing = true;
        }
        let conn = self.clone();
        tokio::spawn(async move { conn.flush().await });
    }

    async fn flush(&self) {
        let mut writer = self.writer.lock().await;
        if self.in_flight.load(Ordering::Relaxed) > 1 {
            tokio::task::yield_now().await;
        }
        let mut next = Vec::new();
        loop {
            {
                let mut o = self.outbox.lock().unwrap_or_else(|e| e.into_inner());
                if o.buf.is_empty() {
                    o.flushing = false;
                    return;
                }
                std::mem::swap(&mut next, &mut o.buf);
            }
            if writer.write_all(&next).await.is_err() {
                {
                    let mut o = self.outbox.lock().unwrap_or_else(|e| e.into_inner());
                    o.buf.clear();
                    o.flushing = false;
                }
                drop(writer);
                self.close();
                return;
            }
            next.clear();
        }
    }

    fn register(&self) -> Option<(u32, oneshot::Receiver<Result<ReplyFrame, CallError>>)> {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if p.closed {
            return None;
        }
        p.next_id = p.next_id.wrapping_add(1).max(1);
        while p.waiting.contains_key(&p.next_id) {
            p.next_id = p.next_id.wrapping_add(1).max(1);
        }
        let id = p.next_id;
        let (tx, rx) = oneshot::channel();
        p.waiting.insert(id, tx);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        Some((id, rx))
    }

    /// Forget call `id`; true when it was still waiting.
    fn forget(&self, id: u32) -> bool {
        let removed = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .waiting
            .remove(&id)
            .is_some();
        if removed {
            self.in_flight.fetch_sub(1, Ordering::Relaxed);
        }
        removed
    }

    fn close(&self) {
        self.alive.store(false, Ordering::Relaxed);
        let waiting = {
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            p.closed = true;
            std::mem::take(&mut p.waiting)
        };
        self.in_flight.fetch_sub(waiting.len(), Ordering::Relaxed);
        for (_, tx) in waiting {
            let _ = tx.send(Err(CallError::Lost));
        }
    }
}

/// Unregisters a call when its future is dropped before the reply, and tells the daemon.
struct CallGuard<'a> {
    conn: &'a Arc<Conn>,
    id: u32,
    done: bool,
}

impl Drop for CallGuard<'_> {
    fn drop(&mut self) {
        if self.done || !self.conn.forget(self.id) {
            return;
        }
        let conn = self.conn.clone();
        let id = self.id;
        // Queued like any frame (the flush runs in a task of its own).
        if tokio::runtime::Handle::try_current().is_ok() {
            let mut frame = Vec::with_capacity(HEADER_LEN);
            push_header(&mut frame, id, KIND_CANCEL, 0, 0);
            conn.send(&frame);
        }
    }
}

/// The v2 connections of one socket.
pub struct Mux {
    path: PathBuf,
    max_conns: usize,
    max_reply: usize,
    /// `FN_MAX_FRAME_BYTES`: the largest call frame the daemon takes.
    max_frame: usize,
    conns: Mutex<Vec<Arc<Conn>>>,
    /// Serialises opening connections, so a burst opens one at a time instead of `c` at once.
    opening: tokio::sync::Mutex<()>,
    /// 0 unknown, 1 v2, 2 v1.
    protocol: AtomicU8,
}

impl std::fmt::Debug for Mux {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mux")
            .field("path", &self.path)
            .field("open", &self.open_connections())
            .finish()
    }
}

impl Mux {
    pub fn new(path: PathBuf, max_conns: usize, max_reply: usize, max_frame: usize) -> Mux {
        Mux {
            path,
            max_conns: max_conns.max(1),
            max_reply,
            max_frame,
            conns: Mutex::new(Vec::new()),
            opening: tokio::sync::Mutex::new(()),
            protocol: AtomicU8::new(0),
        }
    }

    /// The protocol learnt from the last hello, if any.
    pub fn protocol(&self) -> Option<Protocol> {
        match self.protocol.load(Ordering::Relaxed) {
            1 => Some(Protocol::V2),
            2 => Some(Protocol::V1),
            _ => None,
        }
    }

    fn set_protocol(&self, p: Protocol) {
        self.protocol
            .store(if p == Protocol::V2 { 1 } else { 2 }, Ordering::Relaxed);
    }

    pub fn open_connections(&self) -> usize {
        self.conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|c| c.alive.load(Ordering::Relaxed))
            .count()
    }

    /// Calls waiting for a reply on this socket's connections (a graceful restart waits for
    /// none before stopping the daemon).
    pub fn in_flight(&self) -> usize {
        self.conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|c| c.alive.load(Ordering::Relaxed))
            .map(|c| c.in_flight.load(Ordering::Relaxed))
            .sum()
    }

    /// Close every connection (the daemon is being replaced): their calls fail as lost.
    pub fn reset(&self) {
        let conns = std::mem::take(&mut *self.conns.lock().unwrap_or_else(|e| e.into_inner()));
        for c in conns {
            c.close();
        }
        self.protocol.store(0, Ordering::Relaxed);
    }

    /// The least-loaded live connection, and whether another may be opened.
    fn pick(&self) -> (Option<Arc<Conn>>, bool) {
        let mut conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        conns.retain(|c| c.alive.load(Ordering::Relaxed));
        let best = conns
            .iter()
            .min_by_key(|c| c.in_flight.load(Ordering::Relaxed))
            .cloned();
        let room = conns.len() < self.max_conns;
        (best, room)
    }

    /// A v2 connection to call on, or the protocol the socket speaks instead.
    async fn connection(&self) -> Result<Result<Arc<Conn>, Protocol>, CallError> {
        if self.protocol() == Some(Protocol::V1) {
            return Ok(Err(Protocol::V1));
        }
        let (best, room) = self.pick();
        if let Some(c) = &best {
            if !room || c.in_flight.load(Ordering::Relaxed) == 0 {
                return Ok(Ok(c.clone()));
            }
        }
        let _opening = self.opening.lock().await;
        // Someone else may have opened one (or learnt the protocol) while we waited.
        if self.protocol() == Some(Protocol::V1) {
            return Ok(Err(Protocol::V1));
        }
        let (best, room) = self.pick();
        if let Some(c) = &best {
            if !room || c.in_flight.load(Ordering::Relaxed) == 0 {
                return Ok(Ok(c.clone()));
            }
        }
        let opened = match hello(&self.path).await {
            Ok((Protocol::V2, stream)) => stream,
            Ok((Protocol::V1, _)) => {
                self.set_protocol(Protocol::V1);
                return Ok(Err(Protocol::V1));
            }
            // A live connection is still better than failing this call.
            Err(e) => return best.map(Ok).ok_or(e),
        };
        self.set_protocol(Protocol::V2);
        let (read, write) = opened.into_split();
        let conn = Arc::new(Conn {
            writer: tokio::sync::Mutex::new(write),
            outbox: Mutex::new(Outbox::default()),
            pending: Mutex::new(Pending::default()),
            in_flight: AtomicUsize::new(0),
            alive: AtomicBool::new(true),
        });
        tokio::spawn(read_replies(conn.clone(), read, self.max_reply));
        self.conns.lock().unwrap_or_else(|e| e.into_inner()).push(conn.clone());
        Ok(Ok(conn))
    }

    /// One call. `meta` is the request object without the body; `body` the raw body. A v1
    /// socket gets the contract's frame (`v1_payload` builds it only then). No timeout here:
    /// the caller bounds the whole call.
    pub async fn call(
        &self,
        meta: &[u8],
        body: &[u8],
        v1_payload: &(dyn Fn() -> Vec<u8> + Sync),
    ) -> Result<ReplyFrame, CallError> {
        self.call_timed(meta, body, v1_payload, &AtomicU64::new(0)).await
    }

    /// [`Mux::call`], adding to `connect_us` the time it took to get a v2 connection (~0 on
    /// a connection already open; the connect and hello when one is opened): the request's
    /// `connect` stage. A v1 exchange is one step (nothing added).
    pub async fn call_timed(
        &self,
        meta: &[u8],
        body: &[u8],
        v1_payload: &(dyn Fn() -> Vec<u8> + Sync),
        connect_us: &AtomicU64,
    ) -> Result<ReplyFrame, CallError> {
        let connecting = tokio::time::Instant::now();
        let connection = self.connection().await;
        connect_us.fetch_add(connecting.elapsed().as_micros() as u64, Ordering::Relaxed);
        let conn = match connection? {
            Ok(conn) => conn,
            Err(_) => {
                // v1 carries a binary body twice (text + base64): check the real frame.
                let payload = v1_payload();
                if payload.len() > self.max_frame {
                    return Err(CallError::TooLarge);
                }
                return match super::client::exchange(&self.path, &payload, self.max_reply).await {
                    Ok(reply) => Ok(ReplyFrame {
                        meta: Bytes::from(reply),
                        body: Bytes::new(),
                    }),
                    Err(super::client::ExchangeError::Connect(e)) => Err(CallError::Connect(e)),
                    Err(super::client::ExchangeError::Io(e)) => Err(if matches!(e.kind(), io::ErrorKind::BrokenPipe) {
                        CallError::NotSent(e)
                    } else {
                        CallError::Lost
                    }),
                    Err(super::client::ExchangeError::Frame(e)) => Err(CallError::Frame(e.to_string())),
                };
            }
        };
        let Some((id, rx)) = conn.register() else {
            return Err(CallError::NotSent(io::Error::new(
                io::ErrorKind::NotConnected,
                "connection closed",
            )));
        };
        let mut guard = CallGuard {
            conn: &conn,
            id,
            done: false,
        };
        conn.send(&call_frame(id, meta, body));
        let reply = rx.await;
        guard.done = true;
        match reply {
            Ok(r) => r,
            Err(_) => Err(CallError::Lost),
        }
    }
}

/// The reader of one connection: hands each reply to its caller until the connection ends,
/// then fails what is still in flight.
async fn read_replies(conn: Arc<Conn>, read: OwnedReadHalf, max_reply: usize) {
    let mut read = BufReader::with_capacity(64 * 1024, read);
    let mut header = [0u8; HEADER_LEN];
    loop {
        if read.read_exact(&mut header).await.is_err() {
            break;
        }
        let Ok(h) = parse_header(&header, max_reply) else {
            break;
        };
        let mut payload = vec![0u8; h.rest];
        if read.read_exact(&mut payload).await.is_err() {
            break;
        }
        if h.kind != KIND_REPLY {
            break;
        }
        let mut payload = Bytes::from(payload);
        let body = payload.split_off(h.meta_len);
        let waiter = {
            let mut p = conn.pending.lock().unwrap_or_else(|e| e.into_inner());
            p.waiting.remove(&h.id)
        };
        // A reply to a cancelled call has nobody waiting: dropped.
        if let Some(tx) = waiter {
            conn.in_flight.fetch_sub(1, Ordering::Relaxed);
            let _ = tx.send(Ok(ReplyFrame { meta: payload, body }));
        }
    }
    conn.close();
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn call_frames_have_the_documented_layout() {
        let f = call_frame(7, b"{}", b"AB");
        assert_eq!(
            f,
            [0, 0, 0, 13, 0, 0, 0, 7, KIND_CALL, 0, 0, 0, 2, b'{', b'}', b'A', b'B']
        );
        assert_eq!(call_frame_len(2, 2), 13);
    }

    #[test]
    fn headers_are_validated() {
        let mut ok = Vec::new();
        push_header(&mut ok, 3, KIND_REPLY, 4, 10);
        let h: [u8; HEADER_LEN] = ok.try_into().unwrap();
        assert_eq!(
            parse_header(&h, 1000),
            Ok(Header {
                id: 3,
                kind: KIND_REPLY,
                meta_len: 4,
                rest: 14
            })
        );
        assert_eq!(parse_header(&h, 20), Err(FrameError::TooLarge { len: 23, max: 20 }));
        let bad = |mutate: fn(&mut [u8; HEADER_LEN])| {
            let mut h = h;
            mutate(&mut h);
            parse_header(&h, 1000)
        };
        assert!(bad(|h| h[4..8].copy_from_slice(&0u32.to_be_bytes())).is_err(), "id 0");
        assert!(bad(|h| h[8] = 9).is_err(), "unknown kind");
        assert!(
            bad(|h| h[0..4].copy_from_slice(&3u32.to_be_bytes())).is_err(),
            "len < 9"
        );
        assert!(
            bad(|h| h[9..13].copy_from_slice(&99u32.to_be_bytes())).is_err(),
            "meta longer than the frame"
        );
    }

    #[test]
    fn hello_answers_are_classified() {
        assert_eq!(
            classify_hello(br#"{"fastfn_hello":2,"runtime":"python","pid":1}"#),
            Ok(Protocol::V2)
        );
        assert_eq!(
            classify_hello(br#"{"status":404,"body":"{\"error\":\"unknown function\"}"}"#),
            Ok(Protocol::V1)
        );
        assert!(classify_hello(b"HTTP/1.1 400 Bad Request").is_err());
        assert!(classify_hello(br#"{"hello":"world"}"#).is_err());
    }

    proptest! {
        /// Any 13 bytes either parse into a header whose parts fit the frame, or are refused.
        #[test]
        fn header_parsing_never_overruns(bytes in proptest::array::uniform13(any::<u8>()), max in 9usize..1_000_000) {
            if let Ok(h) = parse_header(&bytes, max) {
                prop_assert!(h.meta_len <= h.rest);
                prop_assert!(h.rest + 9 <= max);
                prop_assert!(h.id != 0);
            }
        }
    }
}
