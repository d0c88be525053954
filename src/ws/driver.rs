//! A live WebSocket on its socket: the [`Connection`] polled for its next bytes, and those bytes
//! written, with nothing held in between but what the socket would not take.
//!
//! This is the HTTP dispatcher's job for a response body, done without its two 8 KiB buffers. The
//! connection is asked for more only once what it gave last is written, so a client that reads
//! slowly holds the connection away from the hub's ring, which moves on; the connection learns it
//! lagged when it is polled again. What is ready at once (a replay, a burst) goes out in one
//! vectored write of up to [`BATCH`] frames or [`BATCH_BYTES`]. What the socket does not take is
//! kept as one piece: the unwritten end of a single frame as it is, or several frames' ends copied
//! together, and only then.

use std::{
    future::Future,
    io::{self, IoSlice},
    pin::Pin,
    task::{Context as TaskContext, Poll, ready},
};

use actix_web::body::MessageBody;
use bytes::{Buf, Bytes, BytesMut};

use super::wire::WsWire;
use crate::session::Connection;

/// The most frames written in one system call.
const BATCH: usize = 16;

/// A batch takes no more frames once it holds this many bytes. What the socket does not take of a
/// batch is copied into one piece, so this bounds what a reader that stopped reading holds (this,
/// plus the frame that crossed it), as the dispatcher's write buffer did at the same size.
const BATCH_BYTES: usize = 32 * 1024;

/// Drives one live WebSocket until it ends; the socket closes when the driver is dropped.
pub(crate) struct Driver {
    connection: Connection<WsWire>,
    /// Bytes the socket did not take yet; written before the connection is asked for more.
    unsent: Bytes,
    /// The connection has given its last bytes (its goodbye).
    ended: bool,
}

impl Driver {
    pub(crate) fn new(connection: Connection<WsWire>) -> Self {
        Self {
            connection,
            unsent: Bytes::new(),
            ended: false,
        }
    }

    /// Writes what is unsent; `Ready(Ok)` once it all went.
    fn flush(&mut self, cx: &mut TaskContext<'_>) -> Poll<io::Result<()>> {
        let socket = self.connection.wire().socket();
        while !self.unsent.is_empty() {
            match socket.try_write(&self.unsent) {
                Ok(n) => self.unsent.advance(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    ready!(socket.poll_write_ready(cx))?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        // An emptied remainder lets go of the frame it was cut from.
        self.unsent = Bytes::new();
        Poll::Ready(Ok(()))
    }

    /// The goodbye is out: our FIN, then the socket closes with the driver. What the client sent
    /// and nobody read is discarded first, up to a bound: closing a socket with unread bytes
    /// answers with a reset, which may destroy the goodbye before the client has read it.
    fn close(&self) {
        let socket = socket2::SockRef::from(self.connection.wire().socket());
        let _ = socket.shutdown(std::net::Shutdown::Write);
        // Straight to the (non-blocking) socket: the reactor may not have seen the last bytes.
        let mut discard = [0u8; 4096];
        for _ in 0..16 {
            if !matches!(io::Read::read(&mut &*socket, &mut discard), Ok(n) if n > 0) {
                break;
            }
        }
    }

    /// Up to [`BATCH`] frames the connection has ready (fewer once they reach [`BATCH_BYTES`]),
    /// and whether it may have more to give now.
    fn gather(
        &mut self,
        cx: &mut TaskContext<'_>,
        batch: &mut [Option<Bytes>; BATCH],
    ) -> (usize, bool) {
        let mut gathered = 0;
        for (n, slot) in batch.iter_mut().enumerate() {
            match Pin::new(&mut self.connection).poll_next(cx) {
                Poll::Ready(Some(Ok(bytes))) => {
                    gathered += bytes.len();
                    *slot = Some(bytes);
                    if gathered >= BATCH_BYTES {
                        return (n + 1, true);
                    }
                }
                Poll::Ready(Some(Err(never))) => match never {},
                Poll::Ready(None) => {
                    self.ended = true;
                    return (n, false);
                }
                Poll::Pending => return (n, false),
            }
        }
        (BATCH, true)
    }

    /// Writes the frames in one call, and keeps what the socket did not take.
    fn write(&mut self, batch: &[Option<Bytes>]) -> io::Result<()> {
        let mut slices = [IoSlice::new(&[]); BATCH];
        for (slice, frame) in slices.iter_mut().zip(batch.iter().flatten()) {
            *slice = IoSlice::new(frame);
        }
        let socket = self.connection.wire().socket();
        let mut written = match socket.try_write_vectored(&slices[..batch.len()]) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                0
            }
            Err(e) => return Err(e),
        };
        // Frames the socket took whole are done; the first it did not is cut where it stopped.
        let mut frames = batch.iter().flatten();
        let first = loop {
            let Some(frame) = frames.next() else {
                return Ok(());
            };
            if written < frame.len() {
                break frame.slice(written..);
            }
            written -= frame.len();
        };
        let mut rest = frames.peekable();
        self.unsent = if rest.peek().is_none() {
            first
        } else {
            let mut joined = BytesMut::from(&first[..]);
            rest.for_each(|frame| joined.extend_from_slice(frame));
            joined.freeze()
        };
        Ok(())
    }
}

impl Future for Driver {
    /// However it ends (a goodbye written, the client gone, the socket failed), the connection is
    /// over: its own `Drop` counts and logs it.
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        let this = self.get_mut();
        loop {
            if ready!(this.flush(cx)).is_err() {
                return Poll::Ready(());
            }
            if this.ended {
                this.close();
                return Poll::Ready(());
            }
            // `None`s: an empty slot costs nothing to make or drop.
            let mut batch: [Option<Bytes>; BATCH] = Default::default();
            let (n, more) = this.gather(cx, &mut batch);
            if n == 0 && !this.ended {
                return Poll::Pending;
            }
            // A connection that ended with nothing left to give has nothing to write.
            if n > 0 && this.write(&batch[..n]).is_err() {
                return Poll::Ready(());
            }
            // Written in full with nothing more ready: the connection's poll registered the waker.
            if this.unsent.is_empty() && !more && !this.ended {
                return Poll::Pending;
            }
        }
    }
}
