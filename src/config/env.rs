//! `CLICKTOCALL_*` environment overrides, so secrets stay out of the config file.
//!
//! | variable | sets |
//! |---|---|
//! | `CLICKTOCALL_AGENT_<ID>_PASSWORD` | `agents[id=<ID>].password` |
//! | `CLICKTOCALL_SUPERVISOR_<ID>_PASSWORD` | `supervisors[id=<ID>].password` |
//! | `CLICKTOCALL_TRUNK_<NAME>_PASSWORD` | `trunks[name=<NAME>].password` |
//! | `CLICKTOCALL_NONCE_SECRET` | `registrar.nonce_secret` |
//! | `CLICKTOCALL_HTTP_LISTEN` | `http.listen` |
//! | `CLICKTOCALL_SIP_ADVERTISED_HOST` | `sip.advertised_host` |
//! | `CLICKTOCALL_API_KEY` | `api.key` |
//! | `CLICKTOCALL_API_KEY_<NAME>` | `api.keys[name=<NAME>].key` |
//! | `CLICKTOCALL_TURN_SECRET` | `ice.turn_secret` |
//! | `CLICKTOCALL_WEBHOOK_SECRET` | `webhooks.secret` |
//! | `CLICKTOCALL_RECORDS_DATABASE` | `records.database` |
//! | `CLICKTOCALL_SITE_<KEY>_SECRET` | `sites[key=<KEY>].secret` |
//! | `CLICKTOCALL_RESUME_SECRET` | `widget.resume_secret` |
//!
//! `<ID>`, `<NAME>` and `<KEY>` are upper-cased with every character other than a letter or digit turned into `_`.

use super::{Config, ConfigError};

/// The form an agent id or trunk name takes inside a variable name.
pub(super) fn var_part(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

pub(super) fn apply(
    cfg: &mut Config,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    for (name, value) in vars {
        let Some(rest) = name.strip_prefix("CLICKTOCALL_") else {
            continue;
        };
        match rest {
            "NONCE_SECRET" => cfg.registrar.nonce_secret = value,
            "HTTP_LISTEN" => {
                cfg.http.listen = value.parse().map_err(|e| ConfigError::Invalid {
                    key: format!("{name} (http.listen)"),
                    reason: format!("{value:?}: {e}"),
                })?
            }
            "SIP_ADVERTISED_HOST" => cfg.sip.advertised_host = Some(value),
            "API_KEY" => cfg.api.key = value,
            "TURN_SECRET" => cfg.ice.turn_secret = value,
            "WEBHOOK_SECRET" => cfg.webhooks.secret = value,
            "RECORDS_DATABASE" => cfg.records.database = value.into(),
            "RESUME_SECRET" => cfg.widget.resume_secret = Some(value),
            _ => apply_secret(cfg, &name, rest, value)?,
        }
    }
    Ok(())
}

fn apply_secret(
    cfg: &mut Config,
    name: &str,
    rest: &str,
    value: String,
) -> Result<(), ConfigError> {
    if let Some(id) = rest
        .strip_prefix("AGENT_")
        .and_then(|r| r.strip_suffix("_PASSWORD"))
    {
        let agent = cfg.agents.iter_mut().find(|a| var_part(&a.id) == id);
        return match agent {
            Some(a) => {
                a.password = Some(value);
                Ok(())
            }
            None => Err(unknown(name, "agent")),
        };
    }
    if let Some(id) = rest
        .strip_prefix("SUPERVISOR_")
        .and_then(|r| r.strip_suffix("_PASSWORD"))
    {
        let sup = cfg.supervisors.iter_mut().find(|s| var_part(&s.id) == id);
        return match sup {
            Some(s) => {
                s.password = Some(value);
                Ok(())
            }
            None => Err(unknown(name, "supervisor")),
        };
    }
    if let Some(id) = rest
        .strip_prefix("TRUNK_")
        .and_then(|r| r.strip_suffix("_PASSWORD"))
    {
        let trunk = cfg.trunks.iter_mut().find(|t| var_part(&t.name) == id);
        return match trunk {
            Some(t) => {
                t.password = Some(value);
                Ok(())
            }
            None => Err(unknown(name, "trunk")),
        };
    }
    if let Some(key_name) = rest.strip_prefix("API_KEY_") {
        let key = cfg
            .api
            .keys
            .iter_mut()
            .find(|k| var_part(&k.name) == key_name);
        return match key {
            Some(k) => {
                k.key = value;
                Ok(())
            }
            None => Err(unknown(name, "API key")),
        };
    }
    if let Some(key) = rest
        .strip_prefix("SITE_")
        .and_then(|r| r.strip_suffix("_SECRET"))
    {
        let site = cfg.sites.iter_mut().find(|s| var_part(&s.key) == key);
        return match site {
            Some(s) => {
                s.secret = Some(value);
                Ok(())
            }
            None => Err(unknown(name, "site")),
        };
    }
    // Other CLICKTOCALL_ variables (CLICKTOCALL_CONFIG used by scripts, say) are not ours to judge.
    Ok(())
}

/// A password for something the config does not define is almost always a typo: say so.
fn unknown(name: &str, what: &str) -> ConfigError {
    ConfigError::Invalid {
        key: name.to_string(),
        reason: format!("no {what} in the config matches this variable"),
    }
}
