//! The config file as `setup` edits it: an existing file is changed in place (toml_edit keeps
//! every other key, table and comment as it was); a table `setup` writes is found by its
//! `name` and only the keys it sets are replaced, with the keys they exclude (an inline
//! `password` once a `password_file` is set) removed.

use toml_edit::{value, Array, ArrayOfTables, DocumentMut, Item, Table};

pub(crate) struct Document {
    pub(crate) doc: DocumentMut,
}

impl Document {
    /// The file's document, or an empty one when there is no file yet.
    pub(crate) fn read(text: Option<&str>) -> Result<Document, String> {
        let doc = match text {
            Some(t) => t
                .parse::<DocumentMut>()
                .map_err(|e| format!("the existing config does not parse: {e}"))?,
            None => DocumentMut::new(),
        };
        Ok(Document { doc })
    }

    pub(crate) fn set_default(&mut self, key: &str, v: &str) {
        if !self.doc.contains_key(key) {
            self.doc[key] = value(v);
        }
    }

    /// The `[[kind]]` table named `name`, made (at the end) when there is none.
    pub(crate) fn named(&mut self, kind: &str, name: &str) -> &mut Table {
        if !self.doc.get(kind).is_some_and(|i| i.is_array_of_tables()) {
            // Absent, or written as something else (`account = 1`): a fresh array.
            self.doc[kind] = Item::ArrayOfTables(ArrayOfTables::new());
        }
        let Some(tables) = self.doc[kind].as_array_of_tables_mut() else {
            unreachable_table()
        };
        let at = tables
            .iter()
            .position(|t| t.get("name").and_then(|n| n.as_str()) == Some(name));
        let at = match at {
            Some(at) => at,
            None => {
                let mut t = Table::new();
                t["name"] = value(name);
                tables.push(t);
                tables.len() - 1
            }
        };
        match tables.get_mut(at) {
            Some(t) => t,
            None => unreachable_table(),
        }
    }

    /// The names of the `[[kind]]` tables, in file order.
    pub(crate) fn names(&self, kind: &str) -> Vec<String> {
        self.doc
            .get(kind)
            .and_then(|i| i.as_array_of_tables())
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.get("name").and_then(|n| n.as_str()).map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Moves the `[[kind]]` table named `name` to the end, as the last of its kind is read.
    pub(crate) fn move_last(&mut self, kind: &str, name: &str) {
        let Some(tables) = self
            .doc
            .get_mut(kind)
            .and_then(|i| i.as_array_of_tables_mut())
        else {
            return;
        };
        let Some(at) = tables
            .iter()
            .position(|t| t.get("name").and_then(|n| n.as_str()) == Some(name))
        else {
            return;
        };
        let Some(moved) = tables.get(at).cloned() else {
            return;
        };
        tables.remove(at);
        tables.push(moved);
    }

    /// The bucket without rules (the fallback) already in the file, if any.
    pub(crate) fn fallback(&self) -> Option<String> {
        self.doc
            .get("bucket")
            .and_then(|i| i.as_array_of_tables())?
            .iter()
            .find(|t| {
                t.get("rules")
                    .and_then(|r| r.as_array())
                    .is_none_or(|r| r.is_empty())
            })
            .and_then(|t| t.get("name").and_then(|n| n.as_str()).map(str::to_string))
    }

    pub(crate) fn table(&mut self, key: &str) -> &mut Table {
        if !self.doc.get(key).is_some_and(|i| i.is_table()) {
            self.doc[key] = Item::Table(Table::new());
        }
        match self.doc[key].as_table_mut() {
            Some(t) => t,
            None => unreachable_table(),
        }
    }

    pub(crate) fn text(&self) -> String {
        self.doc.to_string()
    }
}

/// The `[[kind]]` or `[key]` just made is a table; toml_edit offers no way to say so in types.
fn unreachable_table() -> ! {
    panic!("a table made a moment ago is missing")
}

/// Sets `key` in `t` and removes the keys it excludes.
pub(crate) fn set(t: &mut Table, key: &str, v: impl Into<toml_edit::Value>, excludes: &[&str]) {
    for k in excludes {
        t.remove(k);
    }
    t[key] = value(v);
}

pub(crate) fn strings(items: &[String]) -> Array {
    items.iter().map(String::as_str).collect()
}

/// `rules = [{ from = '…' }, { subject = '…' }]`, each pattern a literal string (no escapes).
pub(crate) fn rules(rules: &[(&str, String)]) -> Array {
    let mut a = Array::new();
    for (field, pattern) in rules {
        let mut t = toml_edit::InlineTable::new();
        t.insert(*field, toml_edit::Value::from(pattern.as_str()));
        a.push(t);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_existing_file_keeps_what_setup_does_not_touch() {
        let before = "# my notes\nstate_dir = \"/srv/mb\"\nspool_max_mb = 64\n\n[[account]]\nname = \"home\"\nhost = \"old.example\" # the old one\npassword = \"x\"\nfolders = [\"INBOX\", \"Work\"]\n\n[[account]]\nname = \"other\"\nhost = \"o.example\"\n";
        let mut d = Document::read(Some(before)).unwrap();
        d.set_default("state_dir", "/var/lib/mailbeacon");
        let a = d.named("account", "home");
        set(a, "host", "imap.gmail.com", &[]);
        set(
            a,
            "password_file",
            "/etc/mailbeacon/home.pass",
            &["password", "credential"],
        );
        d.named("sink", "alerts")["kind"] = value("webhook");
        let after = d.text();
        assert!(
            after.starts_with("# my notes\nstate_dir = \"/srv/mb\"\nspool_max_mb = 64\n"),
            "{after}"
        );
        assert!(after.contains("folders = [\"INBOX\", \"Work\"]"), "{after}");
        assert!(after.contains("host = \"imap.gmail.com\""), "{after}");
        assert!(!after.contains("password = \"x\""), "{after}");
        assert!(
            after.contains("name = \"other\"\nhost = \"o.example\""),
            "{after}"
        );
        assert_eq!(d.names("account"), ["home", "other"]);
        assert!(
            after.contains("[[sink]]\nname = \"alerts\"\nkind = \"webhook\""),
            "{after}"
        );
    }

    #[test]
    fn the_fallback_is_the_bucket_without_rules() {
        let d = Document::read(Some(
            "[[bucket]]\nname = \"stripe\"\nrules = [{ from = 'x' }]\n[[bucket]]\nname = \"rest\"\n",
        ))
        .unwrap();
        assert_eq!(d.fallback().as_deref(), Some("rest"));
        assert_eq!(Document::read(None).unwrap().fallback(), None);
    }
}
