//! `pookeeper`: the PooKeeper server binary (see the library for the loop).
#![forbid(unsafe_code)]

use pookeeper_common::cli::{self, Command};
use pookeeper_common::warn;
use std::io::Write;

fn main() {
    pookeeper_common::log::init_from_env();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cmd = match cli::parse("pookeeper", &args) {
        Ok(cmd) => cmd,
        Err(e) => {
            eprintln!("pookeeper: {e}");
            std::process::exit(2);
        }
    };
    if let Some(code) = cli::run_tool("pookeeper", &cmd) {
        std::process::exit(code);
    }
    let Command::Run { settings, ignored } = cmd else {
        unreachable!("run_tool handles every other command")
    };
    for key in ignored {
        warn!("ignoring unsupported configuration key {key}");
    }
    let ready = |addr, _stopper| {
        println!("pookeeper listening on {addr}");
        let _ = std::io::stdout().flush();
    };
    if let Err(e) = pookeeper_mio::run(&settings, true, ready) {
        eprintln!("pookeeper: {e}");
        std::process::exit(1);
    }
}
