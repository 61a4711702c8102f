//! Questions for `setup`: each one answered by its flag when given, else by the default under
//! `--yes`, else by the person at the terminal. Secrets are read without echo on a terminal
//! (termios), and never printed back.

use crate::config::Secret;
use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::os::fd::AsRawFd;
use std::path::Path;

pub(crate) struct Ask {
    /// `--yes`: no questions; a missing answer without a default is an error naming its flag.
    pub(crate) yes: bool,
    pub(crate) input: Box<dyn BufRead>,
    pub(crate) out: Box<dyn Write>,
    /// Each flag's last answer: a question asked again (after a failed test) offers it as
    /// the default, and its flag's value, tried once, is not used again.
    pub(crate) last: HashMap<String, String>,
}

/// Why setup cannot go on.
pub(crate) type Failed = String;

impl Ask {
    pub(crate) fn say(&mut self, text: &str) {
        let _ = writeln!(self.out, "{text}");
        let _ = self.out.flush();
    }

    fn line(&mut self) -> Result<String, Failed> {
        let mut line = String::new();
        match self.input.read_line(&mut line) {
            Ok(0) => Err("the input ended before setup was done; nothing was written".into()),
            Ok(_) => Ok(line.trim().to_string()),
            Err(e) => Err(format!("cannot read the answer: {e}")),
        }
    }

    /// A plain answer: `given` (a flag), else `default` under `--yes`, else asked. Asked again,
    /// the last answer is the default.
    pub(crate) fn text(
        &mut self,
        question: &str,
        flag: &str,
        given: Option<&str>,
        default: Option<&str>,
    ) -> Result<String, Failed> {
        let last = self.last.get(flag).cloned();
        let (given, default) = match &last {
            Some(l) => (None, Some(l.as_str())),
            None => (given, default),
        };
        let answer = self.answer(question, flag, given, default)?;
        self.last.insert(flag.to_string(), answer.clone());
        Ok(answer)
    }

    fn answer(
        &mut self,
        question: &str,
        flag: &str,
        given: Option<&str>,
        default: Option<&str>,
    ) -> Result<String, Failed> {
        if let Some(v) = given {
            self.say(&format!("{question}: {v}"));
            return Ok(v.to_string());
        }
        if self.yes {
            return default
                .map(|d| {
                    self.say(&format!("{question}: {d}"));
                    d.to_string()
                })
                .ok_or_else(|| format!("{question}: no answer; give {flag}"));
        }
        loop {
            match default {
                Some(d) => {
                    let _ = write!(self.out, "{question} [{d}]: ");
                }
                None => {
                    let _ = write!(self.out, "{question}: ");
                }
            }
            let _ = self.out.flush();
            let answer = self.line()?;
            match (answer.is_empty(), default) {
                (false, _) => return Ok(answer),
                (true, Some(d)) => return Ok(d.to_string()),
                (true, None) => self.say("  (an answer is needed)"),
            }
        }
    }

    /// One of `choices`.
    pub(crate) fn choice(
        &mut self,
        question: &str,
        flag: &str,
        given: Option<&str>,
        choices: &[&str],
        default: &str,
    ) -> Result<String, Failed> {
        let asked = format!("{question} ({})", choices.join(", "));
        let mut given = given;
        loop {
            let before = self.last.get(flag).cloned();
            let from_flag = given.is_some() && before.is_none();
            let answer = self.text(&asked, flag, given, Some(default))?;
            if choices.contains(&answer.as_str()) {
                return Ok(answer);
            }
            if from_flag || self.yes {
                return Err(format!(
                    "{flag} {answer:?} is not one of {}",
                    choices.join(", ")
                ));
            }
            self.forget(flag, before);
            given = None;
            self.say(&format!(
                "  {answer:?} is not one of {}",
                choices.join(", ")
            ));
        }
    }

    /// Drops an answer that did not fit: the question's default is again the last good one.
    fn forget(&mut self, flag: &str, before: Option<String>) {
        match before {
            Some(b) => self.last.insert(flag.to_string(), b),
            None => self.last.remove(flag),
        };
    }

    /// A whole number (a port, a GPIO line), asked again until it is one.
    pub(crate) fn number(
        &mut self,
        question: &str,
        flag: &str,
        given: Option<&str>,
        default: Option<&str>,
    ) -> Result<u32, Failed> {
        let mut given = given;
        loop {
            // A flag's value is used only before the question was ever answered.
            let before = self.last.get(flag).cloned();
            let from_flag = given.is_some() && before.is_none();
            let answer = self.text(question, flag, given, default)?;
            match answer.parse() {
                Ok(n) => return Ok(n),
                Err(_) if from_flag || self.yes => {
                    return Err(format!("{flag} {answer:?} is not a number"))
                }
                Err(_) => {
                    self.forget(flag, before);
                    given = None;
                    self.say(&format!("  {answer:?} is not a number"));
                }
            }
        }
    }

