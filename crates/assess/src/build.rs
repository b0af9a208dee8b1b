//! `kernel-builder` (off by default): configures and builds a kernel out of tree.
//!
//! [`build_kernel`] copies the given config to `<out>/.config`, runs `make O=<out> olddefconfig`,
//! then `make O=<out> -jN vmlinux`. It is used through the cache (`builds` entries keyed by the
//! source identity, a hash of the config, and the architecture; the reference forgot the
//! architecture). A failed build is a [`BuildError`] with the tail of make's output, where the
//! compiler's error is.

use std::path::Path;
use std::process::{Command, Stdio};

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("kernel config {path}: {message}")]
    Config { path: String, message: String },
    #[error("make {target} failed ({status}):\n{tail}")]
    Make {
        target: String,
        status: String,
        tail: String,
    },
    #[error("cannot run make: {0}")]
    Spawn(String),
}

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildOptions<'a> {
    pub config: Option<&'a Path>,
    /// `ARCH=` for make; `None` builds for the host.
    pub arch: Option<&'a str>,
    pub jobs: usize,
}

/// Builds `src` into `out` (which must exist).
pub fn build_kernel(src: &Path, out: &Path, opts: &BuildOptions<'_>) -> Result<(), BuildError> {
    if let Some(config) = opts.config {
        std::fs::copy(config, out.join(".config")).map_err(|e| BuildError::Config {
            path: config.display().to_string(),
            message: e.to_string(),
        })?;
    }
    make(src, out, opts, &["olddefconfig"])?;
    let jobs = format!("-j{}", opts.jobs.max(1));
    make(src, out, opts, &[&jobs, "vmlinux"])
}

fn make(src: &Path, out: &Path, opts: &BuildOptions<'_>, args: &[&str]) -> Result<(), BuildError> {
    let mut cmd = Command::new("make");
    cmd.arg("-C").arg(src).arg(format!("O={}", out.display()));
    if let Some(arch) = opts.arch {
        cmd.arg(format!("ARCH={arch}"));
    }
    cmd.args(args).stdin(Stdio::null());
    tracing::info!(src = %src.display(), ?args, "make");
    let output = cmd.output().map_err(|e| BuildError::Spawn(e.to_string()))?;
    if output.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(30)..].join("\n");
    Err(BuildError::Make {
        target: args.last().copied().unwrap_or_default().to_string(),
        status: output.status.to_string(),
        tail,
    })
}

/// Architecture-aware key description for the `builds` cache.
pub fn build_key(source_identity: &str, config_text: Option<&[u8]>, arch: Option<&str>) -> String {
    let config_hash = config_text
        .map(|c| format!("{:016x}", xxhash_rust::xxh3::xxh3_64(c)))
        .unwrap_or_else(|| "none".into());
    format!(
        "source {source_identity}, config {config_hash}, arch {}",
        arch.unwrap_or("host")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    /// A fake kernel tree whose Makefile behaves like Kbuild where it matters: honours O=,
    /// `olddefconfig` rewrites `.config`, `vmlinux` links from it, and a config with
    /// `CONFIG_BROKEN=y` fails to compile.
    fn fake_tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let makefile = "\
O ?= .
olddefconfig:
\t@test -f $(O)/.config || echo 'CONFIG_DEFAULT=y' > $(O)/.config
\t@echo 'CONFIG_OLDDEF=y' >> $(O)/.config
vmlinux:
\t@if grep -q CONFIG_BROKEN=y $(O)/.config; then echo 'init/main.c:1:1: error: broken config' >&2; exit 1; fi
\t@cat $(O)/.config > $(O)/vmlinux
\t@echo 'ARCH=$(ARCH)' >> $(O)/vmlinux
";
        fs::write(dir.path().join("Makefile"), makefile).unwrap();
        dir
    }

    #[test]
    fn builds_out_of_tree_with_the_given_config() {
        let src = fake_tree();
        let out = tempfile::tempdir().unwrap();
        let config = out.path().join("my.config");
        fs::write(&config, "CONFIG_KCSAN=y\n").unwrap();
        let opts = BuildOptions {
            config: Some(&config),
            arch: Some("x86_64"),
            jobs: 2,
        };
        build_kernel(src.path(), out.path(), &opts).unwrap();
        let vmlinux = fs::read_to_string(out.path().join("vmlinux")).unwrap();
        assert!(vmlinux.contains("CONFIG_KCSAN=y"), "{vmlinux}");
        assert!(
            vmlinux.contains("CONFIG_OLDDEF=y"),
            "olddefconfig ran first: {vmlinux}"
        );
        assert!(vmlinux.contains("ARCH=x86_64"));
        assert!(
            !src.path().join("vmlinux").exists(),
            "nothing is written into the source tree"
        );
    }

    #[test]
    fn failed_build_reports_the_compiler_error() {
        let src = fake_tree();
        let out = tempfile::tempdir().unwrap();
        let config = out.path().join("bad.config");
        fs::write(&config, "CONFIG_BROKEN=y\n").unwrap();
        let opts = BuildOptions {
            config: Some(&config),
            arch: None,
            jobs: 1,
        };
        let err = build_kernel(src.path(), out.path(), &opts).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("make vmlinux failed"), "{text}");
        assert!(text.contains("error: broken config"), "{text}");
    }

    #[test]
    fn missing_config_file_is_a_config_error() {
        let src = fake_tree();
        let out = tempfile::tempdir().unwrap();
        let missing = out.path().join("nope.config");
        let opts = BuildOptions {
            config: Some(&missing),
            arch: None,
            jobs: 1,
        };
        assert!(matches!(
            build_kernel(src.path(), out.path(), &opts),
            Err(BuildError::Config { .. })
        ));
    }

    #[test]
    fn build_key_depends_on_config_and_arch() {
        let a = build_key("commit x", Some(b"A"), Some("x86_64"));
        assert_ne!(a, build_key("commit x", Some(b"B"), Some("x86_64")));
        assert_ne!(a, build_key("commit x", Some(b"A"), Some("arm64")));
        assert_eq!(a, build_key("commit x", Some(b"A"), Some("x86_64")));
    }
}
