//! The README's config reference is checked against the real config: it names exactly the
//! keys that the committed configs use, and the loader knows every one of them.

use std::collections::BTreeSet;
use std::path::Path;

/// The production examples in deploy/, which between them use every documented key.
const EXAMPLES: [&str; 4] = [
    "deploy/gateway.example.toml",
    "deploy/gateway.two-accounts.toml",
    "deploy/gateway.many-domains.toml",
    "deploy/gateway.wecom.toml",
];

fn root(p: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(p)).unwrap()
}

fn keys(prefix: &str, table: &toml::Table, out: &mut BTreeSet<String>) {
    for (k, v) in table {
        let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        match v {
            toml::Value::Table(t) if !is_secret(t) => keys(&path, t, out),
            toml::Value::Array(items)
                if items.iter().all(|i| matches!(i, toml::Value::Table(t) if !is_secret(t))) && !items.is_empty() =>
            {
                for item in items {
                    if let toml::Value::Table(t) = item {
                        keys(&path, t, out);
                    }
                }
            }
            _ => {
                out.insert(path);
            }
        }
    }
}

fn is_secret(t: &toml::Table) -> bool {
    t.len() == 1 && ["env", "file", "ephemeral"].iter().any(|k| t.contains_key(*k))
}

#[test]
fn reference_table_matches_the_configs() {
    let text = root("README.md");
    let section = text.split("\n## Configuration").nth(1).unwrap().split("\n## ").next().unwrap().to_string();
    let readme: BTreeSet<String> = section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once('`'))
        .map(|(k, _)| k.replace("[]", ""))
        .filter(|k| !k.contains(' ') && !k.chars().next().unwrap().is_ascii_digit())
        .collect();
    let mut used = BTreeSet::new();
    for file in ["gateway.toml"].into_iter().chain(EXAMPLES) {
        keys("", &toml::from_str(&root(file)).unwrap(), &mut used);
    }
    assert_eq!(readme, used, "README reference vs keys used in the committed configs");
}

#[test]
fn the_loader_knows_every_key_of_the_examples() {
    for file in EXAMPLES {
        let errors =
            openid_gateway::config::parse_str(&root(file), Path::new("/nonexistent")).err().unwrap_or_default();
        // Only the secrets and the files beside them (certificates, CAs) are missing here.
        let outside = |p: &str| {
            p.ends_with("secret")
                || p.contains("keys")
                || p.ends_with("key")
                || p.ends_with("cert")
                || p.ends_with("password")
                || p == "admin.token"
                || p == "state.ca"
                || p.ends_with("upstream_ca")
        };
        assert!(errors.iter().all(|e| outside(&e.path)), "{file}: {errors:?}");
    }
}
