//! `mailbeacon`: parse the command line, run, exit with docs/design.md's codes. Everything else lives
//! in the library.

fn main() {
    std::process::exit(mailbeacon::cli::main());
}
