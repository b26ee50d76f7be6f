//! The page's static file server, on loopback only. What it will answer is deliberately small:
//! - only the files the page needs: `index.html`, `www/` (the page and its wasm package) and `results/`
//!   (the shipped results); the rest of the repository (`.git/`, `src/`, `target/`) is 404;
//! - only requests addressed to `127.0.0.1:PORT` or `localhost:PORT`, so a web page elsewhere cannot read
//!   it by pointing its own host name at 127.0.0.1 (DNS rebinding);
//! - only GET and HEAD (405 otherwise);
//! - one thread per connection with read and write timeouts, so a client that stops reading holds only its
//!   own thread, and only until the timeout (tiny_http answered one request at a time and has no timeouts).
//!
//! Responses carry an ETag and Last-Modified, so the browser revalidates the 2.7 MB wasm with a 304 instead
//! of downloading it on every load. Types are explicit: the browser refuses a .wasm served with the wrong
//! MIME type, and module workers need text/javascript.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long a connection may sit without sending its request or without reading our response.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once; more get a 503 at once (a local page needs a dozen).
const MAX_CONNECTIONS: usize = 64;
/// The longest request head (request line and headers) read.
const MAX_HEAD_BYTES: u64 = 16 * 1024;
/// The longest a whole response may take: the largest file (the 2.7 MB wasm) needs milliseconds on
/// loopback, so only a client reading a trickle reaches it.
const RESPONSE_DEADLINE: Duration = Duration::from_secs(120);

fn mime(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "wasm" => "application/wasm",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "wgsl" | "md" | "txt" | "csv" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Maps a request target to a file the page needs, or None: anything outside `index.html`, `www/` and
/// `results/`, any `..`, hidden name or odd component, and (after resolving symlinks) anything that leads
/// out of those folders.
fn resolve(root: &Path, target: &str) -> Option<PathBuf> {
    let path = percent_decode(target.split(['?', '#']).next().unwrap_or("/"))?;
    let rel = path.strip_prefix('/')?;
    let rel = if rel.is_empty() { "index.html" } else { rel };
    if rel.contains('\\') || rel.contains('\0') {
        return None;
    }
    let rel = Path::new(rel);
    let parts: Vec<&str> = rel.components().map(|c| if let Component::Normal(n) = c { n.to_str() } else { None }).collect::<Option<_>>()?;
    if parts.iter().any(|p| p.starts_with('.')) {
        return None;
    }
    let allowed = match parts.as_slice() {
        ["index.html"] => true,
        [top, _, ..] => *top == "www" || *top == "results",
        _ => false,
    };
    if !allowed {
        return None;
    }
    let root = root.canonicalize().ok()?;
    let full = root.join(rel).canonicalize().ok()?;
    let base = if parts.len() == 1 { root.join("index.html") } else { root.join(parts[0]) };
    (full.starts_with(&base) && full.is_file()).then_some(full)
}

/// True when the Host header names this server: 127.0.0.1:PORT or localhost:PORT.
fn host_allowed(host: &str, port: u16) -> bool {
    let host = host.trim().to_ascii_lowercase();
    let names = ["127.0.0.1", "localhost"];
    // On port 80 browsers leave the port out of the Host header.
    names.iter().any(|n| host == format!("{n}:{port}") || (port == 80 && host == *n))
}

/// An HTTP date (RFC 9110 IMF-fixdate), e.g. "Sun, 06 Nov 1994 08:49:37 GMT".
fn http_date(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        WEEKDAYS[days.rem_euclid(7) as usize],
        MONTHS[month as usize - 1],
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// A request's method, target and the headers we act on.
struct Request {
    method: String,
    target: String,
    /// Every Host header (more than one is a malformed request).
    hosts: Vec<String>,
    if_none_match: Option<String>,
    if_modified_since: Option<String>,
}

/// The stream, for reading a request head, with one deadline for the whole head: the per-read timeout is
/// what is left of it, so a client that sends a byte every few seconds is cut off all the same.
struct HeadReader<'a> {
    stream: &'a TcpStream,
    deadline: std::time::Instant,
}

impl Read for HeadReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        self.stream.set_read_timeout(Some(left))?;
        (&mut &*self.stream).read(buf)
    }
}

