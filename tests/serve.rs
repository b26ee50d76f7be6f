//! `alignment-gap serve` as a hostile web page and a slow client would meet it: a real server on a random
//! loopback port, raw HTTP over TCP (so nothing normalises the requests), every wait bounded.
#![cfg(not(target_arch = "wasm32"))]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server {
    child: Child,
    port: u16,
    root: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// A root like the repository's: the page's files, a large wasm, and files that must never be served.
fn start(name: &str) -> Server {
    let root = std::env::temp_dir().join(format!("alignment-gap-serve-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let files: [(&str, Vec<u8>); 7] = [
        ("index.html", b"<!doctype html><title>page</title>".to_vec()),
        ("www/main.js", b"export {};".to_vec()),
        // Large enough to fill the socket buffers of a client that stops reading.
        ("www/pkg/alignment_gap_bg.wasm", vec![0u8; 64 << 20]),
        ("results/fig1/summary.md", b"# result".to_vec()),
        ("Cargo.toml", b"[package]".to_vec()),
        (".git/config", b"[core]".to_vec()),
        ("target/release/alignment-gap", b"binary".to_vec()),
    ];
    for (f, bytes) in files {
        let p = root.join(f);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, bytes).unwrap();
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(env!("CARGO_BIN_EXE_alignment-gap"))
        .args(["serve", "--port", &port.to_string(), "--root", root.to_str().unwrap()])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "serve did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
    Server { child, port, root }
}

/// Sends `head` (request line and headers, without the final blank line) and returns (status, headers
/// lower-cased, body); fails the test if the answer takes more than 10 s.
fn request(port: u16, head: &str) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "{head}\r\n\r\n").unwrap();
    let mut bytes = vec![];
    s.read_to_end(&mut bytes).expect("the server answers within 10 s");
    let split = bytes.windows(4).position(|w| w == b"\r\n\r\n").expect("a complete response head");
    let head = String::from_utf8_lossy(&bytes[..split]).to_ascii_lowercase();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, head, bytes[split + 4..].to_vec())
}

fn get(port: u16, path: &str) -> (u16, String, Vec<u8>) {
    request(port, &format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}"))
}

fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::to_string))
}

#[test]
fn serves_the_page_and_nothing_else() {
    let s = start("page");
    let (status, head, body) = get(s.port, "/");
    assert_eq!((status, body.as_slice()), (200, &b"<!doctype html><title>page</title>"[..]));
    assert!(head.contains("content-type: text/html"), "{head}");
    assert_eq!(get(s.port, "/www/main.js").0, 200);
    assert_eq!(get(s.port, "/results/fig1/summary.md").0, 200);
    for path in ["/.git/config", "/Cargo.toml", "/target/release/alignment-gap", "/src/main.rs", "/www/../Cargo.toml", "/www/%2e%2e/Cargo.toml", "/../Cargo.toml"] {
        assert_eq!(get(s.port, path).0, 404, "{path} must not be served");
    }
    // DNS rebinding: a page on evil.example whose name resolves to 127.0.0.1 sends its own Host.
    for host in ["evil.example", "evil.example:PORT", "127.0.0.1:1"] {
        let host = host.replace("PORT", &s.port.to_string());
        let (status, _, body) = request(s.port, &format!("GET /.git/config HTTP/1.1\r\nHost: {host}"));
        assert_eq!(status, 403, "Host {host}");
        assert!(!String::from_utf8_lossy(&body).contains("[core]"));
        assert_eq!(request(s.port, &format!("GET / HTTP/1.1\r\nHost: {host}")).0, 403, "Host {host}");
    }
    assert_eq!(request(s.port, "GET / HTTP/1.0").0, 403, "no Host header");
    let two_hosts = format!("GET /.git/config HTTP/1.1\r\nHost: evil.example\r\nHost: 127.0.0.1:{}", s.port);
    assert_eq!(request(s.port, &two_hosts).0, 400, "two Host headers");
    // Absolute-form targets: the host they name must be this server too.
    let absolute = |host: &str, path: &str| request(s.port, &format!("GET http://{host}{path} HTTP/1.1\r\nHost: 127.0.0.1:{}", s.port)).0;
    assert_eq!(absolute(&format!("127.0.0.1:{}", s.port), "/www/main.js"), 200);
    assert_eq!(absolute(&format!("127.0.0.1:{}", s.port), "/.git/config"), 404);
    assert_eq!(absolute("evil.example", "/www/main.js"), 403);
    assert_eq!(request(s.port, &format!("GET / HTTP/1.1\r\nHost: localhost:{}", s.port)).0, 200);
    for method in ["POST", "PUT", "DELETE", "OPTIONS"] {
        let (status, head, _) = request(s.port, &format!("{method} / HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0", s.port));
        assert_eq!(status, 405, "{method}");
        assert_eq!(header(&head, "allow").as_deref(), Some("get, head"));
    }
    let (status, head, body) = request(s.port, &format!("HEAD /www/main.js HTTP/1.1\r\nHost: 127.0.0.1:{}", s.port));
    assert_eq!((status, body.len()), (200, 0));
    assert_eq!(header(&head, "content-length").as_deref(), Some("10"));
}

