//! `Index::open`: cold build, reload, incremental refresh and corrupt caches, on real files.

mod common;

use std::path::Path;

use codeindex::{Index, IndexOptions, NoProgress, RefQuery};
use common::{write_into, write_tree};

const TREE: &str = r#"
//- kernel/a.c
int alpha(void) { return 0; }
//- kernel/b.c
int beta(void) { return alpha(); }
//- include/c.h
#define GAMMA 3
"#;

fn open(tree: &Path, cache: &Path) -> (Index, codeindex::BuildStats) {
    Index::open(tree, &IndexOptions::default(), cache, &NoProgress).expect("open")
}

fn callers(idx: &Index, name: &str) -> Vec<String> {
    idx.find_references(&RefQuery {
        name: name.into(),
        path_prefix: None,
        limit: 0,
    })
    .expect("refs")
    .references
    .into_iter()
    .map(|r| format!("{}:{}", r.file, r.line))
    .collect()
}

/// Bumps a file's mtime (and size) as an editor would.
fn rewrite(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write");
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    std::fs::File::options()
        .append(true)
        .open(path)
        .and_then(|f| f.set_modified(later))
        .expect("mtime");
}

#[test]
fn reload_touch_add_remove() {
    let tree = write_tree(TREE);
    let cache = tempfile::tempdir().expect("cache");

    let (idx, st) = open(tree.path(), cache.path());
    assert!(!st.loaded_from_cache);
    assert_eq!((st.files_total, st.files_indexed), (3, 3));
    let cache_file = st.cache_file.clone().expect("persisted");
    assert!(cache_file.starts_with(cache.path().join("index")));
    assert_eq!(callers(&idx, "alpha"), ["kernel/b.c:1"]);
    drop(idx);

    // Reload: nothing re-indexed, same answers.
    let (idx, st) = open(tree.path(), cache.path());
    assert!(st.loaded_from_cache);
    assert_eq!((st.files_indexed, st.files_reused), (0, 3));
    assert_eq!(idx.lookup("GAMMA", None)[0].file, "include/c.h");
    assert_eq!(callers(&idx, "alpha"), ["kernel/b.c:1"]);
    drop(idx);

    // Touch one file, add one, remove one.
    rewrite(
        &tree.path().join("kernel/b.c"),
        "\n\nint beta(void) { return alpha() + alpha(); }\n",
    );
    write_into(
        tree.path(),
        "//- kernel/d.c\nint delta(void) { return alpha(); }\n",
    );
    std::fs::remove_file(tree.path().join("include/c.h")).expect("rm");
    let (idx, st) = open(tree.path(), cache.path());
    assert_eq!(
        (st.files_indexed, st.files_reused, st.files_removed),
        (2, 1, 1)
    );
    assert_eq!(idx.lookup("beta", None)[0].start_line, 3);
    assert!(idx.lookup("GAMMA", None).is_empty());
    assert!(!idx.has_file("include/c.h"));
    assert_eq!(
        idx.files().collect::<Vec<_>>(),
        ["kernel/a.c", "kernel/b.c", "kernel/d.c"]
    );
    assert_eq!(
        callers(&idx, "alpha"),
        ["kernel/b.c:3", "kernel/b.c:3", "kernel/d.c:1"]
    );
    drop(idx);

    // And the refreshed cache reloads as such.
    let (idx, st) = open(tree.path(), cache.path());
    assert_eq!((st.files_indexed, st.files_reused), (0, 3));
    assert_eq!(idx.lookup("delta", None)[0].file, "kernel/d.c");
}

