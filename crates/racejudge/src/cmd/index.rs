//! `racejudge index`: builds or refreshes the code index of a kernel tree in the cache, with a
//! progress bar on stderr, then prints counts and timings.
//!
//! Also home of [`KernelArgs`] and [`open`]: the `--kernel/--config/--arch` flags and the index
//! opening every subcommand that reads the kernel shares (tool, bench, mcp).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use codeindex::{BuildStats, Index, IndexOptions, Progress};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::exit::{self, ResultExt};

/// Which kernel tree, architecture and configuration to index.
#[derive(Debug, Clone, clap::Args)]
pub struct KernelArgs {
    /// Kernel source tree (e.g. the path printed by scripts/fetch-kernel-source.sh).
    #[arg(long, env = "RACEJUDGE_KERNEL")]
    pub kernel: PathBuf,
    /// Kernel .config deciding #if CONFIG_* (definitions and struct layouts); without it they are unknown.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Architecture whose arch/ code counts as built.
    #[arg(long, default_value = "x86_64")]
    pub arch: String,
    /// A built kernel with debug info (vmlinux, or a `.o`): struct layouts come from its DWARF
    /// when it describes the type, from source otherwise.
    #[arg(long)]
    pub vmlinux: Option<PathBuf>,
    /// The O= directory of a build of this tree: its generated headers (include/generated,
    /// arch/*/include/generated) are indexed, and the tools read them, at their tree paths.
    #[arg(long)]
    pub build_dir: Option<PathBuf>,
    /// Deadline of one code tool call, in seconds (0: none).
    #[arg(long, env = "RACEJUDGE_TOOL_TIMEOUT", default_value_t = tools::DEFAULT_TOOL_TIMEOUT.as_secs())]
    pub tool_timeout: u64,
}

impl KernelArgs {
    pub fn options(&self) -> IndexOptions {
        IndexOptions {
            arch: self.arch.clone(),
            config: self.config.clone(),
            build_dir: self.build_dir.clone(),
        }
    }

    /// Tool options: the parsed `.config`, when given.
    pub fn tool_options(&self) -> anyhow::Result<tools::ToolOptions> {
        let mut options = tools::ToolOptions {
            timeout: (self.tool_timeout > 0).then(|| Duration::from_secs(self.tool_timeout)),
            ..Default::default()
        };
        if let Some(vmlinux) = &self.vmlinux {
            if !vmlinux.is_file() {
                return Err(exit::bad_input(format!(
                    "--vmlinux {} is not a file",
                    vmlinux.display()
                )));
            }
            options = options.with_dwarf_file(vmlinux);
        }
        match &self.config {
            None => Ok(options),
            Some(path) => options
                .with_config_file(path)
                .context("--config")
                .bad_input(),
        }
    }
}

/// Opens (building or refreshing as needed) the index in the cache directory.
pub fn open(
    args: &KernelArgs,
    progress: &dyn Progress,
) -> anyhow::Result<(Arc<Index>, BuildStats)> {
    if !args.kernel.is_dir() {
        return Err(exit::environment(format!(
            "kernel tree {} does not exist or is not a directory (scripts/fetch-kernel-source.sh installs one)",
            args.kernel.display()
        )));
    }
    // Checked before the index (seconds, a gigabyte) is built and keyed to it.
    if let Some(config) = &args.config {
        tools::KConfig::read_checked(config)
            .context("--config")
            .bad_input()?;
    }
    if let Some(dir) = &args.build_dir
        && !dir.is_dir()
    {
        return Err(exit::bad_input(format!(
            "--build-dir {} is not a directory",
            dir.display()
        )));
    }
    let cache = crate::paths::cache_dir();
    let (index, stats) = Index::open(&args.kernel, &args.options(), &cache, progress)
        .with_context(|| format!("indexing {}", args.kernel.display()))
        .environment()?;
    Ok((Arc::new(index), stats))
}

/// The tool box over an opened index, with the `.config` applied.
pub fn toolbox(args: &KernelArgs) -> anyhow::Result<tools::ToolBox> {
    let options = args.tool_options()?;
    let (index, _) = open(args, &codeindex::NoProgress)?;
    Ok(tools::toolbox_with(index, options))
}

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub kernel: KernelArgs,
    /// Print one JSON document instead of text.
    #[arg(long)]
    pub json: bool,
}

/// An indicatif bar on stderr, hidden when stderr is not a terminal.
pub struct Bar(ProgressBar);

impl Bar {
    pub fn new() -> Self {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        if !std::io::stderr().is_terminal() {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        let style = ProgressStyle::with_template(
            "{spinner} {msg} [{bar:30}] {pos}/{len} files ({elapsed})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style.progress_chars("=> "));
        Self(bar)
    }

    pub fn finish(&self) {
        self.0.finish_and_clear();
    }
}

impl Default for Bar {
    fn default() -> Self {
        Self::new()
    }
}

impl Progress for Bar {
    fn set_total(&self, n: u64) {
        self.0.set_length(n);
    }
    fn inc(&self, n: u64) {
        self.0.inc(n);
    }
    fn message(&self, m: &str) {
        self.0.set_message(m.to_string());
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let bar = Bar::new();
    let started = Instant::now();
    let result = open(&args.kernel, &bar);
    bar.finish();
    let (index, stats) = result?;
    // This command is how a cache gets made ahead of time: wait for it to be on disk.
    index
        .wait_persisted()
        .map_err(|e| anyhow::anyhow!("writing the index cache: {e}"))
        .environment()?;
    let wall = started.elapsed();
    let counts = index.counts();
    if args.json {
        let doc = serde_json::json!({
            "kernel": index.root(),
            "arch": index.arch(),
            "config": args.kernel.config,
            "stats": stats,
            "counts": counts,
            "wall_seconds": wall.as_secs_f64(),
        });
        outln!("{}", serde_json::to_string_pretty(&doc)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    outln!("kernel tree   {}", index.root().display())?;
    outln!("arch          {}", index.arch())?;
    outln!(
        "config        {}",
        args.kernel
            .config
            .as_ref()
            .map_or("(none: #if CONFIG_* unknown)".to_string(), |c| c
                .display()
                .to_string())
    )?;
    outln!(
        "files         {} total, {} indexed, {} reused, {} removed{}",
        stats.files_total,
        stats.files_indexed,
        stats.files_reused,
        stats.files_removed,
        if stats.loaded_from_cache {
            " (loaded from cache)"
        } else {
            ""
        }
    )?;
    if let Some(cache) = &stats.cache_file {
        outln!("cache         {}", cache.display())?;
    }
    outln!(
        "definitions   {} functions, {} prototypes, {} structs, {} unions, {} fields, {} enums, {} enumerators, {} typedefs, {} globals, {} macros",
        counts.functions,
        counts.prototypes,
        counts.structs,
        counts.unions,
        counts.fields,
        counts.enums,
        counts.enumerators,
        counts.typedefs,
        counts.global_variables,
        counts.macros
    )?;
    outln!(
        "scanned       {:.1} MiB",
        stats.bytes_scanned as f64 / (1024.0 * 1024.0)
    )?;
    outln!(
        "time          {:.2}s (index {:.2}s)",
        wall.as_secs_f64(),
        stats.elapsed.as_secs_f64()
    )?;
    Ok(ExitCode::SUCCESS)
}
