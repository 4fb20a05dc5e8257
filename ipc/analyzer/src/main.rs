//! The `trace-analyzer` binary: parses the command line ([`trace_analyzer::cli`]), runs the
//! analysis, prints the report on standard output and the names of the files it wrote on
//! standard error.
//!
//! Exit status: 0 on success (problems found in the trace are part of the report, not
//! failures), 1 when the inputs cannot be read or hold no trace, 2 for a bad command line.
//! It holds no logic of its own, so everything it does is testable through the library.

use std::io::Write;
use std::process::ExitCode;
use trace_analyzer::cli::{self, Command};

fn main() -> ExitCode {
    let cli = match cli::parse(std::env::args().skip(1)) {
        Ok(Command::Help) => {
            print!("{}", cli::USAGE);
            return ExitCode::SUCCESS;
        }
        Ok(Command::Run(cli)) => cli,
        Err(e) => {
            eprintln!("trace-analyzer: {e}");
            return ExitCode::from(2);
        }
    };
    match cli::run(&cli) {
        Ok((report, written)) => {
            // A closed pipe (`| head`) is not an error worth reporting.
            let _ = std::io::stdout().lock().write_all(report.as_bytes());
            for path in written {
                eprintln!("trace-analyzer: wrote {}", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("trace-analyzer: {e}");
            ExitCode::from(1)
        }
    }
}
