//! `racejudge bench index`: the index and tools benchmark harness (run it from a release build).
//!
//! Measures, in one run on one tree: a cold index into a fresh cache directory, a reload from
//! that cache, a refresh after touching 100 files' mtimes (restored afterwards),
//! `codesearch-definition-source` latency percentiles over a few hundred real names,
//! `codesearch-find-references file::private_data`, peak RSS, and universal-ctags on the same tree
//! for scale. BENCHMARKS.md records the results with the exact command.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use codeindex::{EntityKind, Index, NoProgress};
use serde::Serialize;

use super::index::{Bar, KernelArgs};
use crate::exit::{self, ResultExt};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub what: What,
}

#[derive(Debug, clap::Subcommand)]
pub enum What {
    /// Benchmark indexing and the code tools on a kernel tree.
    Index(IndexArgs),
}

#[derive(Debug, clap::Args)]
pub struct IndexArgs {
    #[command(flatten)]
    pub kernel: KernelArgs,
    /// Print one JSON document instead of text.
    #[arg(long)]
    pub json: bool,
    /// Skip the universal-ctags comparison.
    #[arg(long)]
    pub no_ctags: bool,
    /// How many names to time codesearch-definition-source on.
    #[arg(long, default_value_t = 300)]
    pub names: usize,
    /// How many files to touch before the refresh measurement.
    #[arg(long, default_value_t = 100)]
    pub touch: usize,
}

#[derive(Debug, Serialize)]
struct Report {
    kernel: PathBuf,
    files: usize,
    definitions: usize,
    /// Until the index answers queries.
    cold_index_s: f64,
    /// Until its cache is on disk too (written in the background after `cold_index_s`).
    cold_index_persisted_s: f64,
    reload_s: f64,
    reload_from_cache: bool,
    touched_files: usize,
    /// Until the refreshed index answers queries.
    refresh_s: f64,
    /// Until the refreshed cache is on disk too.
    refresh_persisted_s: f64,
    refresh_files_indexed: usize,
    definition_source_calls: usize,
    definition_source_p50_ms: f64,
    definition_source_p99_ms: f64,
    definition_source_errors: usize,
    find_references_private_data_ms: f64,
    find_references_private_data_total: Option<u64>,
    /// Peak RSS (`VmHWM`) right after the cold index, the first phase: the cold index's own peak.
    cold_peak_rss_mib: Option<f64>,
    /// Peak RSS over the whole benchmark; the refresh holds the old mapped index and the new
    /// one at once, so this is above the cold peak.
    peak_rss_mib: Option<f64>,
    ctags_s: Option<f64>,
    ctags_note: Option<String>,
    index_over_ctags: Option<f64>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.what {
        What::Index(args) => bench_index(args),
    }
}

/// A cache directory that is removed when dropped.
struct TempCache(PathBuf);

impl Drop for TempCache {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn bench_index(args: IndexArgs) -> anyhow::Result<ExitCode> {
    let tree = &args.kernel.kernel;
    if !tree.is_dir() {
        return Err(exit::environment(format!(
            "kernel tree {} does not exist",
            tree.display()
        )));
    }
    let opts = args.kernel.options();
    let cache =
        TempCache(std::env::temp_dir().join(format!("racejudge-bench-{}", std::process::id())));
    std::fs::create_dir_all(&cache.0).with_context(|| format!("creating {}", cache.0.display()))?;

    eprintln!("bench: cold index of {} ...", tree.display());
    let bar = Bar::new();
    let t = Instant::now();
    let (index, stats) = Index::open(tree, &opts, &cache.0, &bar)
        .context("cold index")
        .environment()?;
    let cold = t.elapsed();
    persisted(&index)?;
    let cold_persisted = t.elapsed();
    let cold_peak_rss_mib = peak_rss_kib().map(|k| k as f64 / 1024.0);
    bar.finish();
    let files = stats.files_total;
    let definitions = stats.definitions;
    drop(index);

    eprintln!("bench: reload from cache ...");
    let t = Instant::now();
    let (index, reload_stats) = Index::open(tree, &opts, &cache.0, &NoProgress)
        .context("reload")
        .environment()?;
    let reload = t.elapsed();

