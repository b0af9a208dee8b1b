//! Prints the best definitions for names: `cargo run --release -p codeindex --example lookup -- TREE CACHE NAME...`

use std::path::PathBuf;

use codeindex::{Index, IndexOptions, NoProgress};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let tree = PathBuf::from(args.next().ok_or("usage: lookup TREE CACHE NAME...")?);
    let cache = PathBuf::from(args.next().ok_or("usage: lookup TREE CACHE NAME...")?);
    let (idx, _) = Index::open(&tree, &IndexOptions::default(), &cache, &NoProgress)?;
    for name in args {
        let defs = idx.lookup(&name, None);
        println!("{name}: {} definitions", defs.len());
        for d in defs.iter().take(3) {
            println!(
                "  {:?} {}:{}-{} state={:?} cond={:?} comment={:?}",
                d.kind, d.file, d.start_line, d.end_line, d.config_state, d.condition, d.comment
            );
        }
        if let Some(d) = defs.first() {
            let f = idx.fields_of(d);
            if !f.is_empty() {
                println!("  {} fields, first: {:?}", f.len(), &f[..f.len().min(2)]);
            }
        }
    }
    Ok(())
}
