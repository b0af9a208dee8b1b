//! Measures the index on a tree: cold build, reload, re-index after touching 100 files, a few
//! lookups and a reference query, and peak RSS.
//!
//! `cargo run --release -p codeindex --example index_tree -- TREE [CACHE]`

use std::path::PathBuf;
use std::time::Instant;

use codeindex::{Index, IndexOptions, NoProgress, RefQuery};

fn peak_rss_mb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<u64>().ok())
            })
        })
        .map_or(0, |kb| kb / 1024)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let mut args = std::env::args().skip(1);
    let tree = PathBuf::from(args.next().ok_or("usage: index_tree TREE [CACHE]")?);
    let cache = match args.next() {
        Some(c) => PathBuf::from(c),
        None => std::env::temp_dir().join(format!("codeindex-bench-{}", std::process::id())),
    };
    let opts = IndexOptions::default();
    let keep = std::env::var_os("KEEP_CACHE").is_some();
    if !keep {
        let _ = std::fs::remove_dir_all(cache.join("index"));
    }

    let (idx, st) = Index::open(&tree, &opts, &cache, &NoProgress)?;
    println!(
        "cold:   {:>8.3} s  files={} indexed={} defs={} bytes={} loaded_from_cache={}",
        st.elapsed.as_secs_f64(),
        st.files_total,
        st.files_indexed,
        st.definitions,
        st.bytes_scanned,
        st.loaded_from_cache
    );
    println!("counts: {:?}", idx.counts());
    if let Some(f) = &st.cache_file {
        println!(
            "cache:  {} ({} MB)",
            f.display(),
            std::fs::metadata(f)?.len() >> 20
        );
    }
    println!("peak RSS after cold: {} MB", peak_rss_mb());
    drop(idx);
    if std::env::var_os("COLD_ONLY").is_some() {
        return Ok(());
    }

    let (idx, st) = Index::open(&tree, &opts, &cache, &NoProgress)?;
    println!(
        "reload: {:>8.3} s  reused={} loaded_from_cache={}",
        st.elapsed.as_secs_f64(),
        st.files_reused,
        st.loaded_from_cache
    );

    // Touch 100 files (bump mtime) spread over the tree.
    let files: Vec<String> = idx.files().map(str::to_string).collect();
    let step = (files.len() / 100).max(1);
    // The original mtimes are restored at the end so other users' caches stay valid.
    let now = std::time::SystemTime::now();
    let mut touched = Vec::new();
    for f in files.iter().step_by(step).take(100) {
        let p = idx.root().join(f);
        let fh = std::fs::File::options().append(true).open(&p)?;
        touched.push((p, fh.metadata()?.modified()?));
        fh.set_modified(now)?;
    }
    drop(idx);
    let (idx, st) = Index::open(&tree, &opts, &cache, &NoProgress)?;
    println!(
        "touch100: {:>6.3} s  indexed={} reused={} removed={}",
        st.elapsed.as_secs_f64(),
        st.files_indexed,
        st.files_reused,
        st.files_removed
    );

    let names = [
        "sock_poll",
        "smc_switch_to_fallback",
        "__x64_sys_sendmsg",
        "file",
        "struct file",
        "file::private_data",
        "task_struct",
        "schedule",
        "kmalloc",
        "spin_lock",
        "jiffies",
        "current",
        "no_such_symbol_xyz",
    ];
    let mut times = Vec::new();
    for _ in 0..50 {
        for n in names {
            let t = Instant::now();
            let r = idx.lookup(n, Some("net/socket.c"));
            times.push(t.elapsed());
            std::hint::black_box(r);
        }
    }
    times.sort();
    let p = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    println!(
        "lookup: p50={:?} p99={:?} max={:?}",
        p(0.5),
        p(0.99),
        times[times.len() - 1]
    );
    for n in ["sock_poll", "__x64_sys_sendmsg", "struct file"] {
        if let Some(d) = idx.lookup(n, None).first() {
            println!(
                "  {n} -> {}:{}-{} {:?}",
                d.file, d.start_line, d.end_line, d.kind
            );
        }
    }

    for q in ["file::private_data", "sock_poll", "task_struct::pi_lock"] {
        let t = Instant::now();
        let r = idx.find_references(&RefQuery {
            name: q.to_string(),
            path_prefix: None,
            limit: 0,
        })?;
        println!("refs {q}: {} in {:?}", r.total, t.elapsed());
    }
    let t = Instant::now();
    let s = idx.similar_names("sock_pol", 5);
    println!("similar_names(sock_pol) = {s:?} in {:?}", t.elapsed());
    println!("peak RSS: {} MB", peak_rss_mb());
    for (p, m) in touched {
        std::fs::File::options()
            .append(true)
            .open(&p)?
            .set_modified(m)?;
    }
    Ok(())
}
