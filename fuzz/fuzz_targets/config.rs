//! Arbitrary text as a configuration file: parsing and validation answer with a config or an
//! error, never a panic; an accepted config also yields its triage and lint warnings.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailbeacon::config::Config;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::parse(Path::new("fuzz.toml"), text, false) {
        Ok(config) => {
            let triage = config.triage();
            let _ = triage.header_names();
            let _ = config.warnings();
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
