//! Opens N idle connections of one shape to the harness server and holds them open.
//!
//! `clients PORT sse|ws|ws-actix-ws N [burst]`: every connection completes its handshake (and,
//! with `burst`, sends one 8 KiB masked binary frame and waits for the server's `ok`), then
//! `ready N` is printed and the connections are held until stdin closes.

use std::io::Read as _;

use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
};

const BURST: usize = 8 * 1024;
const WAVE: usize = 100;

/// Reads until the end of the response head and returns what came after it.
async fn read_head(stream: &mut TcpStream) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await.expect("read head");
        assert!(n > 0, "server closed during handshake");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return buf.split_off(pos + 4);
        }
    }
}

fn masked_binary_frame(len: usize) -> Vec<u8> {
    const MASK: [u8; 4] = [0x11, 0x22, 0x33, 0x44];
    let mut frame = vec![0x82, 0x80 | 126];
    frame.extend_from_slice(&(len as u16).to_be_bytes());
    frame.extend_from_slice(&MASK);
    frame.extend((0..len).map(|i| b'x' ^ MASK[i % 4]));
    frame
}

async fn open(port: u16, shape: &str, burst: bool) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let request = if shape == "sse" {
        "GET /sse HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n".to_owned()
    } else {
        format!(
            "GET /{shape} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
    };
    stream
        .write_all(request.as_bytes())
        .await
        .expect("write request");
    let mut rest = read_head(&mut stream).await;

    if shape == "sse" {
        // The first event arrives as one chunk: wait until it is complete.
        while !rest.windows(4).any(|w| w == b"\n\n\r\n") {
            let mut chunk = [0u8; 256];
            let n = stream.read(&mut chunk).await.expect("read event");
            assert!(n > 0, "server closed the stream");
            rest.extend_from_slice(&chunk[..n]);
        }
    } else if burst {
        stream
            .write_all(&masked_binary_frame(BURST))
            .await
            .expect("write burst");
        // The reply is a 4-byte frame: 0x82 0x02 'o' 'k'.
        while rest.len() < 4 {
            let mut chunk = [0u8; 16];
            let n = stream.read(&mut chunk).await.expect("read ack");
            assert!(n > 0, "server closed after the burst");
            rest.extend_from_slice(&chunk[..n]);
        }
        assert_eq!(&rest[..4], &[0x82, 0x02, b'o', b'k']);
    }
    stream
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let port: u16 = args[1].parse().expect("port");
    let shape = args[2].clone();
    let n: usize = args[3].parse().expect("count");
    let burst = args.get(4).is_some_and(|a| a == "burst");

    // Connect in waves, so the run takes seconds rather than N round trips in a row.
    let mut held = Vec::with_capacity(n);
    while held.len() < n {
        let mut wave = tokio::task::JoinSet::new();
        for _ in 0..WAVE.min(n - held.len()) {
            let shape = shape.clone();
            wave.spawn(async move { open(port, &shape, burst).await });
        }
        while let Some(stream) = wave.join_next().await {
            held.push(stream.expect("connection task"));
        }
    }
    println!("ready {}", held.len());

    // Hold the connections until the measuring script closes stdin.
    tokio::task::spawn_blocking(|| {
        let _ = std::io::stdin().read(&mut [0u8; 1]);
    })
    .await
    .unwrap();
}