#[test]
fn the_wasm_is_revalidated_not_downloaded_again() {
    let s = start("etag");
    let (status, head, _) = request(s.port, &format!("HEAD /www/pkg/alignment_gap_bg.wasm HTTP/1.1\r\nHost: 127.0.0.1:{}", s.port));
    assert_eq!(status, 200);
    assert_eq!(header(&head, "content-type").as_deref(), Some("application/wasm"));
    assert!(header(&head, "last-modified").is_some_and(|d| d.ends_with(" gmt")), "{head}");
    let etag = header(&head, "etag").expect("an ETag");
    // The header was lower-cased by `request`; ETags here are lower-case hex already.
    let (status, _, body) = request(s.port, &format!("GET /www/pkg/alignment_gap_bg.wasm HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nIf-None-Match: {etag}", s.port));
    assert_eq!((status, body.len()), (304, 0));
    let (status, _, body) = request(s.port, &format!("GET /www/pkg/alignment_gap_bg.wasm HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nIf-None-Match: W/{etag}", s.port));
    assert_eq!((status, body.len()), (304, 0), "a weak match is a match for If-None-Match");
    let (status, _, body) = request(s.port, &format!("GET /www/pkg/alignment_gap_bg.wasm HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nIf-None-Match: \"other\"", s.port));
    assert_eq!((status, body.len()), (200, 64 << 20));
    // Without an ETag the browser sends back Last-Modified; the header was lower-cased by `request`.
    let modified = header(&head, "last-modified").unwrap();
    let original = modified.split(' ').map(|w| { let mut c = w.chars(); c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default() }).collect::<Vec<_>>().join(" ").replace("Gmt", "GMT");
    let (status, _, _) = request(s.port, &format!("GET /www/main.js HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nIf-Modified-Since: Thu, 01 Jan 1970 00:00:00 GMT", s.port));
    assert_eq!(status, 200, "an older date is not a match");
    let (status, _, _) = request(s.port, &format!("GET /www/pkg/alignment_gap_bg.wasm HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nIf-Modified-Since: {original}", s.port));
    assert_eq!(status, 304, "If-Modified-Since {original}");
}

#[test]
fn a_client_that_stops_reading_blocks_no_one_else() {
    let s = start("stall");
    // Two clients ask for the 64 MiB file and never read it: their responses stall in full socket buffers.
    let stalled: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut c = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
            write!(c, "GET /www/pkg/alignment_gap_bg.wasm HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\r\n", s.port).unwrap();
            c
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // Another client is answered at once, several times over.
    for _ in 0..3 {
        let t = Instant::now();
        assert_eq!(get(s.port, "/www/main.js").0, 200);
        assert!(t.elapsed() < Duration::from_secs(5), "a stalled reader delayed another client by {:?}", t.elapsed());
    }
    // A client that drips its request head (a header line every 2 s, each within the per-read timeout) is
    // cut off when the head's 10 s deadline passes, not held for ever.
    let mut drip = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    drip.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let t = Instant::now();
    write!(drip, "GET / HTTP/1.1\r\n").unwrap();
    let mut next_line = t + Duration::from_secs(2);
    let closed = loop {
        let mut buf = [0u8; 256];
        match drip.read(&mut buf) {
            Ok(_) => break t.elapsed(), // the answer (400) or the close
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => break t.elapsed(),
        }
        assert!(t.elapsed() < Duration::from_secs(30), "a dripping client held its connection for 30 s");
        if Instant::now() >= next_line {
            let _ = write!(drip, "X-Drip: {}\r\n", t.elapsed().as_millis());
            next_line += Duration::from_secs(2);
        }
    };
    assert!(closed >= Duration::from_secs(9) && closed < Duration::from_secs(15), "closed after {closed:?}");
    drop(stalled);
}