    let picked = pick_files(&index, args.touch);
    eprintln!("bench: refresh after touching {} files ...", picked.len());
    let saved = touch(tree, &picked)?;
    drop(index);
    let t = Instant::now();
    let refreshed = Index::open(tree, &opts, &cache.0, &NoProgress).context("refresh");
    let refresh = t.elapsed();
    let refresh_persisted = match &refreshed {
        Ok((index, _)) => persisted(index).map(|()| t.elapsed()),
        Err(_) => Ok(refresh),
    };
    restore(tree, &saved);
    let (index, refresh_stats) = refreshed.environment()?;
    let refresh_persisted = refresh_persisted?;

    let index = std::sync::Arc::new(index);
    let names = pick_names(&index, args.names);
    let toolbox = tools::toolbox_with(index.clone(), args.kernel.tool_options()?);
    eprintln!(
        "bench: codesearch-definition-source on {} names ...",
        names.len()
    );
    let mut times = Vec::with_capacity(names.len());
    let mut errors = 0;
    for (name, file) in &names {
        let call = serde_json::json!({ "Name": name, "ContextFile": file });
        let t = Instant::now();
        let result = toolbox.call("codesearch-definition-source", &call);
        times.push(t.elapsed());
        if result.is_err() {
            errors += 1;
        }
    }
    times.sort();
    let pct = |p: f64| -> f64 {
        if times.is_empty() {
            return 0.0;
        }
        let i = ((times.len() as f64 - 1.0) * p).round() as usize;
        secs(times[i]) * 1000.0
    };

    let t = Instant::now();
    let refs = toolbox.call(
        "codesearch-find-references",
        &serde_json::json!({ "Name": "file::private_data" }),
    );
    let refs_time = t.elapsed();
    let refs_total = refs
        .ok()
        .and_then(|v| v.get("Total").and_then(|t| t.as_u64()));
    let peak_rss_mib = peak_rss_kib().map(|k| k as f64 / 1024.0);

    let (ctags_s, ctags_note) = if args.no_ctags {
        (None, Some("skipped (--no-ctags)".to_string()))
    } else {
        run_ctags(tree, &cache.0)
    };
    let report = Report {
        kernel: index.root().to_path_buf(),
        files,
        definitions,
        cold_index_s: secs(cold),
        cold_index_persisted_s: secs(cold_persisted),
        reload_s: secs(reload),
        reload_from_cache: reload_stats.loaded_from_cache,
        touched_files: saved.len(),
        refresh_s: secs(refresh),
        refresh_persisted_s: secs(refresh_persisted),
        refresh_files_indexed: refresh_stats.files_indexed,
        definition_source_calls: times.len(),
        definition_source_p50_ms: pct(0.5),
        definition_source_p99_ms: pct(0.99),
        definition_source_errors: errors,
        find_references_private_data_ms: secs(refs_time) * 1000.0,
        find_references_private_data_total: refs_total,
        cold_peak_rss_mib,
        peak_rss_mib,
        // ctags writes its whole tags file, so compare with the index written to disk too.
        index_over_ctags: ctags_s.map(|c| secs(cold_persisted) / c),
        ctags_s,
        ctags_note,
    };
    print_report(&report, args.json)?;
    Ok(ExitCode::SUCCESS)
}

/// Waits for the index's background cache write; its failure fails the benchmark.
fn persisted(index: &Index) -> anyhow::Result<()> {
    index
        .wait_persisted()
        .map_err(|e| anyhow::anyhow!("writing the index cache: {e}"))
        .environment()
}

fn print_report(r: &Report, json: bool) -> anyhow::Result<()> {
    if json {
        outln!("{}", serde_json::to_string_pretty(r)?)?;
        return Ok(());
    }
    outln!("tree                         {}", r.kernel.display())?;
    outln!(
        "files / definitions          {} / {}",
        r.files,
        r.definitions
    )?;
    outln!(
        "cold index                   {:.2} s ready, {:.2} s with the cache written",
        r.cold_index_s,
        r.cold_index_persisted_s
    )?;
    outln!(
        "reload (from cache: {})    {:.3} s",
        r.reload_from_cache,
        r.reload_s
    )?;
    outln!(
        "refresh after {} touched     {:.3} s ready, {:.3} s with the cache written ({} files re-indexed)",
        r.touched_files,
        r.refresh_s,
        r.refresh_persisted_s,
        r.refresh_files_indexed
    )?;
    outln!(
        "definition-source x{}       p50 {:.3} ms, p99 {:.3} ms ({} errors)",
        r.definition_source_calls,
        r.definition_source_p50_ms,
        r.definition_source_p99_ms,
        r.definition_source_errors
    )?;
    outln!(
        "find-references file::private_data  {:.1} ms ({} refs)",
        r.find_references_private_data_ms,
        r.find_references_private_data_total
            .map_or("?".into(), |t| t.to_string())
    )?;
    let mib = |m: Option<f64>| m.map_or("unknown".into(), |m| format!("{m:.0} MiB"));
    outln!(
        "peak RSS                     cold index {}, whole benchmark {}",
        mib(r.cold_peak_rss_mib),
        mib(r.peak_rss_mib)
    )?;
    match (r.ctags_s, &r.ctags_note) {
        (Some(c), _) => outln!(
            "universal-ctags -R           {:.2} s (cold index / ctags = {:.2})",
            c,
            r.index_over_ctags.unwrap_or(0.0)
        )?,
        (None, Some(note)) => outln!("universal-ctags              {note}")?,
        (None, None) => {}
    }
    Ok(())
}

/// Evenly spaced C files of the index.
fn pick_files(index: &Index, n: usize) -> Vec<String> {
    let files: Vec<&str> = index
        .files()
        .filter(|f| f.ends_with(".c") || f.ends_with(".h"))
        .collect();
    if files.is_empty() || n == 0 {
        return Vec::new();
    }
    let step = (files.len() / n).max(1);
    files
        .iter()
        .step_by(step)
        .take(n)
        .map(|f| f.to_string())
        .collect()
}

/// Function names with their files, from evenly spaced .c files.
fn pick_names(index: &Index, n: usize) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for file in pick_files(index, n * 2)
        .into_iter()
        .filter(|f| f.ends_with(".c"))
    {
        if let Some(def) = index
            .definitions_in_file(&file)
            .into_iter()
            .find(|d| d.kind == EntityKind::Function)
        {
            out.push((def.name, file));
        }
        if out.len() >= n {
            break;
        }
    }
    out
}

