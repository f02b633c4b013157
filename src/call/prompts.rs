//! The prompts a gateway plays, loaded once at start-up and shared by every call: the bundled
//! defaults in `static/prompts/` (embedded in the binary), overridden by `<ivr.prompts_dir>/<name>.wav`.

use crate::config::Config;
use crate::media::source::Clip;
use std::collections::HashMap;

/// Prompts the call controller itself plays (beyond those the config names).
pub const BUILT_IN: &[&str] = &[
    "queued",
    "position",
    "n1",
    "n2",
    "n3",
    "n4",
    "n5",
    "n6",
    "n7",
    "n8",
    "n9",
    "n10plus",
    "no_agents",
    "max_wait",
    "goodbye",
    "transfer",
    "demo_agent",
];

/// A prompt that cannot be found or decoded, with the config key that named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptError {
    /// The key that named the prompt (`ivr.menus[0].prompt`).
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

/// Decoded prompts by name.
#[derive(Debug, Clone, Default)]
pub struct PromptLibrary {
    clips: HashMap<String, Clip>,
    /// Per language: the prompts its directory has (the rest fall back to `clips`).
    languages: HashMap<String, HashMap<String, Clip>>,
}

impl PromptLibrary {
    /// Loads every prompt the config refers to, plus the built-in ones.
    pub fn load(cfg: &Config) -> Result<PromptLibrary, PromptError> {
        let mut wanted: Vec<(String, String)> = Vec::new();
        for (i, m) in cfg.ivr.effective_menus(&cfg.queues).iter().enumerate() {
            wanted.push((format!("ivr.menus[{i}].prompt"), m.prompt.clone()));
            if let Some(p) = &m.invalid_prompt {
                wanted.push((format!("ivr.menus[{i}].invalid_prompt"), p.clone()));
            }
        }
        for (i, q) in cfg.queues.iter().enumerate() {
            wanted.push((format!("queues[{i}].music"), q.music.clone()));
            if let Some(a) = &q.record_announcement {
                wanted.push((format!("queues[{i}].record_announcement"), a.clone()));
            }
        }
        if cfg.callback.enabled {
            wanted.push(("callback.greeting".into(), cfg.callback.greeting.clone()));
        }
        if let Some(p) = &cfg.supervision.join_prompt {
            wanted.push(("supervision.join_prompt".into(), p.clone()));
        }
        for name in BUILT_IN {
            wanted.push(("ivr.prompts_dir".into(), name.to_string()));
        }
        let mut lib = PromptLibrary::default();
        for (key, name) in wanted {
            if lib.clips.contains_key(&name) {
                continue;
            }
            let clip = Self::load_one(cfg, &name).map_err(|reason| PromptError { key, reason })?;
            lib.clips.insert(name, clip);
        }
        for (lang, dir) in &cfg.ivr.language_prompts {
            let mut clips = HashMap::new();
            for name in lib.clips.keys() {
                let path = dir.join(format!("{name}.wav"));
                if path.exists() {
                    let clip = Clip::load(&path).map_err(|e| PromptError {
                        key: format!("ivr.language_prompts.{lang}"),
                        reason: e.to_string(),
                    })?;
                    clips.insert(name.clone(), clip);
                }
            }
            lib.languages.insert(lang.clone(), clips);
        }
        Ok(lib)
    }

    /// The prompt called `name` in language `lang` (`de`, `de-AT`) where configured, else the
    /// default one.
    pub fn get_in(&self, lang: Option<&str>, name: &str) -> Option<Clip> {
        let primary = lang.map(|l| l.split('-').next().unwrap_or(l).to_ascii_lowercase());
        primary
            .and_then(|l| self.languages.get(&l))
            .and_then(|clips| clips.get(name).cloned())
            .or_else(|| self.get(name))
    }

    fn load_one(cfg: &Config, name: &str) -> Result<Clip, String> {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(format!(
                "{name:?} is not a prompt name (letters, digits, _ and -)"
            ));
        }
        if let Some(dir) = &cfg.ivr.prompts_dir {
            let path = dir.join(format!("{name}.wav"));
            if path.exists() {
                return Clip::load(&path).map_err(|e| e.to_string());
            }
        }
        let (bytes, _) =
            crate::http::assets::lookup(&format!("prompts/{name}.wav")).ok_or_else(|| {
                format!("no prompt {name:?} (neither bundled nor in ivr.prompts_dir)")
            })?;
        Clip::from_wav_bytes(bytes, name).map_err(|e| e.to_string())
    }

    /// The prompt called `name`.
    pub fn get(&self, name: &str) -> Option<Clip> {
        self.clips.get(name).cloned()
    }

    /// "You are caller number N" as one clip, in the default language.
    pub fn position(&self, n: usize) -> Option<Clip> {
        self.position_in(None, n)
    }

    /// "You are caller number N" as one clip, in `lang` where configured.
    pub fn position_in(&self, lang: Option<&str>, n: usize) -> Option<Clip> {
        let number = if (1..=9).contains(&n) {
            format!("n{n}")
        } else {
            "n10plus".to_string()
        };
        let a = self.get_in(lang, "position")?;
        let b = self.get_in(lang, &number)?;
        let mut samples = a.samples().to_vec();
        samples.extend(std::iter::repeat_n(0, 800));
        samples.extend_from_slice(b.samples());
        Some(Clip::from_samples(samples))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-second 8 kHz WAV of `value` at `path`.
    fn wav(path: &std::path::Path, value: i16) {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 8000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(path, spec).unwrap();
        for _ in 0..8000 {
            w.write_sample(value).unwrap();
        }
        w.finalize().unwrap();
    }

    #[test]
    fn a_language_s_prompts_replace_the_default_where_it_has_them() {
        let dir = std::env::temp_dir().join(format!("c2c-prompts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        wav(&dir.join("welcome.wav"), 1234);
        let mut cfg = Config::default();
        cfg.ivr.language_prompts.insert("de".into(), dir.clone());
        let lib = PromptLibrary::load(&cfg).unwrap();
        let german = lib.get_in(Some("de-AT"), "welcome").unwrap();
        assert_eq!(german.samples()[100], 1234, "the German welcome");
        let english = lib.get_in(None, "welcome").unwrap();
        assert_ne!(english.samples(), german.samples());
        assert_eq!(
            lib.get_in(Some("fr"), "welcome").unwrap().samples(),
            english.samples(),
            "no French prompts: the default"
        );
        assert_eq!(
            lib.get_in(Some("de"), "queued").unwrap().samples(),
            lib.get("queued").unwrap().samples(),
            "a prompt German lacks falls back"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
