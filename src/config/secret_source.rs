//! Where a secret comes from: exactly one of an inline value, a `*_file`, or a systemd
//! credential, read at load unless the command needs no secret (then left empty).

use super::{ConfigError, Loader, Secret};
use std::path::{Path, PathBuf};

impl Loader<'_> {
    /// Exactly one of inline value, file, or systemd credential.
    pub(super) fn secret(
        &self,
        key: &str,
        inline: Option<String>,
        file: Option<PathBuf>,
        credential: Option<String>,
    ) -> Result<Secret, ConfigError> {
        // `oauth2.client_secret` → `oauth2.client_secret_credential`.
        let client = format!("{key}_");
        let base = if key.ends_with("client_secret") {
            client.as_str()
        } else {
            key
        }
        .trim_end_matches("password")
        .trim_end_matches("url")
        .trim_end_matches("token");
        match (inline, file, credential) {
            (Some(v), None, None) if !v.is_empty() => Ok(Secret::new(v)),
            (None, Some(_), None) | (None, None, Some(_)) if !self.read_secrets => {
                Ok(Secret::new(""))
            }
            (None, Some(path), None) => self.secret_file(&format!("{key}_file"), &path),
            (None, None, Some(name)) => {
                let dir = std::env::var_os("CREDENTIALS_DIRECTORY").ok_or_else(|| {
                    self.err(
                        format!("{base}credential"),
                        "CREDENTIALS_DIRECTORY is not set (use LoadCredential= in the unit)",
                    )
                })?;
                self.secret_file(&format!("{base}credential"), &Path::new(&dir).join(name))
            }
            (None, None, None) => {
                Err(self.err(key, format!("missing: set {key}, {key}_file or credential")))
            }
            (Some(_), None, None) => Err(self.err(key, "must not be empty")),
            _ => Err(self.err(
                key,
                format!("set only one of {key}, {key}_file, credential"),
            )),
        }
    }

    fn secret_file(&self, key: &str, path: &Path) -> Result<Secret, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| self.err(key, format!("{}: {}", path.display(), e.kind())))?;
        // The first line: editors add a trailing newline, and nothing after it is part of the secret.
        let value = text.lines().next().unwrap_or("").trim_end_matches('\r');
        if value.is_empty() {
            return Err(self.err(key, format!("{} is empty", path.display())));
        }
        Ok(Secret::new(value))
    }
}

#[cfg(test)]
mod tests {
    use crate::config::tests::{tempdir, write, GOOD};
    use crate::config::Config;

    #[test]
    fn inspection_needs_no_secret_files() {
        let text = GOOD.replace(
            "url = \"https://discord.com/api/webhooks/1/tok\"",
            "credential = \"alerts-url\"",
        );
        let dir = tempdir("inspect");
        let path = write(&dir, "c.toml", &text.replace("PASS", "/nonexistent/pass"));
        assert!(Config::load(&path).is_err());
        let c = Config::load_without_secrets(&path).unwrap();
        assert_eq!(c.accounts[0].password.expose(), "");
        assert_eq!(c.sinks[0].name, "alerts");
    }
}
