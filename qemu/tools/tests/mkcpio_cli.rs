//! Drives the `mkcpio` binary end to end: layering, argument errors, and the archive read back
//! with `qemu_tools::cpio::Reader`.

use qemu_tools::cpio::Reader;
use std::fs;
use std::path::PathBuf;
use std::process::Command;

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cairn-mkcpio-{tag}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

fn mkcpio() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mkcpio"))
}

#[test]
fn layers_in_order() {
    let d = tempdir("layers");
    fs::create_dir_all(d.join("base/etc")).unwrap();
    fs::create_dir_all(d.join("over/etc")).unwrap();
    fs::write(d.join("base/etc/motd"), "base").unwrap();
    fs::write(d.join("base/etc/hostname"), "cairn").unwrap();
    fs::write(d.join("over/etc/motd"), "overlay").unwrap();
    let out = d.join("out/initramfs.cpio");
    let st = mkcpio().arg("-o").arg(&out).arg(d.join("base")).arg("").arg(d.join("over")).status().unwrap();
    assert!(st.success());
    let bytes = fs::read(&out).unwrap();
    let entries = Reader::read_all(&bytes).unwrap();
    let got: Vec<(&str, &[u8])> = entries.iter().map(|e| (e.name, e.data)).collect();
    assert_eq!(got, [("etc", &b""[..]), ("etc/hostname", b"cairn"), ("etc/motd", b"overlay")]);
    let _ = fs::remove_dir_all(&d);
}

#[test]
fn errors() {
    let d = tempdir("errors");
    let out = mkcpio().args(["-o", d.join("x.cpio").to_str().unwrap(), "/nonexistent/layer"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/layer"));
    assert!(!d.join("x.cpio").exists());
    assert_eq!(mkcpio().arg(&d).output().unwrap().status.code(), Some(2), "no -o");
    assert_eq!(mkcpio().args(["-o", "x.cpio"]).output().unwrap().status.code(), Some(2), "no directory");
    assert_eq!(mkcpio().args(["--bogus"]).output().unwrap().status.code(), Some(2));
    let _ = fs::remove_dir_all(&d);
}
