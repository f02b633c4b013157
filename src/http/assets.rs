//! The files of `static/`, embedded at build time (see `build.rs`).

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// The embedded file at `path` (no leading slash), with its content type.
pub fn lookup(path: &str) -> Option<(&'static [u8], &'static str)> {
    let path = if path.is_empty() { "index.html" } else { path };
    ASSETS
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(p, bytes)| (*bytes, content_type(p)))
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or_default() {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "wav" => "audio/wav",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn index_is_embedded() {
        let (body, ct) = super::lookup("").expect("index.html embedded");
        assert!(ct.starts_with("text/html"));
        assert!(std::str::from_utf8(body).unwrap().contains("clicktocall"));
        assert!(super::lookup("../Cargo.toml").is_none());
    }
}
