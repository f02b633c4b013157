//! IVR configuration: `[ivr]` (the start menu, prompt directories, prompts per language) and its
//! `[[ivr.menus]]` (options, retries, button labels), turned into the IVR runner's menus with
//! errors that name the key.

use super::calls::QueueConfig;
use super::ConfigError;
use crate::ivr::{Menu, MenuAction};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

/// `[ivr]`: the menus customers meet first.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IvrSection {
    /// The menu every call starts in.
    pub start: String,
    /// A directory whose `<name>.wav` files override the bundled prompts.
    pub prompts_dir: Option<PathBuf>,
    /// Per language (`de = "/etc/clicktocall/prompts/de"`): a directory of `<name>.wav` prompts
    /// played to callers whose widget asks for that language; a prompt it lacks falls back.
    pub language_prompts: BTreeMap<String, PathBuf>,
    /// The menus.
    pub menus: Vec<MenuSection>,
}

impl Default for IvrSection {
    fn default() -> Self {
        IvrSection {
            start: "main".into(),
            prompts_dir: None,
            language_prompts: BTreeMap::new(),
            menus: Vec::new(),
        }
    }
}

impl IvrSection {
    /// With no `[[ivr.menus]]`, one menu "main": the bundled welcome prompt, digit N enters the
    /// N-th configured queue, 9 repeats. (The bundled prompt says "sales 1, support 2".)
    fn default_menu(queues: &[QueueConfig]) -> MenuSection {
        let mut options: BTreeMap<String, String> = queues
            .iter()
            .take(8)
            .enumerate()
            .map(|(i, q)| ((i + 1).to_string(), format!("queue:{}", q.name)))
            .collect();
        options.insert("9".into(), "repeat".into());
        // The visual menu names each queue as the config does (its display name, else its name).
        let labels = queues
            .iter()
            .take(8)
            .enumerate()
            .map(|(i, q)| {
                let name = q.display_name.clone().unwrap_or_else(|| q.name.clone());
                ((i + 1).to_string(), name.chars().take(40).collect())
            })
            .collect();
        MenuSection {
            labels,
            name: "main".into(),
            prompt: "welcome".into(),
            options,
            input_timeout_secs: default_input_timeout(),
            retries: default_retries(),
            invalid_prompt: Some("invalid".into()),
            on_exhausted: default_exhausted(),
        }
    }

    /// The configured menus, or the default one.
    pub fn effective_menus(&self, queues: &[QueueConfig]) -> Vec<MenuSection> {
        if self.menus.is_empty() {
            vec![Self::default_menu(queues)]
        } else {
            self.menus.clone()
        }
    }
}

/// `[[ivr.menus]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MenuSection {
    /// Unique menu name.
    pub name: String,
    /// Prompt name (bundled, or `<prompts_dir>/<name>.wav`).
    pub prompt: String,
    /// Digit → action: `queue:NAME`, `queue:NAME:SKILL`, `menu:NAME`, `repeat`, `hangup`.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// Seconds to wait for a digit after the prompt.
    #[serde(default = "default_input_timeout")]
    pub input_timeout_secs: u64,
    /// Replays after a timeout or an invalid digit.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Prompt played for an invalid digit.
    #[serde(default)]
    pub invalid_prompt: Option<String>,
    /// Action once the retries are used up.
    #[serde(default = "default_exhausted")]
    pub on_exhausted: String,
    /// Button labels for the widget's visual menu: digit → label (`{ "1" = "Sales" }`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

fn default_input_timeout() -> u64 {
    6
}
fn default_retries() -> u32 {
    2
}
fn default_exhausted() -> String {
    "hangup".into()
}

/// Parses a menu action: `queue:NAME[:SKILL]`, `menu:NAME`, `repeat`, `hangup`.
pub fn parse_action(s: &str) -> Result<MenuAction, String> {
    match s {
        "repeat" => return Ok(MenuAction::Repeat),
        "hangup" => return Ok(MenuAction::HangUp),
        _ => {}
    }
    if let Some(rest) = s.strip_prefix("queue:") {
        let mut parts = rest.splitn(2, ':');
        let queue = parts.next().unwrap_or_default();
        if !queue.is_empty() {
            return Ok(MenuAction::Queue {
                queue: queue.to_string(),
                skill: parts.next().filter(|s| !s.is_empty()).map(str::to_string),
            });
        }
    }
    if let Some(menu) = s.strip_prefix("menu:").filter(|m| !m.is_empty()) {
        return Ok(MenuAction::Submenu(menu.to_string()));
    }
    Err(format!(
        "{s:?}: use queue:NAME, queue:NAME:SKILL, menu:NAME, repeat or hangup"
    ))
}

/// A menu's button labels, in digit order: each names a digit the menu has, and says something
/// short enough for a button.
fn menu_labels(
    m: &MenuSection,
    options: &HashMap<char, MenuAction>,
) -> Result<Vec<(char, String)>, String> {
    let mut out = Vec::new();
    for (digit, label) in &m.labels {
        let d = digit
            .chars()
            .next()
            .filter(|d| digit.len() == 1 && options.contains_key(d))
            .ok_or_else(|| format!("{digit:?} is not one of the menu's options"))?;
        let label = label.trim();
        if label.is_empty() || label.chars().count() > 40 || label.chars().any(char::is_control) {
            return Err(format!(
                "the label of {digit:?} must be 1 to 40 characters, no control characters"
            ));
        }
        out.push((d, label.to_string()));
    }
    Ok(out)
}

impl IvrSection {
    /// The menus as the IVR runner wants them; errors carry the key.
    pub fn menus(&self, queues: &[QueueConfig]) -> Result<HashMap<String, Menu>, ConfigError> {
        let mut out = HashMap::new();
        for (i, m) in self.effective_menus(queues).iter().enumerate() {
            let key = |k: &str| format!("ivr.menus[{i}].{k}");
            let mut options = HashMap::new();
            for (digit, action) in &m.options {
                let mut chars = digit.chars();
                let d = match (chars.next(), chars.next()) {
                    (Some(d), None) if "0123456789*#ABCD".contains(d) => d,
                    _ => {
                        return Err(ConfigError::invalid(
                            key("options"),
                            format!("{digit:?} is not a single DTMF digit"),
                        ))
                    }
                };
                let action = parse_action(action)
                    .map_err(|e| ConfigError::invalid(key(&format!("options.{digit}")), e))?;
                options.insert(d, action);
            }
            let on_exhausted = parse_action(&m.on_exhausted)
                .map_err(|e| ConfigError::invalid(key("on_exhausted"), e))?;
            let labels =
                menu_labels(m, &options).map_err(|e| ConfigError::invalid(key("labels"), e))?;
            if out
                .insert(
                    m.name.clone(),
                    Menu {
                        prompt: m.prompt.clone(),
                        options,
                        input_timeout: Duration::from_secs(m.input_timeout_secs.max(1)),
                        retries: m.retries,
                        invalid_prompt: m.invalid_prompt.clone(),
                        on_exhausted,
                        labels,
                    },
                )
                .is_some()
            {
                return Err(ConfigError::invalid(
                    key("name"),
                    format!("duplicate menu {:?}", m.name),
                ));
            }
        }
        Ok(out)
    }
}
