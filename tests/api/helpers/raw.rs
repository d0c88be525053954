//! A WebSocket spoken by hand on a raw socket: what a client library would never send (split,
//! pipelined or malformed frames), and the server's frames read one by one.

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use super::{WAIT, app::TestApp, tokens::admin_token};

/// A WebSocket handshake for `/admin-ws` with a bearer token for `user_1`.
pub fn handshake_request(app: &TestApp) -> String {
    let addr = app.base.trim_start_matches("http://");
    format!(
        "GET /admin-ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Authorization: Bearer {}\r\n\r\n",
        admin_token("user_1")
    )
}

/// Opens a WebSocket by hand on a raw socket (bearer token, no client library in the way) and
/// returns it once the server has answered `101`.
pub async fn raw_websocket(app: &TestApp) -> TcpStream {
    let addr = app.base.trim_start_matches("http://");
    let mut socket = TcpStream::connect(addr).await.expect("connect");
    socket
        .write_all(handshake_request(app).as_bytes())
        .await
        .expect("write");
    let head = read_head(&mut socket).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head:?}");
    socket
}

/// Reads an HTTP response head, byte by byte so that nothing after it is consumed.
pub async fn read_head(socket: &mut TcpStream) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8];
        socket.read_exact(&mut byte).await.expect("response head");
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// The next server frame (unmasked): its opcode and payload.
pub async fn read_frame(socket: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut start = [0u8; 2];
    socket.read_exact(&mut start).await.expect("a frame header");
    let len = match start[1] & 0x7f {
        126 => u64::from(socket.read_u16().await.expect("length")),
        127 => socket.read_u64().await.expect("length"),
        short => u64::from(short),
    };
    let mut payload = vec![0u8; usize::try_from(len).expect("small frame")];
    socket.read_exact(&mut payload).await.expect("payload");
    (start[0] & 0x0f, payload)
}

/// Writes `bytes` and returns the code of the close frame the server answers with, in time.
pub async fn close_code_after(socket: &mut TcpStream, bytes: &[u8]) -> u16 {
    socket.write_all(bytes).await.expect("write");
    tokio::time::timeout(WAIT, close_code(socket))
        .await
        .expect("the server closes in time")
}

/// Reads server frames until a close frame and returns its code.
pub async fn close_code(socket: &mut TcpStream) -> u16 {
    loop {
        let (opcode, payload) = read_frame(socket).await;
        if opcode == 0x8 {
            return u16::from_be_bytes([payload[0], payload[1]]);
        }
    }
}

/// A masked client frame; the mask key is zero, so the payload goes as it is.
pub fn client_frame(first_byte: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![first_byte];
    match u16::try_from(payload.len()) {
        Ok(len @ 0..=125) => frame.push(0x80 | len as u8),
        Ok(len) => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&len.to_be_bytes());
        }
        Err(_) => panic!("a short test frame"),
    }
    frame.extend_from_slice(&[0, 0, 0, 0]);
    frame.extend_from_slice(payload);
    frame
}
