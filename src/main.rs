//! `flink-operator`: the operator's command line.

use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!("usage: flink-operator crd | flink-operator validate FILE...");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("crd") => {
            print!("{}", flink_operator::crd::crds_yaml());
            ExitCode::SUCCESS
        }
        _ => usage(),
    }
}
