//! `pookeeper`: the PooKeeper server binary (see the library for the loop).
#![forbid(unsafe_code)]

use pookeeper_common::cli::{self, Command};
use pookeeper_common::warn;
use std::io::Write;

fn main() {
    pookeeper_common::log::init_from_env();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (settings, ignored) = match cli::parse("pookeeper", &args) {
        Ok(Command::Print(text)) => {
            print!("{text}");
            return;
        }
        Ok(Command::Run { settings, ignored }) => (settings, ignored),
        Ok(Command::Inspect(settings)) => match pookeeper_common::datadir::describe(&settings) {
            Ok(text) => {
                print!("{text}");
                return;
            }
            Err(e) => {
                eprintln!("pookeeper: {e}");
                std::process::exit(1);
            }
        },
        Ok(Command::Repair {
            settings,
            truncate_at,
        }) => match pookeeper_common::datadir::repair(&settings, truncate_at) {
            Ok(r) => {
                print!("{}", r.text);
                std::process::exit(if r.startable { 0 } else { 1 });
            }
            Err(e) => {
                eprintln!("pookeeper: {e}");
                std::process::exit(1);
            }
        },
        Err(e) => {
            eprintln!("pookeeper: {e}");
            std::process::exit(2);
        }
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
