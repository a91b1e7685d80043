//! `flink-operator validate`: every upstream example is valid; each manifest of the invalid
//! corpus gets one clear problem naming the field (or the line and column), with exit 1.

use std::path::PathBuf;
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_flink-operator"))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn every_upstream_example_is_valid() {
    let dir = root().join("../shared/examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 8);
    let out = bin().arg("validate").args(&files).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains(", 0 problems"), "{stdout}");
}

#[test]
fn invalid_manifests_are_refused_with_the_field_named() {
    let dir = root().join("tests/fixtures/invalid");
    insta::glob!("fixtures/invalid/*.yaml", |path| {
        let relative =
            std::path::Path::new("tests/fixtures/invalid").join(path.file_name().unwrap());
        let out = bin()
            .current_dir(root())
            .arg("validate")
            .arg(&relative)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let expected = if path.ends_with("other-kinds-only.yaml") {
            0
        } else {
            1
        };
        assert_eq!(out.status.code(), Some(expected), "{stdout}");
        insta::assert_snapshot!(stdout);
    });
    assert!(dir.exists());
}

#[test]
fn unreadable_files_and_usage_are_exit_2() {
    let out = bin()
        .args(["validate", "/no/such/file.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/file.yaml"));
    assert_eq!(
        bin().arg("validate").output().unwrap().status.code(),
        Some(2)
    );
    assert_eq!(
        bin().arg("frobnicate").output().unwrap().status.code(),
        Some(2)
    );
}

#[test]
fn garbage_never_panics() {
    let inputs: [&[u8]; 8] = [
        b"",
        b"---\n---\n",
        b"\x00\x01\x02\xff",
        b"apiVersion: flink.apache.org/v1beta1\nkind: FlinkDeployment\n",
        b"apiVersion: flink.apache.org/v1beta1\nkind: FlinkDeployment\nmetadata: 3\nspec: []\n",
        b"apiVersion: flink.apache.org/v1beta1\nkind: FlinkSessionJob\nmetadata: {name: x}\nspec: {job: {parallelism: -1}, deploymentName: 7}\n",
        b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
        b"a: &x [*x]\n",
    ];
    let dir = std::env::temp_dir().join(format!("flink-operator-garbage-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (i, input) in inputs.iter().enumerate() {
        let file = dir.join(format!("g{i}.yaml"));
        std::fs::write(&file, input).unwrap();
        let out = bin().arg("validate").arg(&file).output().unwrap();
        let code = out.status.code();
        assert!(
            code == Some(0) || code == Some(1),
            "input {i}: {code:?} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !String::from_utf8_lossy(&out.stderr).contains("panicked"),
            "input {i}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}
