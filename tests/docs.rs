//! The README and docs/ say only what is true of this repository: every `mailbeacon` command
//! they show uses a subcommand and flags the binary has (the commands themselves run in the
//! tests named beside them: setup, login, check, status, spool, selftest); every test command
//! they show, and every one in the comments of tests/, benches/ and .ci/, names a test target
//! and a module of it that exist; every file of the repository they name exists; every link
//! between them lands on a file and a heading that exist.

use crate::common::daemon::BIN;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// README.md, board/README.md and every docs/*.md, with their text.
fn documents() -> Vec<(PathBuf, String)> {
    let mut paths = vec![PathBuf::from("README.md"), PathBuf::from("board/README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(Path::new(ROOT).join("docs"))
        .expect("docs/ exists")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .map(|p| PathBuf::from("docs").join(p.file_name().expect("a file name")))
        .collect();
    docs.sort();
    assert!(docs.len() >= 5, "docs/ holds the reference: {docs:?}");
    paths.extend(docs);
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(Path::new(ROOT).join(&p))
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (p, text)
        })
        .collect()
}

/// The shell lines of ```sh blocks, continuation lines joined, comments dropped.
fn shell_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    let mut pending = String::new();
    for line in text.lines() {
        if let Some(lang) = line.strip_prefix("```") {
            inside = !inside && matches!(lang.trim(), "sh" | "bash");
            continue;
        }
        if !inside {
            continue;
        }
        let code = line.split(" #").next().unwrap_or(line).trim_end();
        if code.trim_start().starts_with('#') {
            continue;
        }
        match code.strip_suffix('\\') {
            Some(head) => pending.push_str(head),
            None => {
                pending.push_str(code);
                out.push(std::mem::take(&mut pending).trim().to_string());
            }
        }
    }
    out
}

/// `mailbeacon SUB … --flag …` from a shown line, whatever runs it (sudo, a path, qemu).
fn mailbeacon_command(line: &str) -> Option<Vec<String>> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words
        .iter()
        .position(|w| *w == "mailbeacon" || w.ends_with("/mailbeacon"))?;
    // `sudo -u mailbeacon mailbeacon …`: the user's name is not the command.
    let at = if words.get(at + 1) == Some(&"mailbeacon") {
        at + 1
    } else {
        at
    };
    let rest: Vec<String> = words[at + 1..].iter().map(|w| w.to_string()).collect();
    (!rest.is_empty()
        && !rest[0].starts_with('-')
        && rest[0].chars().all(|c| c.is_ascii_lowercase()))
    .then_some(rest)
}

#[test]
fn every_mailbeacon_command_shown_uses_real_subcommands_and_flags() {
    let mut checked = 0;
    for (path, text) in documents() {
        for line in shell_lines(&text) {
            let Some(words) = mailbeacon_command(&line) else {
                continue;
            };
            // The subcommand path: `spool dump`, `sink probe`, `setup`.
            let mut sub: Vec<&str> = vec![words[0].as_str()];
            if matches!(sub[0], "spool" | "sink" | "digest") {
                if let Some(w) = words.get(1).filter(|w| !w.starts_with('-')) {
                    sub.push(w);
                }
            }
            let help = Command::new(BIN)
                .args(&sub)
                .arg("--help")
                .output()
                .expect("run mailbeacon --help");
            let shown = String::from_utf8_lossy(&help.stdout);
            assert!(
                help.status.success(),
                "{}: `{line}`: `mailbeacon {}` is no command:\n{}",
                path.display(),
                sub.join(" "),
                String::from_utf8_lossy(&help.stderr)
            );
            for flag in words.iter().filter(|w| w.starts_with("--")) {
                let flag = flag.split('=').next().unwrap_or(flag);
                assert!(
                    shown.contains(&format!("{flag} ")) || shown.contains(&format!("{flag}\n")),
                    "{}: `{line}`: {flag} is no flag of `mailbeacon {}`",
                    path.display(),
                    sub.join(" ")
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} commands found");
}

/// The `[[test]]` targets of Cargo.toml.
fn test_targets() -> Vec<String> {
    let text = std::fs::read_to_string(Path::new(ROOT).join("Cargo.toml")).expect("Cargo.toml");
    let manifest: toml::Table = text.parse().expect("Cargo.toml parses");
    let tests = manifest.get("test").and_then(|t| t.as_array());
    tests
        .into_iter()
        .flatten()
        .filter_map(|t| t.get("name")?.as_str().map(str::to_string))
        .collect()
}

/// Each `cargo test … --test TARGET [FILTER] …` in `text` (in a ```sh block or in backticks,
/// on one line), as its target and filter: the first word that is no flag, before `--`.
fn test_commands(text: &str) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    for line in text.lines() {
        for (at, _) in line.match_indices("cargo test ") {
            let command = line[at..].split('`').next().unwrap_or_default();
            let words: Vec<&str> = command.split_whitespace().skip(2).collect();
            let mut target = None;
            let mut filter = None;
            let mut i = 0;
            while i < words.len() && words[i] != "--" {
                match words[i] {
                    "--test" => {
                        target = words.get(i + 1).map(|t| t.to_string());
                        i += 1;
                    }
                    w if w.starts_with('-') => {}
                    w => {
                        filter.get_or_insert(w.to_string());
                    }
                }
                i += 1;
            }
            if let Some(target) = target {
                out.push((target, filter));
            }
        }
    }
    out
}

/// Whether `filter` names tests of the `integration` target: `watch::` (a module: a file under
/// tests/, or a folder with mod.rs), `discord::bot::` (one within it), `powercut::x86` (the
/// start of the name of a function or module in the last module's file).
fn names_integration_tests(filter: &str) -> bool {
    let parts: Vec<&str> = filter.split("::").collect();
    let Some((last, modules)) = parts.split_last() else {
        return false;
    };
    let mut dir = Path::new(ROOT).join("tests");
    let mut file = None;
    for module in modules {
        let found = [
            dir.join(format!("{module}.rs")),
            dir.join(module).join("mod.rs"),
        ]
        .into_iter()
        .find(|f| f.is_file());
        let Some(found) = found else {
            return false;
        };
        file = Some(found);
        dir = dir.join(module);
    }
    let Some(text) = file.and_then(|f| std::fs::read_to_string(f).ok()) else {
        return false; // no module named: a bare word matches tests anywhere
    };
    last.is_empty() || text.contains(&format!("fn {last}")) || text.contains(&format!("mod {last}"))
}

/// Every file under `dir` whose name ends with one of `extensions` (or has none, as .ci's
/// scripts).
fn files_under(dir: &Path, extensions: &[&str], out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, extensions, out);
        } else if path.extension().map_or(extensions.contains(&""), |e| {
            extensions.iter().any(|x| e == *x)
        }) {
            out.push(path);
        }
    }
}

