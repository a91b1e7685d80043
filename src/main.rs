//! `flink-operator`: the operator's command line.
//!
//! * `flink-operator crd` prints the CustomResourceDefinitions as YAML.
//! * `flink-operator validate FILE...` checks manifests the way the operator (and the API
//!   server) would: one line per problem (`FILE: KIND/NAME: field.path: message`, or
//!   `FILE:LINE:COLUMN: message` for YAML syntax), notes for skipped documents, and a summary.
//!   Exit 0 when everything is valid, 1 when there is a problem, 2 for a usage error or an
//!   unreadable file.

use std::process::ExitCode;

const USAGE: &str = "usage: flink-operator crd\n       flink-operator validate FILE...";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("crd") if args.len() == 1 => {
            print!("{}", flink_operator::crd::crds_yaml());
            ExitCode::SUCCESS
        }
        Some("validate") if args.len() > 1 => validate(&args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn validate(files: &[String]) -> ExitCode {
    // Read everything first: an unreadable file is a usage error, reported before any output.
    let mut contents: Vec<Vec<u8>> = Vec::new();
    for file in files {
        match std::fs::read(file) {
            Ok(bytes) => contents.push(bytes),
            Err(e) => {
                eprintln!("flink-operator validate: cannot read {file}: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let inputs: Vec<(&str, &[u8])> = files
        .iter()
        .zip(&contents)
        .map(|(f, b)| (f.as_str(), b.as_slice()))
        .collect();
    let report = flink_operator::validation::validate_manifest_bytes(&inputs);
    print!("{report}");
    if report.is_valid() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
