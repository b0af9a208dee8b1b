//! Times reference queries on a cached index (best of N runs, so a busy machine skews less):
//! `cargo run --release -p codeindex --example refs_bench -- TREE CACHE [NAME...]`

use std::path::PathBuf;
use std::time::{Duration, Instant};

use codeindex::{Index, IndexOptions, NoProgress, RefQuery};

/// This process's user + system CPU time (clock ticks of 10 ms), from /proc/self/stat.
fn cpu_ticks() -> u64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1.to_string();
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: refs_bench TREE CACHE [NAME...]";
    let tree = PathBuf::from(args.next().ok_or(usage)?);
    let cache = PathBuf::from(args.next().ok_or(usage)?);
    let mut names: Vec<String> = args.collect();
    if names.is_empty() {
        names = vec!["file::private_data".into(), "task_struct::pi_lock".into()];
    }
    let (idx, _) = Index::open(&tree, &IndexOptions::default(), &cache, &NoProgress)?;
    for q in names {
        let mut best = Duration::MAX;
        let mut total = 0;
        let c0 = cpu_ticks();
        for _ in 0..5 {
            let t = Instant::now();
            let r = idx.find_references(&RefQuery {
                name: q.clone(),
                path_prefix: None,
                limit: 0,
            })?;
            best = best.min(t.elapsed());
            total = r.total;
        }
        let cpu_ms = (cpu_ticks() - c0) * 10 / 5;
        println!("refs {q}: {total} refs, best of 5 {best:?}, CPU {cpu_ms} ms per query");
    }
    Ok(())
}
