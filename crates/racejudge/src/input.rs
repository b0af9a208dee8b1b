//! Reading what the user hands a command (a report, a console log): from a file or stdin, never
//! more than the input limit. `racejudge parse /dev/zero` must end with an error, not with the
//! machine out of memory; a real console log with many reports is a few megabytes.

use std::io::Read;
use std::path::Path;
use std::sync::OnceLock;

use anyhow::Context;

use crate::exit::{self, ResultExt};

/// Default cap on one input, in MiB (`--max-input-mb`, `RACEJUDGE_MAX_INPUT_MB`).
pub const DEFAULT_MAX_INPUT_MB: u64 = 64;

static MAX_INPUT_BYTES: OnceLock<u64> = OnceLock::new();

/// Sets the cap for this process (from the global `--max-input-mb`); first call wins.
pub fn set_max_input_mb(mb: u64) {
    let _ = MAX_INPUT_BYTES.set(mb.saturating_mul(1 << 20));
}

fn max_input_bytes() -> u64 {
    *MAX_INPUT_BYTES.get_or_init(|| DEFAULT_MAX_INPUT_MB << 20)
}

/// Reads `path` (`-` or `None`: stdin) whole, up to the input cap. Returns a name for messages
/// and the bytes. Unreadable or over the cap is bad input (exit 2).
pub fn read(path: Option<&Path>) -> anyhow::Result<(String, Vec<u8>)> {
    let limit = max_input_bytes();
    let (name, reader): (String, Box<dyn Read>) = match path {
        Some(p) if p.as_os_str() != "-" => {
            let file = std::fs::File::open(p)
                .with_context(|| format!("cannot read {}", p.display()))
                .bad_input()?;
            if file.metadata().is_ok_and(|m| m.is_dir()) {
                return Err(exit::bad_input(format!(
                    "cannot read {}: it is a directory, not a report file",
                    p.display()
                )));
            }
            (p.display().to_string(), Box::new(file))
        }
        _ => ("stdin".to_string(), Box::new(std::io::stdin().lock())),
    };
    let mut bytes = Vec::new();
    // One byte past the cap tells "exactly at the cap" from "over it".
    reader
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {name}"))
        .bad_input()?;
    if bytes.len() as u64 > limit {
        return Err(exit::bad_input(format!(
            "{name} is larger than the input limit of {} MiB; split it or raise the limit with --max-input-mb",
            limit >> 20
        )));
    }
    Ok((name, bytes))
}
