//! `flink-operator`: the operator's command line.

use std::process::ExitCode;

const USAGE: &str = "usage: flink-operator crd | flink-operator validate FILE...";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("crd") if args.len() == 1 => {
            print!("{}", flink_operator::crd::crds_yaml());
            ExitCode::SUCCESS
        }
        Some("validate") if args.len() > 1 => validate(&args[1..]),
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// Exit 0 when every Flink resource in the files is valid, 1 when any is not, 2 when a file
/// cannot be read.
fn validate(files: &[String]) -> ExitCode {
    let (mut resources, mut problems) = (0, 0);
    for file in files {
        let text = match std::fs::read(file) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(t) => t,
                Err(_) => {
                    println!("{file}: not a text file (invalid UTF-8)");
                    problems += 1;
                    continue;
                }
            },
            Err(e) => {
                eprintln!("{file}: cannot read: {e}");
                return ExitCode::from(2);
            }
        };
        let report = flink_operator::validation::validate_manifest_text(file, &text);
        for note in &report.notes {
            println!("note: {note}");
        }
        for p in &report.problems {
            println!("{p}");
        }
        resources += report.resources;
        problems += report.problems.len();
    }
    println!(
        "{} files, {resources} resources, {problems} problems",
        files.len()
    );
    if problems == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
