//! The `candela-fixtures` command as the JS tests call it (this test also
//! makes `cargo test --workspace` build the command, with the workspace's
//! features, so `npm test` reuses it).

use std::process::Command;

fn fixtures() -> Command {
    Command::new(env!("CARGO_BIN_EXE_candela-fixtures"))
}

#[test]
fn writes_a_model_and_prints_its_path() {
    let dir = std::env::temp_dir().join(format!("candela-testkit-cli-{}", std::process::id()));
    let out = fixtures().arg(&dir).args(["llama", "q4_0", "64"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let path = String::from_utf8(out.stdout).unwrap();
    let path = std::path::Path::new(path.trim());
    assert!(path.starts_with(&dir) && path.is_file(), "{}", path.display());
    let bert = fixtures().arg(&dir).arg("bert-mean").output().unwrap();
    assert!(bert.status.success());
    assert!(std::path::Path::new(String::from_utf8(bert.stdout).unwrap().trim()).join("config.json").is_file());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn refuses_unknown_kinds_and_bad_arguments() {
    let dir = std::env::temp_dir();
    let bad = fixtures().arg(&dir).arg("gpt5").output().unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown fixture kind 'gpt5'"));
    assert_eq!(fixtures().output().unwrap().status.code(), Some(2));
    assert_eq!(fixtures().arg(&dir).args(["qwen2", "q8_0", "many"]).output().unwrap().status.code(), Some(2));
    assert!(!fixtures().arg(&dir).args(["qwen2", "q8_0", "8"]).output().unwrap().status.success(), "context below 16");
}