#[test]
fn every_test_and_file_named_exists() {
    let root = Path::new(ROOT);
    let targets = test_targets();
    assert_eq!(targets, ["integration"], "the test targets of Cargo.toml");
    let mut missing = BTreeSet::new();
    let mut shown = documents();
    let mut comments = Vec::new();
    for dir in ["tests", "benches", ".ci"] {
        files_under(&root.join(dir), &["rs", "sh", ""], &mut comments);
    }
    comments.retain(|f| !f.ends_with("tests/docs.rs"));
    for file in comments {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let relative = file.strip_prefix(root).unwrap_or(&file).to_path_buf();
        shown.push((relative, text));
    }
    let mut commands = 0;
    for (path, text) in &shown {
        for (target, filter) in test_commands(text) {
            commands += 1;
            let known =
                targets.contains(&target) && filter.as_deref().is_none_or(names_integration_tests);
            if !known {
                let filter = filter.unwrap_or_default();
                missing.insert(format!(
                    "{}: cargo test --test {target} {filter}",
                    path.display()
                ));
            }
        }
    }
    assert!(commands >= 5, "only {commands} test commands found");
    for (path, text) in documents() {
        // `tests/x.rs`, `src/a/b.rs`, `.ci/run`, `board/…` written in backticks.
        for quoted in text.split('`').skip(1).step_by(2) {
            let is_path = ["src/", "tests/", ".ci/", "board/", "systemd/", "docs/"]
                .iter()
                .any(|p| quoted.starts_with(p))
                && !quoted.contains(['*', ' ', '…', '<', '{'])
                && !quoted.ends_with('/');
            if is_path && !root.join(quoted).exists() {
                missing.insert(format!("{}: `{quoted}`", path.display()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "named but missing:\n{}",
        missing.into_iter().collect::<Vec<_>>().join("\n")
    );
}

/// GitHub's anchor of a heading.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == ' ' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(text: &str) -> BTreeSet<String> {
    let mut inside = false;
    let mut out = BTreeSet::new();
    for line in text.lines() {
        if line.starts_with("```") {
            inside = !inside;
        }
        if !inside && line.starts_with('#') {
            out.insert(anchor(line.trim_start_matches('#')));
        }
    }
    out
}

#[test]
fn every_link_between_the_documents_lands() {
    let docs = documents();
    let mut broken = Vec::new();
    for (path, text) in &docs {
        for link in text.split("](").skip(1) {
            let Some(target) = link.split(')').next() else {
                continue;
            };
            if target.starts_with("http") || target.contains(' ') {
                continue;
            }
            let (file, frag) = target.split_once('#').unwrap_or((target, ""));
            let file = if file.is_empty() {
                Path::new(ROOT).join(path)
            } else {
                Path::new(ROOT)
                    .join(path.parent().unwrap_or(Path::new("")))
                    .join(file)
            };
            let Ok(text) = std::fs::read_to_string(&file) else {
                if !file.exists() {
                    broken.push(format!("{}: ({target}): no such file", path.display()));
                }
                continue;
            };
            if !frag.is_empty() && !anchors(&text).contains(frag) {
                broken.push(format!("{}: ({target}): no such heading", path.display()));
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

/// Code comments cite the design in the repository (docs/design.md), never a file outside it.
#[test]
fn the_code_cites_only_files_in_the_repository() {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs" || e == "toml") {
                out.push(path);
            }
        }
    }
    let root = Path::new(ROOT);
    let mut files = vec![root.join("Cargo.toml")];
    for dir in ["src", "tests", "benches", "board"] {
        walk(&root.join(dir), &mut files);
    }
    let outside: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let text = std::fs::read_to_string(f).ok()?;
            ["DESIGN.md", "shared/notes", "../shared"]
                .iter()
                .any(|c| text.contains(c) && !(f.ends_with("docs.rs")))
                .then(|| f.display().to_string())
        })
        .collect();
    assert!(
        outside.len() < files.len() && files.len() > 50,
        "{}",
        files.len()
    );
    assert!(
        outside.is_empty(),
        "cite a file outside the repository: {outside:?}"
    );
}