#[test]
fn corrupt_or_truncated_cache_is_rebuilt() {
    let tree = write_tree(TREE);
    let cache = tempfile::tempdir().expect("cache");
    let (_, st) = open(tree.path(), cache.path());
    let file = st.cache_file.expect("persisted");
    let good = std::fs::read(&file).expect("read");

    // Flip a byte in the middle, truncate, and write garbage: each must rebuild, not panic.
    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x55;
    let variants: Vec<Vec<u8>> = vec![
        flipped,
        good[..good.len() / 3].to_vec(),
        b"garbage".to_vec(),
        Vec::new(),
    ];
    for bad in variants {
        std::fs::write(&file, &bad).expect("write");
        let (idx, st) = open(tree.path(), cache.path());
        assert!(!st.loaded_from_cache, "a damaged cache must not be used");
        assert_eq!(st.files_indexed, 3);
        assert_eq!(idx.lookup("alpha", None)[0].file, "kernel/a.c");
    }
    // The rebuild rewrote a good cache.
    let (_, st) = open(tree.path(), cache.path());
    assert!(st.loaded_from_cache);
}

#[test]
fn cache_is_keyed_by_arch_and_config() {
    let tree = write_tree(TREE);
    let cache = tempfile::tempdir().expect("cache");
    let (_, a) = open(tree.path(), cache.path());
    let arm = IndexOptions {
        arch: "arm64".into(),
        ..IndexOptions::default()
    };
    let (idx, b) = Index::open(tree.path(), &arm, cache.path(), &NoProgress).expect("open");
    assert!(!b.loaded_from_cache);
    assert_ne!(a.cache_file, b.cache_file);
    assert_eq!(idx.arch(), "arm64");
}

#[test]
fn names_and_side_records_survive_reload_and_refresh() {
    // Reused files keep their name offsets into the copied name buffer while a rescanned file
    // appends new ones; comments, conditions and fields live in side records that must be
    // relocated too.
    let tree = write_tree(
        r#"
//- include/asic_v1.h
#define mmREG_A 0x10
#define mmREG_B 0x11
//- include/asic_v2.h
#define mmREG_A 0x20
#define mmREG_B 0x21
//- include/s.h
/* A thing. */
struct thing { int a; };
#ifdef CONFIG_X
int only_x;
#endif
"#,
    );
    let cache = tempfile::tempdir().expect("cache");
    let files = |idx: &Index, n: &str| -> Vec<String> {
        let mut v: Vec<String> = idx.lookup(n, None).into_iter().map(|d| d.file).collect();
        v.sort();
        v
    };
    let check = |idx: &Index| {
        let t = &idx.lookup("struct thing", None)[0];
        assert_eq!(t.comment, Some((1, 1)));
        assert_eq!(idx.fields_of(t)[0].name, "a");
        assert_eq!(
            idx.lookup("only_x", None)[0].condition.as_deref(),
            Some("CONFIG_X")
        );
    };
    let (idx, _) = open(tree.path(), cache.path());
    assert_eq!(
        files(&idx, "mmREG_A"),
        ["include/asic_v1.h", "include/asic_v2.h"]
    );
    check(&idx);
    drop(idx);
    let (idx, st) = open(tree.path(), cache.path());
    assert!(st.loaded_from_cache);
    assert_eq!(
        files(&idx, "mmREG_B"),
        ["include/asic_v1.h", "include/asic_v2.h"]
    );
    check(&idx);
    drop(idx);

    rewrite(
        &tree.path().join("include/asic_v1.h"),
        "#define mmREG_A 0x10\n#define mmREG_C 0x12\n",
    );
    let (idx, st) = open(tree.path(), cache.path());
    assert_eq!((st.files_indexed, st.files_reused), (1, 2));
    assert_eq!(
        files(&idx, "mmREG_A"),
        ["include/asic_v1.h", "include/asic_v2.h"]
    );
    assert_eq!(files(&idx, "mmREG_B"), ["include/asic_v2.h"]);
    assert_eq!(files(&idx, "mmREG_C"), ["include/asic_v1.h"]);
    check(&idx);
    drop(idx);
    let (idx, _) = open(tree.path(), cache.path());
    assert_eq!(files(&idx, "mmREG_C"), ["include/asic_v1.h"]);
    assert_eq!(idx.similar_names("mmREG_", 5).len(), 3);
    check(&idx);
}

