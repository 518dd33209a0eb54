//! `tapis-agent config show`: every setting, its effective value and where
//! it came from. Secrets are never printed, only the file that holds them.

use super::effective::Effective;
use super::keys::{KEYS, Key};
use serde_json::{Value, json};
use std::fmt::Write as _;

/// Shown instead of a secret.
pub const REDACTED: &str = "<redacted>";

fn path(p: &std::path::Path) -> Value {
    Value::from(p.display().to_string())
}

/// The effective value of `key`, as JSON (`null` when unset).
fn value_of(e: &Effective, key: &Key) -> Value {
    let c = &e.config;
    let secs = |d: std::time::Duration| Value::from(d.as_secs());
    match key.name {
        "base_url" => c.base_url.clone().into(),
        "tenant" => c.tenant.clone().into(),
        "username" => c.username.clone().into(),
        "state_dir" => path(&c.state_dir),
        "log_level" => e.log_level.clone().into(),
        "cache_ttl_secs" => secs(c.cache_ttl),
        "refresh_margin_secs" => c.refresh_margin.map(secs).unwrap_or(Value::Null),
        "connect_timeout_secs" => secs(c.connect_timeout),
        "http_timeout_secs" => secs(c.http_timeout),
        "retries" => c.retries.into(),
        "request_deadline_secs" => secs(c.request_deadline),
        "credential_check_timeout_secs" => secs(c.ssh_call_timeout),
        "new_user_wait_secs" => secs(c.new_user_wait),
        "refresh_give_up_secs" => secs(c.refresh_give_up),
        "max_connections" => c.max_connections.into(),
        "idle_timeout_secs" => secs(c.idle_timeout),
        "max_parallel_systems" => c.max_parallel_systems.into(),
        "client_id" => c.client_id.clone().into(),
        // The key itself was read from the file; only say that there is one.
        "client_key_file" => c.client_key.as_ref().map(|_| REDACTED).into(),
        "export_token_file" => c.export_token_file.as_deref().map(path).into(),
        "state_lock" => Value::from(format!("{:?}", c.state_lock).to_lowercase()),
        "allow_insecure_http" => c.allow_insecure_http.into(),
        other => unreachable!("undocumented key {other}"),
    }
}

/// What `null` means for keys whose default is computed.
fn unset_means(key: &str) -> &'static str {
    match key {
        "refresh_margin_secs" => "(min of 300 s and 10 % of the token's lifetime)",
        "export_token_file" => "(off)",
        "username" => "(asked at login)",
        _ => "(unset)",
    }
}

/// The document printed by `config show --json` for profile `e` of `all`
/// (`e` is `all` itself for the default profile).
pub fn json(e: &Effective, all: &Effective) -> Value {
    let mut values = serde_json::Map::new();
    for key in KEYS {
        values.insert(
            key.name.into(),
            json!({"value": value_of(e, key), "source": e.source(key.name).to_string()}),
        );
    }
    values.insert(
        "socket".into(),
        json!({"value": path(&e.socket), "source": e.source("socket").to_string()}),
    );
    json!({
        "config_file": path(&e.config_file),
        "config_file_found": e.config_file_found,
        "config_file_source": e.source("config").to_string(),
        "profile": e.name(),
        "profiles": profile_names(all),
        "values": values,
    })
}

/// Names of the profiles besides the default one.
fn profile_names(all: &Effective) -> Vec<&str> {
    all.profiles.iter().filter_map(Effective::name).collect()
}

/// The human form: one aligned `key value # source` line per setting.
pub fn human(e: &Effective, all: &Effective) -> String {
    let mut rows: Vec<(&str, String, String)> = KEYS
        .iter()
        .map(|key| {
            let shown = match value_of(e, key) {
                Value::Null => unset_means(key.name).to_owned(),
                Value::String(s) => s,
                other => other.to_string(),
            };
            (key.name, shown, e.source(key.name).to_string())
        })
        .collect();
    rows.push((
        "socket",
        e.socket.display().to_string(),
        e.source("socket").to_string(),
    ));
    let kw = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let vw = rows.iter().map(|r| r.1.len()).max().unwrap_or(0).min(48);
    let found = if e.config_file_found {
        ""
    } else {
        " (not found: defaults apply)"
    };
    let mut s = format!("# config file: {}{found}\n", e.config_file.display());
    if let Some(name) = e.name() {
        let _ = writeln!(s, "# profile: {name}");
    }
    for (k, v, src) in rows {
        // Writing to a String cannot fail.
        let _ = writeln!(s, "{k:<kw$}  {v:<vw$}  # {src}");
    }
    let names = profile_names(all);
    if e.name().is_none() && !names.is_empty() {
        let _ = writeln!(
            s,
            "# also served: profiles {} (tapis-agent config show --profile NAME)",
            names.join(", ")
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::layers::{Flags, resolve};

    #[test]
    fn shows_every_key_with_source_and_redacts_the_client_key() {
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("client.key");
        std::fs::write(&key_file, "topsecretkey\n").unwrap();
        std::fs::set_permissions(
            &key_file,
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        let cfg = dir.path().join("config.toml");
        std::fs::write(
            &cfg,
            format!(
                "client_id = \"mine\"\nclient_key_file = \"{}\"\nretries = 1\n",
                key_file.display()
            ),
        )
        .unwrap();
        let flags = Flags {
            config: Some(cfg),
            base_url: Some("https://flag.example".into()),
            ..Flags::default()
        };
        let e = resolve(&flags, |_| None).unwrap();
        let text = human(&e, &e);
        assert!(!text.contains("topsecretkey"), "{text}");
        for key in KEYS {
            assert!(text.contains(key.name), "{} missing:\n{text}", key.name);
        }
        assert!(text.contains("https://flag.example"), "{text}");
        assert!(text.contains("# flag --base-url"), "{text}");
        assert!(text.contains("# file, line 3"), "{text}");
        let doc = json(&e, &e);
        assert!(!doc.to_string().contains("topsecretkey"));
        assert_eq!(doc["values"]["client_key_file"]["value"], REDACTED);
        assert_eq!(doc["values"]["retries"]["value"], 1);
        assert_eq!(doc["values"]["retries"]["source"], "file, line 3");
        assert_eq!(doc["values"]["tenant"]["value"], Value::Null);
        assert_eq!(doc["config_file_found"], true);
    }
}