fn read_request(stream: &TcpStream) -> Option<Request> {
    let head = HeadReader { stream, deadline: std::time::Instant::now() + TIMEOUT };
    let mut reader = BufReader::new(head.take(MAX_HEAD_BYTES));
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut words = line.split_whitespace();
    let (method, target) = (words.next()?.to_string(), words.next()?.to_string());
    let mut request = Request { method, target, hosts: vec![], if_none_match: None, if_modified_since: None };
    loop {
        line.clear();
        if reader.read_line(&mut line).ok()? == 0 {
            return None; // the head ended early (closed, or longer than MAX_HEAD_BYTES)
        }
        let l = line.trim_end();
        if l.is_empty() {
            return Some(request);
        }
        if let Some((k, v)) = l.split_once(':') {
            match k.trim().to_ascii_lowercase().as_str() {
                "host" => request.hosts.push(v.trim().to_string()),
                "if-none-match" => request.if_none_match = Some(v.trim().to_string()),
                "if-modified-since" => request.if_modified_since = Some(v.trim().to_string()),
                _ => {}
            }
        }
    }
}

fn respond(stream: &mut TcpStream, status: &str, headers: &[(&str, String)], body: Option<&mut dyn Read>) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {status}\r\nConnection: close\r\nX-Content-Type-Options: nosniff\r\n");
    for (k, v) in headers {
        head += &format!("{k}: {v}\r\n");
    }
    head += "\r\n";
    stream.write_all(head.as_bytes())?;
    if let Some(body) = body {
        let deadline = std::time::Instant::now() + RESPONSE_DEADLINE;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = body.read(&mut buf)?;
            if n == 0 {
                break;
            }
            if std::time::Instant::now() > deadline {
                return Err(std::io::ErrorKind::TimedOut.into());
            }
            stream.write_all(&buf[..n])?;
        }
    }
    stream.flush()
}

fn text_response(stream: &mut TcpStream, status: &str, text: &str, head_only: bool, extra: &[(&str, String)]) -> std::io::Result<()> {
    let mut headers = vec![("Content-Type", "text/plain; charset=utf-8".to_string()), ("Content-Length", text.len().to_string())];
    headers.extend(extra.iter().cloned());
    let mut body = text.as_bytes();
    respond(stream, status, &headers, if head_only { None } else { Some(&mut body) })
}

fn handle(mut stream: TcpStream, root: &Path, port: u16) -> std::io::Result<()> {
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    let Some(req) = read_request(&stream) else {
        return text_response(&mut stream, "400 Bad Request", "bad request\n", false, &[]);
    };
    let head_only = req.method == "HEAD";
    if req.hosts.len() > 1 {
        return text_response(&mut stream, "400 Bad Request", "more than one Host header\n", head_only, &[]);
    }
    // An absolute-form target (GET http://host/path) names its host itself, and must name this server too.
    let (target, target_host) = match req.target.strip_prefix("http://") {
        Some(rest) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            (if path.is_empty() { "/".to_string() } else { path.to_string() }, Some(authority.to_string()))
        }
        None => (req.target.clone(), None),
    };
    let host_ok = |h: &Option<String>| h.as_deref().is_none_or(|h| host_allowed(h, port));
    if req.hosts.is_empty() || !host_ok(&req.hosts.first().cloned()) || !host_ok(&target_host) {
        let msg = format!("this server answers only requests to 127.0.0.1:{port} or localhost:{port}\n");
        return text_response(&mut stream, "403 Forbidden", &msg, head_only, &[]);
    }
    if req.method != "GET" && !head_only {
        return text_response(&mut stream, "405 Method Not Allowed", "only GET and HEAD\n", false, &[("Allow", "GET, HEAD".into())]);
    }
    let Some(path) = resolve(root, &target) else {
        return text_response(&mut stream, "404 Not Found", "not found\n", head_only, &[]);
    };
    let mut file = std::fs::File::open(&path)?;
    let meta = file.metadata()?;
    let modified = meta.modified().unwrap_or(UNIX_EPOCH);
    let nanos = modified.duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let etag = format!("\"{:x}-{nanos:x}\"", meta.len());
    let mut headers = vec![
        ("Content-Type", mime(&path).to_string()),
        // Revalidate every time (a rebuilt wasm shows at once), but a 304 costs no download.
        ("Cache-Control", "no-cache".to_string()),
        ("ETag", etag.clone()),
        ("Last-Modified", http_date(modified)),
    ];
    // If-None-Match compares weakly (a W/ prefix matches); If-Modified-Since counts only without it, and
    // browsers send back the Last-Modified text they were given.
    let not_modified = match (&req.if_none_match, &req.if_modified_since) {
        (Some(tags), _) => tags.split(',').map(|t| t.trim().trim_start_matches("W/")).any(|t| t == etag || t == "*"),
        (None, Some(since)) => *since == http_date(modified),
        (None, None) => false,
    };
    if not_modified {
        return respond(&mut stream, "304 Not Modified", &headers, None);
    }
    headers.push(("Content-Length", meta.len().to_string()));
    respond(&mut stream, "200 OK", &headers, if head_only { None } else { Some(&mut file) })
}