/// A refresh replaces `index.bin` while an older `Index` still maps it: the old one keeps
/// answering from its own snapshot, the new one sees the change, and what earlier writers left
/// in the cache directory is swept, except a live writer's temp file.
#[test]
fn refresh_under_a_live_reader_and_sweep_of_leftovers() {
    let tree = write_tree(TREE);
    let cache = tempfile::tempdir().expect("cache");
    let (old_idx, st) = open(tree.path(), cache.path());
    let dir = st
        .cache_file
        .expect("persisted")
        .parent()
        .unwrap()
        .to_path_buf();
    // Leftovers of a writer that died (no such pid) and of one that is running (pid 1).
    let dead = u32::MAX;
    let me = std::process::id();
    for name in [
        format!("index.bin.retired.{dead}"),
        format!("index.bin.tmp.{dead}"),
        "index.bin.tmp.1".to_string(),
    ] {
        std::fs::write(dir.join(name), b"leftover").expect("leftover");
    }

    rewrite(
        &tree.path().join("kernel/a.c"),
        "int alpha2(void) { return 0; }\n",
    );
    let (new_idx, st) = open(tree.path(), cache.path());
    assert_eq!(st.files_indexed, 1);
    assert!(new_idx.lookup("alpha", None).is_empty());
    assert_eq!(new_idx.lookup("alpha2", None)[0].file, "kernel/a.c");
    // The old snapshot is intact although its file was replaced and is being deleted.
    assert_eq!(old_idx.lookup("alpha", None)[0].file, "kernel/a.c");
    assert!(old_idx.lookup("alpha2", None).is_empty());

    let mut left: Vec<String> = std::fs::read_dir(&dir)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with(&format!("index.bin.retired.{me}")))
        .collect();
    left.sort();
    assert_eq!(left, ["index.bin", "index.bin.tmp.1"]);
    drop((old_idx, new_idx));

    // The replaced file is gone once its background deletion has run.
    let retired = dir.join(format!("index.bin.retired.{me}"));
    for _ in 0..200 {
        if !retired.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(!retired.exists(), "replaced cache file never deleted");
}

