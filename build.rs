//! Embeds every file under `static/` (and the widget, `widget/widget.js`) into the binary, so
//! `clicktocall` serves its demo page, widget and prompts from any working directory.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn collect(dir: &Path, root: &Path, out: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(|e| e.path());
    for e in entries {
        let path = e.path();
        if path.is_dir() {
            collect(&path, root, out);
        } else if let Ok(rel) = path.strip_prefix(root) {
            let rel = rel.to_string_lossy().replace('\\', "/");
            if !rel.starts_with('.') {
                out.push((rel, path.canonicalize().unwrap_or(path)));
            }
        }
    }
}

fn main() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = manifest.join("static");
    println!("cargo:rerun-if-changed=static");
    println!("cargo:rerun-if-changed=widget/widget.js");
    let mut files = Vec::new();
    collect(&root, &root, &mut files);
    // The widget's source is served as-is (plain JavaScript, no build step): /widget.js.
    let widget = manifest.join("widget").join("widget.js");
    if widget.exists() {
        files.push(("widget.js".to_string(), widget));
    }
    let mut code = String::from("/// Files embedded from `static/`: (path, bytes).\npub static ASSETS: &[(&str, &[u8])] = &[\n");
    for (rel, path) in &files {
        let _ = writeln!(
            code,
            "    ({rel:?}, include_bytes!({:?})),",
            path.display().to_string()
        );
    }
    code.push_str("];\n");
    let out =
        PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("assets.rs");
    std::fs::write(out, code).expect("write assets.rs");
}