/// Sets each file's mtime to now; returns the original mtimes.
fn touch(tree: &Path, files: &[String]) -> anyhow::Result<Vec<(PathBuf, SystemTime)>> {
    let now = SystemTime::now();
    let mut saved = Vec::new();
    for rel in files {
        let path = tree.join(rel);
        let file = File::options().write(true).open(&path);
        let (Ok(file), Ok(meta)) = (file, std::fs::metadata(&path)) else {
            tracing::warn!(file = %path.display(), "cannot touch (read-only tree?)");
            continue;
        };
        let Ok(old) = meta.modified() else { continue };
        if file.set_modified(now).is_ok() {
            saved.push((path, old));
        }
    }
    if saved.is_empty() && !files.is_empty() {
        restore(tree, &saved);
        return Err(exit::environment(
            "could not touch any file of the tree (read-only?); the refresh benchmark needs write access to mtimes",
        ));
    }
    Ok(saved)
}

fn restore(_tree: &Path, saved: &[(PathBuf, SystemTime)]) {
    for (path, old) in saved {
        if let Err(e) = File::options()
            .write(true)
            .open(path)
            .and_then(|f| f.set_modified(*old))
        {
            tracing::warn!(file = %path.display(), error = %e, "could not restore mtime");
        }
    }
}

/// VmHWM from /proc/self/status, in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn run_ctags(tree: &Path, scratch: &Path) -> (Option<f64>, Option<String>) {
    let ctags = Path::new("/usr/bin/ctags");
    let program = if ctags.exists() {
        ctags.to_path_buf()
    } else {
        PathBuf::from("ctags")
    };
    let out = scratch.join("tags");
    eprintln!("bench: universal-ctags on the same tree ...");
    let t = Instant::now();
    let status = std::process::Command::new(&program)
        .args(["-R", "--languages=C", "--langmap=C:+.h", "-f"])
        .arg(&out)
        .arg(tree)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    match status {
        Ok(s) if s.success() => (Some(secs(t.elapsed())), None),
        Ok(s) => (None, Some(format!("ctags failed: {s}"))),
        Err(e) => (None, Some(format!("ctags not available ({e}); skipped"))),
    }
}
