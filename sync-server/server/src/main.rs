//! `shikong`: the command-line entry point of the platform (store administration, import/export,
//! queries, history). Parsing and printing live here; the work is done by the library crates.

mod cli;
mod export;
mod import;
mod json;

use std::process::ExitCode;

fn main() -> ExitCode {
    match cli::run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, every cause, no backtrace: what users paste into a ticket.
            #[allow(clippy::print_stderr)]
            {
                eprintln!("shikong: {e:#}");
            }
            ExitCode::FAILURE
        }
    }
}
