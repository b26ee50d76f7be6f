//! A static file server for the page, on loopback only. The browser refuses to compile a .wasm served
//! with the wrong MIME type, and module workers need text/javascript, so types are set explicitly.

use std::path::{Component, Path, PathBuf};

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

/// Maps a request path to a file under `root`, refusing anything that climbs out of it.
fn resolve(root: &Path, url: &str) -> Option<PathBuf> {
    let path = url.split(['?', '#']).next().unwrap_or("/");
    let rel = Path::new(path.trim_start_matches('/'));
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return None;
    }
    let full = root.join(rel);
    Some(if path.ends_with('/') || path.is_empty() { full.join("index.html") } else { full })
}

pub fn serve(root: &Path, port: u16) -> Result<(), String> {
    if !root.join("index.html").is_file() {
        return Err(format!("root: {} holds no index.html (run from the repository root or pass --root)", root.display()));
    }
    if !root.join("www/pkg/alignment_gap_bg.wasm").is_file() {
        eprintln!("warning: www/pkg/ has no wasm build yet; build it with: bash scripts/serve.sh");
    }
    let addr = format!("127.0.0.1:{port}");
    let server = tiny_http::Server::http(&addr).map_err(|e| format!("port {port}: cannot listen on {addr}: {e}"))?;
    println!("serving {} at http://{addr}/  (Ctrl-C stops)", root.display());
    for request in server.incoming_requests() {
        let file = resolve(root, request.url()).filter(|p| p.is_file());
        let result = match file.and_then(|p| std::fs::read(&p).ok().map(|b| (p, b))) {
            Some((path, bytes)) => {
                let header = |k: &str, v: &str| tiny_http::Header::from_bytes(k, v).expect("static header");
                let response = tiny_http::Response::from_data(bytes)
                    .with_header(header("Content-Type", mime(&path)))
                    .with_header(header("Cache-Control", "no-cache"));
                request.respond(response)
            }
            None => request.respond(tiny_http::Response::from_string("not found").with_status_code(404)),
        };
        if let Err(e) = result {
            eprintln!("serve: {e}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_root() {
        let root = Path::new("/srv");
        assert_eq!(resolve(root, "/"), Some(PathBuf::from("/srv/index.html")));
        assert_eq!(resolve(root, "/www/main.js?v=1"), Some(PathBuf::from("/srv/www/main.js")));
        assert_eq!(resolve(root, "/../etc/passwd"), None);
        assert_eq!(resolve(root, "/www/../../x"), None);
        assert_eq!(mime(Path::new("a.wasm")), "application/wasm");
        assert!(mime(Path::new("a.js")).starts_with("text/javascript"));
    }
}
