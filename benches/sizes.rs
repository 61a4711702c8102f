//! Section `size`: the Raspberry Pi release binaries, built the way `.ci/cross` builds them
//! (`cargo build --release --locked --target T`; a no-op when they are up to date). The release
//! profile strips them; `readelf` confirms no symbol table is left. A target whose toolchain is
//! missing gives a row saying so (`.ci/cross` installs the cross linkers and targets).

use crate::{progress, Row};
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGETS: &[(&str, &str, Option<f64>)] = &[
    (
        "aarch64-unknown-linux-musl",
        "aarch64 (musl, static)",
        Some(6.0),
    ),
    ("armv7-unknown-linux-gnueabihf", "armv7 (gnueabihf)", None),
];

pub fn sizes() -> Vec<Row> {
    TARGETS
        .iter()
        .map(|(target, label, goal_mb)| {
            progress("size", &format!("cargo build --release --target {target}"));
            let figure = format!("release binary, {label}, stripped");
            let bin = match build(target) {
                Ok(bin) => bin,
                Err(why) => {
                    return Row::new("size", &figure, "not built".into()).note(&why);
                }
            };
            let bytes = std::fs::metadata(&bin).map_or(0, |m| m.len());
            let mut row = Row::new(
                "size",
                &figure,
                format!("{:.2} MB", bytes as f64 / 1_000_000.0),
            )
            .note(&format!("{bytes} bytes; {}", symbols(&bin)));
            if let Some(mb) = goal_mb {
                row = row.goal(&format!("≤ {mb} MB"), bytes as f64 <= mb * 1_000_000.0);
            }
            row
        })
        .collect()
}

/// The binary's path, after cargo made sure it is up to date.
fn build(target: &str) -> Result<PathBuf, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["build", "--release", "--locked", "--target", target])
        .current_dir(root)
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr.lines().rev().find(|l| !l.trim().is_empty());
        return Err(format!(
            "build failed ({}); run .ci/cross once",
            last.unwrap_or("no message").trim()
        ));
    }
    // The host binary lives in <target dir>/release/mailbeacon; the cross ones beside it.
    let target_dir = Path::new(env!("CARGO_BIN_EXE_mailbeacon"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| root.join("target"));
    Ok(target_dir.join(target).join("release/mailbeacon"))
}

fn symbols(bin: &Path) -> &'static str {
    match Command::new("readelf").arg("-S").arg(bin).output() {
        Ok(out) if out.status.success() => {
            if String::from_utf8_lossy(&out.stdout).contains(".symtab") {
                "NOT stripped: has .symtab"
            } else {
                "no .symtab"
            }
        }
        _ => "readelf missing: stripping not checked",
    }
}