/// `IndexOptions::build_dir`: the build's generated headers are indexed at their tree-relative
/// paths (over a stale in-tree copy), read from the build directory by reference queries,
/// refreshed when the build rewrites them, and give the cache a key of their own.
#[test]
fn generated_headers_of_a_build_directory() {
    let tree = write_tree(
        r#"
//- kernel/a.c
#include <generated/bounds.h>
int nr_pageflags(void) { return NR_PAGEFLAGS; }
//- include/generated/bounds.h
#define STALE_IN_TREE 1
"#,
    );
    let build = write_tree(
        r#"
//- include/generated/bounds.h
#define NR_PAGEFLAGS 23
static inline int gen_flags(void) { return NR_PAGEFLAGS; }
//- arch/x86/include/generated/asm/syscalls_64.h
#define __NR_gen_read 0
//- arch/x86/kernel/not-generated.c
int built_object_source(void) { return 0; }
"#,
    );
    let cache = tempfile::tempdir().expect("cache");
    let opts = IndexOptions {
        build_dir: Some(build.path().to_path_buf()),
        ..IndexOptions::default()
    };
    let (idx, st) = Index::open(tree.path(), &opts, cache.path(), &NoProgress).expect("open");
    assert_eq!(st.files_total, 3, "{:?}", idx.files().collect::<Vec<_>>());
    assert_eq!(
        idx.files().collect::<Vec<_>>(),
        [
            "arch/x86/include/generated/asm/syscalls_64.h",
            "include/generated/bounds.h",
            "kernel/a.c"
        ]
    );
    let d = &idx.lookup("NR_PAGEFLAGS", None)[0];
    assert_eq!(
        (d.file.as_str(), d.start_line),
        ("include/generated/bounds.h", 1)
    );
    assert_eq!(idx.lookup("__NR_gen_read", None).len(), 1);
    assert!(
        idx.lookup("STALE_IN_TREE", None).is_empty(),
        "the build's copy wins"
    );
    assert!(
        idx.lookup("built_object_source", None).is_empty(),
        "only generated headers"
    );
    assert_eq!(
        idx.base_for("include/generated/bounds.h"),
        build.path().canonicalize().unwrap()
    );
    assert_eq!(
        idx.base_for("kernel/a.c"),
        tree.path().canonicalize().unwrap()
    );
    assert_eq!(
        idx.generated_dirs(),
        ["arch/x86/include/generated", "include/generated"]
    );
    // References are lexed from the build directory's file.
    assert_eq!(
        callers(&idx, "NR_PAGEFLAGS"),
        ["include/generated/bounds.h:2", "kernel/a.c:2"]
    );
    drop(idx);

    // The build regenerates a header: only it is re-indexed.
    rewrite(
        &build.path().join("include/generated/bounds.h"),
        "\n#define NR_PAGEFLAGS 24\n",
    );
    let (idx, st) = Index::open(tree.path(), &opts, cache.path(), &NoProgress).expect("open");
    assert_eq!((st.files_indexed, st.files_reused), (1, 2));
    assert_eq!(idx.lookup("NR_PAGEFLAGS", None)[0].start_line, 2);
    drop(idx);

    // Without the build directory it is another index: the tree's own copy, nothing generated.
    let (idx, st) = Index::open(
        tree.path(),
        &IndexOptions::default(),
        cache.path(),
        &NoProgress,
    )
    .expect("open");
    assert!(!st.loaded_from_cache);
    assert_eq!(idx.lookup("STALE_IN_TREE", None).len(), 1);
    assert!(idx.lookup("NR_PAGEFLAGS", None).is_empty());

    // A build directory that does not exist is an error naming it.
    let missing = IndexOptions {
        build_dir: Some(tree.path().join("no-such-build")),
        ..IndexOptions::default()
    };
    let err = Index::open(tree.path(), &missing, cache.path(), &NoProgress).unwrap_err();
    assert!(err.to_string().contains("no-such-build"), "{err}");
}

/// Refreshing the same file again and again does not grow the cache: the old copies of its
/// names are dropped once they would make up a fifth of the name buffer.
#[test]
fn repeated_refreshes_keep_the_cache_size_bounded() {
    let tree = write_tree("//- kernel/small.c\nint small(void) { return 0; }\n");
    std::fs::create_dir_all(tree.path().join("drivers")).expect("mkdir");
    let cache = tempfile::tempdir().expect("cache");
    let body = |round: usize| -> String {
        let mut text = format!("/* round {round} */\n");
        for i in 0..300 {
            text.push_str(&format!(
                "#define A_RATHER_LONG_REGISTER_NAME_OF_SOME_DEVICE_BLOCK_{i:04} {round}\n"
            ));
        }
        text
    };
    rewrite(&tree.path().join("drivers/regs.h"), &body(0));
    let (idx, st) = open(tree.path(), cache.path());
    let cache_file = st.cache_file.clone().expect("persisted");
    drop(idx); // waits for the background write
    let first = std::fs::metadata(&cache_file).expect("size").len();
    let mut sizes = Vec::new();
    for round in 1..=15 {
        rewrite(&tree.path().join("drivers/regs.h"), &body(round));
        let (idx, st) = open(tree.path(), cache.path());
        assert_eq!(st.files_indexed, 1);
        assert_eq!(
            idx.lookup(
                "A_RATHER_LONG_REGISTER_NAME_OF_SOME_DEVICE_BLOCK_0299",
                None
            )[0]
            .file,
            "drivers/regs.h"
        );
        assert_eq!(idx.lookup("small", None).len(), 1);
        // The cache is written in the background; the size is the new file's once it is done.
        idx.wait_persisted().expect("cache written");
        sizes.push(std::fs::metadata(&cache_file).expect("size").len());
    }
    let last = *sizes.last().expect("sizes");
    assert!(
        last * 10 <= first * 13,
        "the cache grew from {first} to {last} bytes: {sizes:?}"
    );
}
