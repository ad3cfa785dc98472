// SPDX-License-Identifier: MIT
//! tokio_echo: the echo server a Rust programmer writes with tokio, on its
//! current_thread runtime (one thread, as every other peer), one task per
//! connection.
//!
//! Usage: tokio_echo --port P [--host H] [--mode echo|sink|http]
//! Prints "Serving on HOST:PORT" when ready; SIGTERM ends it (default action).

use std::process::exit;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const USAGE: &str = "Usage: tokio_echo --port P [--host H] [--mode echo|sink|http]";
const READ_SIZE: usize = 64 * 1024; // the read size of every other peer
const REPLY: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello, world!";

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Echo,
    Sink,
    Http,
}

fn usage_error(msg: &str) -> ! {
    eprintln!("tokio_echo: {}\n{}", msg, USAGE);
    exit(2);
}

fn parse() -> (String, u16, Mode) {
    let (mut host, mut port, mut mode) = ("127.0.0.1".to_string(), None, Mode::Echo);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage_error(&format!("{} needs a value", a)));
        match a.as_str() {
            "-h" | "--help" => {
                println!("{}\n  --port P  listen on port P (0: any free port)\n  --host H  listen on address H \
                          (default 127.0.0.1)\n  --mode M  echo (default), sink or http", USAGE);
                exit(0);
            }
            "--port" => port = Some(value().parse().unwrap_or_else(|_| usage_error("bad --port"))),
            "--host" => host = value(),
            "--mode" => {
                mode = match value().as_str() {
                    "echo" => Mode::Echo,
                    "sink" => Mode::Sink,
                    "http" => Mode::Http,
                    m => usage_error(&format!("--mode is echo, sink or http, not '{}'", m)),
                }
            }
            _ => usage_error(&format!("unrecognized option '{}'", a)),
        }
    }
    (host, port.unwrap_or_else(|| usage_error("--port is required")), mode)
}

/// Counts the requests ending in p; *crlf (bytes of "\r\n\r\n" matched) spans reads.
fn http_count(crlf: &mut usize, p: &[u8]) -> usize {
    const TERM: &[u8] = b"\r\n\r\n";
    let mut count = 0;
    for &b in p {
        *crlf = if b == TERM[*crlf] { *crlf + 1 } else { (b == b'\r') as usize };
        if *crlf == 4 {
            count += 1;
            *crlf = 0;
        }
    }
    count
}

async fn serve(mut s: TcpStream, mode: Mode) -> std::io::Result<()> {
    // Not zeroed: read_buf fills the spare capacity, so pages are touched
    // only as far as data lands in them (vec![0; N] writes all of it).
    let mut buf = Vec::with_capacity(READ_SIZE);
    let mut crlf = 0;
    let mut replies = Vec::new();
    loop {
        buf.clear();
        let n = s.read_buf(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        match mode {
            Mode::Echo => s.write_all(&buf[..n]).await?,
            Mode::Sink => {}
            Mode::Http => {
                let count = http_count(&mut crlf, &buf[..n]);
                if count > 0 {
                    replies.clear();
                    for _ in 0..count {
                        replies.extend_from_slice(REPLY);
                    }
                    s.write_all(&replies).await?;
                }
            }
        }
    }
}

fn main() {
    let (host, port, mode) = parse();
    let rt = tokio::runtime::Builder::new_current_thread().enable_io().build().expect("runtime");
    rt.block_on(async move {
        let l = TcpListener::bind((host.as_str(), port)).await.unwrap_or_else(|e| {
            eprintln!("tokio_echo: {}:{}: {}", host, port, e);
            exit(1)
        });
        println!("Serving on {}:{}", host, l.local_addr().unwrap().port());
        use std::io::Write;
        std::io::stdout().flush().ok();
        loop {
            let (s, _) = match l.accept().await {
                Ok(x) => x,
                Err(_) => continue, // EMFILE and the like: the next accept may work
            };
            s.set_nodelay(true).ok();
            tokio::spawn(async move {
                let _ = serve(s, mode).await;
            });
        }
    });
}
