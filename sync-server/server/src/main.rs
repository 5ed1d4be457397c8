//! The `shikong` binary's commands: store administration, import/export, queries, history, the
//! gazetteer, the demo loader, `serve` (the HTTP service from `shikong-http`) and the device
//! commands (`shikong replica …`, over `shikong-sync-client`). Parsing and printing live here; the
//! work is done by the library crates.

use std::process::ExitCode;

mod backup_cli;
mod calendar_cli;
mod cli;

mod replica_cli;
mod replica_tasks_cli;
mod sensors_cli;
mod sensors_sim;
mod serve_cli;
mod store_cli;

// The server allocates many small objects from many threads; glibc's allocator showed up as a
// third of the CPU profile under load, mimalloc far less.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    match cli::run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, every cause, no backtrace: what users paste into a ticket.
            let text = format!("{e:#}");
            let line: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
            #[allow(clippy::print_stderr)]
            {
                eprintln!("shikong: {}", line.join(" "));
            }
            ExitCode::FAILURE
        }
    }
}
