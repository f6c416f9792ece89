//! The `tiers` binary's offline tools against real data directories.

use std::process::Command;

use tiers_storage::{Config, Engine, TreeKind};

fn tiers(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tiers"))
        .args(args)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

fn populated_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), Config::default()).unwrap();
    let mut tx = engine.begin_write().unwrap();
    tx.create_tree("posts", TreeKind::BTree).unwrap();
    tx.create_tree("posts_by_author", TreeKind::Hash).unwrap();
    for i in 0..5000u32 {
        tx.put("posts", &i.to_be_bytes(), &[7u8; 200]).unwrap();
        tx.hash_insert("posts_by_author", &(i % 10).to_be_bytes(), &i.to_be_bytes())
            .unwrap();
    }
    tx.commit().unwrap();
    engine.close().unwrap();
    dir
}

#[test]
fn version_prints() {
    let (code, out) = tiers(&["--version"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("tiers "), "{out}");
}

#[test]
fn inspect_reports_trees_pages_and_journal() {
    let dir = populated_dir();
    let (code, out) = tiers(&["inspect", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("page size:        8192"), "{out}");
    assert!(
        out.contains("posts ") && out.contains("5000 entries"),
        "{out}"
    );
    assert!(
        out.contains("posts_by_author") && out.contains("hash"),
        "{out}"
    );
    assert!(out.contains("leaf") && out.contains("hash-bucket"), "{out}");
    assert!(out.contains("last checkpoint:"), "{out}");
}

#[test]
fn verify_passes_a_sound_directory_and_names_a_corrupt_page() {
    let dir = populated_dir();
    let (code, out) = tiers(&["verify", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("verify: OK"), "{out}");
    // Flip one bit inside a leaf page.
    let path = dir.path().join("data.tdb");
    let mut bytes = std::fs::read(&path).unwrap();
    let page = (2..bytes.len() / 8192)
        .find(|p| bytes[p * 8192 + 20] == 3)
        .unwrap();
    bytes[page * 8192 + 4000] ^= 0x20;
    std::fs::write(&path, &bytes).unwrap();
    let (code, out) = tiers(&["verify", dir.path().to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("page {page}")) && out.contains("checksum mismatch"),
        "{out}"
    );
}

#[test]
fn verify_of_a_missing_directory_says_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out) = tiers(&["verify", dir.path().join("nope").to_str().unwrap()]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("does not exist"), "{out}");
}

#[test]
fn db_config_file_flags_and_print_config() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tiers.toml");
    std::fs::write(&file, "[db]\nlisten = \"127.0.0.1:7777\"\ncache_mib = 64\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tiers"))
        .args(["db", "--print-config", "--cache-mib", "32", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("listen = \"127.0.0.1:7777\""), "{text}");
    assert!(text.contains("cache_mib = 32"), "the flag wins: {text}");
    std::fs::write(&file, "[db]\nlisten_port = 1\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tiers"))
        .args(["db", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("tiers.toml") && err.contains("listen_port"),
        "{err}"
    );
}

#[test]
fn ap_and_web_refuse_bad_setups_with_clear_errors() {
    let (code, text) = tiers(&["ap"]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("--app"), "{text}");
    let dir = tempfile::tempdir().unwrap();
    let (code, text) = tiers(&["ap", "--app", dir.path().to_str().unwrap()]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("app.toml"), "{text}");
    std::fs::write(
        dir.path().join("app.toml"),
        "name = \"x\"\n[[routes]]\nmethod = \"GET\"\npath = \"/a\"\nsql = \"SELECT 1\"\nresponse = \"xml\"\n",
    )
    .unwrap();
    let (code, text) = tiers(&[
        "ap",
        "--app",
        dir.path().to_str().unwrap(),
        "--db",
        "postgres://u@127.0.0.1:1/x",
    ]);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("route 0 (/a)") && text.contains("response"),
        "{text}"
    );
    let (code, text) = tiers(&["web"]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("nothing to serve"), "{text}");
    let (code, text) = tiers(&["web", "--upstream", "https://x"]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("http://"), "{text}");
    let (code, text) = tiers(&["web", "--root", "/", "--print-config"]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("[web]") && text.contains("header_timeout = \"30s\""),
        "{text}"
    );
}