    /// Yes or no.
    pub(crate) fn confirm(
        &mut self,
        question: &str,
        given: Option<bool>,
        default: bool,
    ) -> Result<bool, Failed> {
        if let Some(v) = given {
            self.say(&format!("{question} {}", if v { "yes" } else { "no" }));
            return Ok(v);
        }
        if self.yes {
            self.say(&format!(
                "{question} {}",
                if default { "yes" } else { "no" }
            ));
            return Ok(default);
        }
        let hint = if default { "[Y/n]" } else { "[y/N]" };
        loop {
            let _ = write!(self.out, "{question} {hint} ");
            let _ = self.out.flush();
            match self.line()?.to_ascii_lowercase().as_str() {
                "" => return Ok(default),
                "y" | "yes" => return Ok(true),
                "n" | "no" => return Ok(false),
                _ => self.say("  (y or n)"),
            }
        }
    }

    /// A secret: the first line of `file` when given, else asked without echo.
    pub(crate) fn secret(
        &mut self,
        question: &str,
        flag: &str,
        file: Option<&Path>,
    ) -> Result<Secret, Failed> {
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("{flag} {}: {}", path.display(), e.kind()))?;
            let value = text.lines().next().unwrap_or("").trim();
            if value.is_empty() {
                return Err(format!("{flag} {}: empty", path.display()));
            }
            self.say(&format!("{question}: (from {})", path.display()));
            return Ok(Secret::new(value));
        }
        if self.yes {
            return Err(format!("{question}: no answer; give {flag}"));
        }
        loop {
            // Echo goes off before the prompt shows: whatever is typed (or pasted) as soon as
            // the prompt appears is never echoed.
            let quiet = Quiet::stdin();
            let _ = write!(self.out, "{question} (not shown): ");
            let _ = self.out.flush();
            let answer = self.line();
            if quiet.saved.is_none() {
                // A terminal echoes the newline itself (ECHONL); elsewhere, end the line here.
                self.say("");
            }
            drop(quiet);
            let answer = answer?;
            if !answer.is_empty() {
                return Ok(Secret::new(answer));
            }
            self.say("  (an answer is needed)");
        }
    }
}

/// The terminal's echo turned off while it lives (a no-op when stdin is no terminal).
struct Quiet {
    saved: Option<libc::termios>,
}

impl Quiet {
    fn stdin() -> Quiet {
        let fd = std::io::stdin().as_raw_fd();
        // SAFETY: tcgetattr/tcsetattr read and write a termios the struct fully owns; on a
        // descriptor that is no terminal they fail and nothing is changed.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(fd, &mut t) != 0 {
                return Quiet { saved: None };
            }
            let saved = t;
            t.c_lflag &= !libc::ECHO;
            t.c_lflag |= libc::ECHONL;
            if libc::tcsetattr(fd, libc::TCSANOW, &t) != 0 {
                return Quiet { saved: None };
            }
            Quiet { saved: Some(saved) }
        }
    }
}

impl Drop for Quiet {
    fn drop(&mut self) {
        if let Some(saved) = self.saved {
            // SAFETY: restores the attributes read from the same descriptor.
            unsafe {
                libc::tcsetattr(std::io::stdin().as_raw_fd(), libc::TCSANOW, &saved);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asking(typed: &str) -> Ask {
        Ask {
            yes: false,
            input: Box::new(std::io::Cursor::new(typed.as_bytes().to_vec())),
            out: Box::new(std::io::sink()),
            last: HashMap::new(),
        }
    }

    #[test]
    fn a_flag_answers_once_and_a_question_asked_again_takes_typing_until_it_fits() {
        let mut ask = asking("x\n2525\nsmtp\n\n");
        assert_eq!(ask.number("Port", "--port", Some("993"), None), Ok(993));
        // Asked again after a failed test: the flag is not reused, a typo is asked again.
        assert_eq!(ask.number("Port", "--port", Some("993"), None), Ok(2525));
        let tls = ["implicit", "starttls"];
        assert_eq!(
            ask.choice("TLS", "--tls", Some("starttls"), &tls, "implicit"),
            Ok("starttls".into())
        );
        // "smtp" is no choice: asked again, and Enter takes the last good answer.
        assert_eq!(
            ask.choice("TLS", "--tls", Some("starttls"), &tls, "implicit"),
            Ok("starttls".into())
        );
    }

    #[test]
    fn a_wrong_flag_ends_setup_naming_it() {
        let mut ask = asking("");
        let e = ask.number("Port", "--port", Some("99x"), None);
        assert_eq!(e, Err("--port \"99x\" is not a number".into()));
    }
}
