//! Reads a TOML table key by key so that every mistake in a file is reported at once, each
//! with its key path, and keys nobody asked for are errors.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::de::DeserializeOwned;
use toml::{Table as TomlTable, Value};

use crate::util::secret::SecretSource;

/// One mistake in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The key path at fault, such as `routes[1].upstream`.
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Collects every mistake found while reading.
#[derive(Debug, Default)]
pub struct Errors(RefCell<Vec<ConfigError>>);

impl Errors {
    pub fn push(&self, path: impl Into<String>, message: impl Into<String>) {
        self.0.borrow_mut().push(ConfigError { path: path.into(), message: message.into() });
    }

    pub fn into_vec(self) -> Vec<ConfigError> {
        self.0.into_inner()
    }

    pub fn is_empty(&self) -> bool {
        self.0.borrow().is_empty()
    }
}

/// A view of one table of the file that remembers which keys were read.
pub struct Table<'a> {
    path: String,
    table: &'a TomlTable,
    read: BTreeSet<&'a str>,
    pub errors: &'a Errors,
}

impl<'a> Table<'a> {
    pub fn root(table: &'a TomlTable, errors: &'a Errors) -> Self {
        Self { path: String::new(), table, read: BTreeSet::new(), errors }
    }

    /// The key path of `key` in this table.
    pub fn path_of(&self, key: &str) -> String {
        if self.path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.path)
        }
    }

    pub fn error(&self, key: &str, message: impl Into<String>) {
        self.errors.push(self.path_of(key), message);
    }

    /// Whether the key is written in this table.
    pub fn has(&self, key: &str) -> bool {
        self.table.contains_key(key)
    }

    fn raw(&mut self, key: &str) -> Option<&'a Value> {
        let (k, v) = self.table.get_key_value(key)?;
        self.read.insert(k.as_str());
        Some(v)
    }

    /// An optional value of any serde type.
    pub fn opt<T: DeserializeOwned>(&mut self, key: &str) -> Option<T> {
        let v = self.raw(key)?;
        match v.clone().try_into::<T>() {
            Ok(t) => Some(t),
            Err(e) => {
                self.error(key, e.message().trim().to_string());
                None
            }
        }
    }

    /// A value that must be present.
    pub fn req<T: DeserializeOwned>(&mut self, key: &str) -> Option<T> {
        if !self.table.contains_key(key) {
            self.error(key, "is required");
            return None;
        }
        self.opt(key)
    }

    /// An optional string parsed with `parse`, whose error is reported at this key.
    pub fn parsed<T>(&mut self, key: &str, parse: impl FnOnce(&str) -> Result<T, String>) -> Option<T> {
        let s: String = self.opt(key)?;
        parse(&s).map_err(|m| self.error(key, m)).ok()
    }

    /// Like [`Table::parsed`], for a key that must be present; `what` explains it.
    pub fn req_parsed<T>(&mut self, key: &str, what: &str, parse: impl FnOnce(&str) -> Result<T, String>) -> Option<T> {
        if !self.table.contains_key(key) {
            self.error(key, format!("is required ({what})"));
            return None;
        }
        self.parsed(key, parse)
    }

    /// Like [`Table::parsed`] with `FromStr`.
    pub fn from_str<T: FromStr>(&mut self, key: &str) -> Option<T>
    where
        T::Err: fmt::Display,
    {
        self.parsed(key, |s| s.parse::<T>().map_err(|e| format!("{s:?}: {e}")))
    }

    /// A secret source: `{ env = "NAME" }`, `{ file = "PATH" }` or `{ ephemeral = true }`.
    pub fn secret(&mut self, key: &str) -> Option<SecretSource> {
        let Some(v) = self.raw(key) else {
            self.error(key, "is required (write { env = \"NAME\" } or { file = \"PATH\" })");
            return None;
        };
        let path = self.path_of(key);
        secret_from(v, &path, self.errors)
    }

    /// A nested table, or `None` (with an error) when the key holds something else.
    pub fn table(&mut self, key: &str) -> Option<Table<'a>> {
        match self.raw(key)? {
            Value::Table(t) => Some(self.child(self.path_of(key), t)),
            _ => {
                self.error(key, "must be a table");
                None
            }
        }
    }

    /// An array of tables (`[[key]]`); empty when absent.
    pub fn tables(&mut self, key: &str) -> Vec<Table<'a>> {
        let Some(v) = self.raw(key) else {
            return Vec::new();
        };
        let Value::Array(items) = v else {
            self.error(key, "must be an array of tables ([[...]])");
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let path = format!("{}[{i}]", self.path_of(key));
            match item {
                Value::Table(t) => out.push(self.child(path, t)),
                _ => self.errors.push(path, "must be a table"),
            }
        }
        out
    }

    fn child(&self, path: String, table: &'a TomlTable) -> Table<'a> {
        Table { path, table, read: BTreeSet::new(), errors: self.errors }
    }

    /// Reports every key of this table that was not read as unknown.
    pub fn finish(self) {
        for key in self.table.keys() {
            if !self.read.contains(key.as_str()) {
                self.errors.push(self.path_of(key), "unknown key");
            }
        }
    }
}

/// Reads a secret source from a TOML value, reporting mistakes at `path`.
pub fn secret_from(v: &Value, path: &str, errors: &Errors) -> Option<SecretSource> {
    let Value::Table(t) = v else {
        errors
            .push(path, "secrets are never written in the config file: use { env = \"NAME\" } or { file = \"PATH\" }");
        return None;
    };
    let mut found = Vec::new();
    for (k, val) in t {
        let src = match (k.as_str(), val) {
            ("env", Value::String(s)) => SecretSource::Env { env: s.clone() },
            ("file", Value::String(s)) => SecretSource::File { file: s.into() },
            ("ephemeral", Value::Boolean(b)) => SecretSource::Ephemeral { ephemeral: *b },
            ("env" | "file", _) => {
                errors.push(format!("{path}.{k}"), "must be a string");
                return None;
            }
            ("ephemeral", _) => {
                errors.push(format!("{path}.{k}"), "must be true or false");
                return None;
            }
            _ => {
                errors.push(format!("{path}.{k}"), "unknown key (use env, file or ephemeral)");
                return None;
            }
        };
        found.push(src);
    }
    if found.len() != 1 {
        errors.push(path, "name exactly one of env, file or ephemeral");
        return None;
    }
    found.pop()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_everything_with_paths() {
        let doc: TomlTable =
            toml::from_str("a = 1\nzz = 2\n[t]\nb = \"x\"\nsecret = \"inline\"\n[[r]]\nc = 1\n[[r]]\nd = 2\n").unwrap();
        let errors = Errors::default();
        let mut root = Table::root(&doc, &errors);
        let _: Option<String> = root.req("a");
        let _: Option<u32> = root.req("missing");
        if let Some(mut t) = root.table("t") {
            let _: Option<u32> = t.opt("b");
            let _ = t.secret("secret");
            t.finish();
        }
        for mut r in root.tables("r") {
            let _: Option<u32> = r.opt("c");
            r.finish();
        }
        root.finish();
        let got: Vec<String> = errors.into_vec().iter().map(|e| e.path.clone()).collect();
        assert_eq!(got, ["a", "missing", "t.b", "t.secret", "r[1].d", "zz"]);
    }
}