/// Decrements the count of open connections when a connection's thread ends, however it ends.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

pub fn serve(root: &Path, port: u16) -> Result<(), String> {
    if !root.join("index.html").is_file() {
        return Err(format!("root: {} holds no index.html (run from the repository root or pass --root)", root.display()));
    }
    for pkg in ["www/pkg", "www/pkg-relaxed"] {
        if !root.join(pkg).join("alignment_gap_bg.wasm").is_file() {
            eprintln!("warning: {pkg}/ has no wasm build yet; build both with: bash scripts/build-wasm.sh (serve.sh does)");
        }
    }
    let root = root.canonicalize().map_err(|e| format!("root: {}: {e}", root.display()))?;
    let addr = format!("127.0.0.1:{port}");
    let listener = TcpListener::bind(&addr).map_err(|e| format!("port {port}: cannot listen on {addr}: {e}"))?;
    println!("serving index.html, www/ and results/ of {} at http://{addr}/  (Ctrl-C stops)", root.display());
    let open = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        if open.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            open.fetch_sub(1, Ordering::SeqCst);
            // Read what the client sent (briefly) so closing does not reset the connection before it
            // sees the 503.
            let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
            let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
            let _ = stream.read(&mut [0u8; 16 * 1024]);
            let _ = text_response(&mut stream, "503 Service Unavailable", "too many connections\n", false, &[("Retry-After", "1".into())]);
            let _ = stream.shutdown(std::net::Shutdown::Write);
            continue;
        }
        let (slot, root) = (Slot(open.clone()), root.clone());
        std::thread::spawn(move || {
            let _slot = slot;
            if let Err(e) = handle(stream, &root, port) {
                // A client that left or stalled past the timeouts is not the server's problem to report.
                use std::io::ErrorKind::*;
                if !matches!(e.kind(), BrokenPipe | ConnectionReset | TimedOut | WouldBlock) {
                    eprintln!("serve: {e}");
                }
            }
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_page_files_are_served() {
        let root = std::env::temp_dir().join(format!("alignment-gap-serve-unit-{}", std::process::id()));
        for f in ["index.html", "www/main.js", "results/fig1/fig1.svg", "Cargo.toml", "src/main.rs", ".git/config", "www/.hidden"] {
            let p = root.join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, "x").unwrap();
        }
        let ok = |t: &str| resolve(&root, t).is_some();
        assert!(ok("/") && ok("/index.html") && ok("/www/main.js?v=1") && ok("/results/fig1/fig1.svg") && ok("/www/%6Dain.js"));
        for bad in ["/Cargo.toml", "/src/main.rs", "/.git/config", "/www/.hidden", "/../etc/passwd", "/www/../Cargo.toml", "/www/..%2FCargo.toml", "/www", "/www/", "/results", "relative", "/www\\main.js", "/%ZZ"] {
            assert!(!ok(bad), "{bad} must not be served");
        }
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn hosts_and_dates() {
        assert!(host_allowed("127.0.0.1:8080", 8080) && host_allowed("LOCALHOST:8080", 8080));
        assert!(host_allowed("127.0.0.1", 80) && host_allowed("localhost:80", 80) && !host_allowed("127.0.0.1", 8080));
        assert!(!host_allowed("evil.example", 8080) && !host_allowed("127.0.0.1:8081", 8080) && !host_allowed("evil.example:8080", 8080));
        assert_eq!(http_date(UNIX_EPOCH + Duration::from_secs(784_111_777)), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(UNIX_EPOCH + Duration::from_secs(951_782_400)), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(mime(Path::new("a.wasm")), "application/wasm");
        assert!(mime(Path::new("a.js")).starts_with("text/javascript"));
    }
}
