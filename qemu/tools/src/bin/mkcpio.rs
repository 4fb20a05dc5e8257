//! `mkcpio`: writes host directories, layered in order, as a cpio newc archive (the initramfs
//! format; see `qemu_tools::cpio` for the exact layout).
//!
//! usage: mkcpio -o OUT.cpio DIR [DIR...]
//!
//! Later directories override earlier ones at the same path. Empty arguments are ignored (so
//! that an unset `OVERLAY=` in the justfile costs nothing); a missing directory is an error.
//! The archive is written atomically (temporary file, then rename). Exit status: 0 on
//! success, 1 on an I/O error, 2 on a usage error.

use std::path::{Path, PathBuf};
use std::process::exit;

const USAGE: &str = "usage: mkcpio -o OUT.cpio DIR [DIR...]   (later directories override earlier ones)";

fn usage_error(why: &str) -> ! {
    eprintln!("mkcpio: {why}\n{USAGE}");
    exit(2)
}

fn main() {
    let mut out: Option<PathBuf> = None;
    let mut dirs: Vec<String> = Vec::new();
    let mut args = std::env::args().skip(1);
    let mut only_dirs = false;
    while let Some(a) = args.next() {
        match a.as_str() {
            _ if only_dirs => dirs.push(a),
            "-o" | "--output" => match args.next() {
                Some(o) if !o.is_empty() => out = Some(o.into()),
                _ => usage_error("-o needs a file name"),
            },
            "-h" | "--help" => {
                println!("{USAGE}");
                return;
            }
            "--" => only_dirs = true,
            s if s.starts_with('-') && s.len() > 1 => usage_error(&format!("unknown option {s}")),
            _ => dirs.push(a),
        }
    }
    let Some(out) = out else { usage_error("no output file (-o)") };
    let layers: Vec<&Path> = dirs.iter().filter(|d| !d.trim().is_empty()).map(Path::new).collect();
    if layers.is_empty() {
        usage_error("no input directory");
    }
    if let Err(e) = qemu_tools::cpio::build(&out, &layers) {
        eprintln!("mkcpio: {e}");
        exit(1);
    }
}
