//! The kernel `.config`, once for the workspace: the index's `#if` evaluation and the struct
//! layout engine (crate `tools`) both answer from this model, so the two cannot disagree about an
//! option.
//!
//! Semantics are those of the `include/generated/autoconf.h` the build derives from it:
//! `CONFIG_X=y` defines `CONFIG_X` as 1; `CONFIG_X=m` defines `CONFIG_X_MODULE`, **not**
//! `CONFIG_X` (so `#ifdef CONFIG_X` is false for a module, while `IS_ENABLED(CONFIG_X)` is true);
//! `=n` and `# CONFIG_X is not set` define nothing; numbers and strings define the value.

use std::collections::HashMap;
use std::path::Path;

/// What a `.config` line sets an option to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Setting {
    Builtin,
    Module,
    Int(i64),
    Str,
}

/// The options of one `.config`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KConfig {
    values: HashMap<String, Setting>,
    /// Hash of the file's bytes: the index is keyed by it.
    pub content_hash: u64,
}

/// Why a file given as a kernel `.config` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path} is not a regular file")]
    NotAFile { path: String },
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a kernel .config: {reason}")]
    Invalid { path: String, reason: String },
}

/// The largest `.config` accepted (real ones are about 300 KB).
const MAX_CONFIG_BYTES: u64 = 16 << 20;

impl KConfig {
    /// Parses leniently: lines that are not `CONFIG_X=value` are ignored.
    pub fn parse(text: &[u8]) -> KConfig {
        let mut values = HashMap::new();
        for line in text.split(|&b| b == b'\n') {
            let line = String::from_utf8_lossy(line);
            let line = line.trim();
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            if !k.starts_with("CONFIG_") {
                continue;
            }
            let v = match v {
                "y" => Setting::Builtin,
                "m" => Setting::Module,
                "n" => continue,
                _ => parse_int(v).map_or(Setting::Str, Setting::Int),
            };
            values.insert(k.to_string(), v);
        }
        KConfig {
            values,
            content_hash: xxhash_rust::xxh3::xxh3_64(text),
        }
    }

    /// Reads and checks a file before anything expensive uses it: a regular UTF-8 file of
    /// `CONFIG_X=value` lines, comments and blank lines, with at least one `CONFIG_` entry.
    pub fn read_checked(path: &Path) -> Result<KConfig, ConfigError> {
        use std::io::Read;
        let shown = path.display().to_string();
        let meta = std::fs::metadata(path).map_err(|source| ConfigError::Io {
            path: shown.clone(),
            source,
        })?;
        if !meta.is_file() {
            return Err(ConfigError::NotAFile { path: shown });
        }
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_CONFIG_BYTES + 1).read_to_end(&mut bytes))
            .map_err(|source| ConfigError::Io {
                path: shown.clone(),
                source,
            })?;
        let invalid = |reason: String| ConfigError::Invalid {
            path: shown.clone(),
            reason,
        };
        if bytes.len() as u64 > MAX_CONFIG_BYTES {
            return Err(invalid(format!("it is over {MAX_CONFIG_BYTES} bytes")));
        }
        let text =
            std::str::from_utf8(&bytes).map_err(|_| invalid("it is not UTF-8 text".into()))?;
        check_syntax(text).map_err(invalid)?;
        Ok(KConfig::parse(&bytes))
    }

    /// The setting of `option`, if the file sets it.
    pub fn setting(&self, option: &str) -> Option<&Setting> {
        self.values.get(option)
    }

    /// `defined(NAME)`: `=y`, numbers and strings define it; `=m` defines only `NAME_MODULE`.
    pub fn defined(&self, name: &str) -> bool {
        if let Some(base) = name.strip_suffix("_MODULE")
            && self.values.get(base) == Some(&Setting::Module)
        {
            return true;
        }
        matches!(
            self.values.get(name),
            Some(Setting::Builtin | Setting::Int(_) | Setting::Str)
        )
    }

    /// `#if NAME`: 1 for `=y`, the number for a number, 0 when undefined (a module included);
    /// `None` for a string, which `#if` cannot use.
    pub fn value(&self, name: &str) -> Option<i64> {
        if let Some(base) = name.strip_suffix("_MODULE")
            && self.values.get(base) == Some(&Setting::Module)
        {
            return Some(1);
        }
        match self.values.get(name) {
            None | Some(Setting::Module) => Some(0),
            Some(Setting::Builtin) => Some(1),
            Some(Setting::Int(n)) => Some(*n),
            Some(Setting::Str) => None,
        }
    }

    /// `IS_ENABLED` (`=y` or `=m`), `IS_BUILTIN` (`=y`), `IS_MODULE` (`=m`); `IS_REACHABLE` is
    /// `None` for a module (it depends on whether the caller is one).
    pub fn test(&self, macro_name: &str, option: &str) -> Option<bool> {
        let setting = self.values.get(option);
        let builtin = setting == Some(&Setting::Builtin);
        let module = setting == Some(&Setting::Module);
        match macro_name {
            "IS_ENABLED" => Some(builtin || module),
            "IS_BUILTIN" => Some(builtin),
            "IS_MODULE" => Some(module),
            "IS_REACHABLE" if module => None,
            "IS_REACHABLE" => Some(builtin),
            _ => None,
        }
    }
}

/// The first offending line, or no entry at all.
fn check_syntax(text: &str) -> Result<(), String> {
    let mut entries = 0usize;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let well_formed = line.split_once('=').is_some_and(|(name, _)| {
            name.strip_prefix("CONFIG_").is_some_and(|rest| {
                !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            })
        });
        if !well_formed {
            let clipped: String = line.chars().take(60).collect();
            return Err(format!(
                "line {} is not a CONFIG_NAME=value line: {clipped:?}",
                n + 1
            ));
        }
        entries += 1;
    }
    if entries == 0 {
        return Err("it has no CONFIG_ entries".into());
    }
    Ok(())
}

pub(crate) fn parse_int(s: &str) -> Option<i64> {
    let s = s.trim_end_matches(['u', 'U', 'l', 'L']);
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        i64::from_str_radix(h, 16).ok()
    } else if s.len() > 1 && s.starts_with('0') {
        i64::from_str_radix(&s[1..], 8).ok()
    } else {
        s.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_module_defines_only_its_module_macro() {
        let c = KConfig::parse(
            b"CONFIG_NET=m\nCONFIG_SMP=y\nCONFIG_NR=0x40\n# CONFIG_X is not set\nCONFIG_N=n\n",
        );
        assert!(!c.defined("CONFIG_NET"));
        assert!(c.defined("CONFIG_NET_MODULE"));
        assert_eq!(c.value("CONFIG_NET"), Some(0));
        assert_eq!(c.test("IS_ENABLED", "CONFIG_NET"), Some(true));
        assert_eq!(c.test("IS_BUILTIN", "CONFIG_NET"), Some(false));
        assert_eq!(c.test("IS_MODULE", "CONFIG_NET"), Some(true));
        assert_eq!(c.test("IS_REACHABLE", "CONFIG_NET"), None);
        assert!(c.defined("CONFIG_SMP"));
        assert_eq!(c.value("CONFIG_NR"), Some(64));
        assert!(!c.defined("CONFIG_X"));
        assert!(!c.defined("CONFIG_N"));
        assert_eq!(c.value("CONFIG_UNSEEN"), Some(0));
    }
}
