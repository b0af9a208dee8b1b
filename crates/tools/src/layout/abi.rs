//! The x86_64 System V ABI facts a layout needs: sizes and alignments of C's builtin types and of
//! the kernel's fixed-width typedefs.
//!
//! Typedefs listed in [`known_typedef`] have the same size under every configuration (the
//! integer aliases, `atomic_t` and friends), so they are answered here without reading their
//! definitions. Everything else (notably `spinlock_t`, whose size depends on lock debugging
//! options) is resolved from its definition in the tree.

/// Size and alignment in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeAlign {
    pub size: u64,
    pub align: u64,
}

const fn sa(size: u64, align: u64) -> SizeAlign {
    SizeAlign { size, align }
}

pub const POINTER: SizeAlign = sa(8, 8);
/// `L1_CACHE_BYTES` on x86_64 (`CONFIG_X86_L1_CACHE_SHIFT=6`).
pub const CACHELINE: u64 = 64;

/// Words that can make up a builtin type specifier.
pub fn is_builtin_word(word: &str) -> bool {
    matches!(
        word,
        "unsigned"
            | "signed"
            | "char"
            | "short"
            | "int"
            | "long"
            | "_Bool"
            | "bool"
            | "float"
            | "double"
            | "__int128"
            | "void"
    )
}

/// The builtin type spelled by `words` (e.g. `unsigned long long`); `None` for `void` or junk.
pub fn builtin(words: &[&str]) -> Option<SizeAlign> {
    let longs = words.iter().filter(|w| **w == "long").count();
    let has = |w: &str| words.contains(&w);
    Some(if has("char") || has("_Bool") || has("bool") {
        sa(1, 1)
    } else if has("short") {
        sa(2, 2)
    } else if has("__int128") {
        sa(16, 16)
    } else if has("float") {
        sa(4, 4)
    } else if has("double") {
        if longs > 0 { sa(16, 16) } else { sa(8, 8) }
    } else if longs > 0 {
        sa(8, 8)
    } else if has("int") || has("unsigned") || has("signed") {
        sa(4, 4)
    } else {
        return None;
    })
}

/// Size of a builtin type written as text (`unsigned long`), for `sizeof` in constant expressions.
pub fn builtin_size(text: &str) -> Option<u64> {
    let words: Vec<&str> = text.split_whitespace().collect();
    if text.trim_end().ends_with('*') {
        return Some(POINTER.size);
    }
    if words.len() == 1
        && let Some(t) = known_typedef(words[0])
    {
        return Some(t.size);
    }
    words
        .iter()
        .all(|w| is_builtin_word(w))
        .then(|| builtin(&words))
        .flatten()
        .map(|t| t.size)
}

/// Kernel typedefs whose size is the same under every configuration on x86_64.
pub fn known_typedef(name: &str) -> Option<SizeAlign> {
    Some(match name {
        "u8" | "s8" | "__u8" | "__s8" | "uint8_t" | "int8_t" | "u_int8_t" | "u_char" | "unchar" => {
            sa(1, 1)
        }
        "u16" | "s16" | "__u16" | "__s16" | "uint16_t" | "int16_t" | "__le16" | "__be16"
        | "u_short" | "ushort" | "__sum16" => sa(2, 2),
        "u32" | "s32" | "__u32" | "__s32" | "uint32_t" | "int32_t" | "__le32" | "__be32"
        | "u_int" | "uint" | "__wsum" | "gfp_t" | "fmode_t" | "pid_t" | "uid_t" | "gid_t"
        | "kuid_t" | "kgid_t" | "dev_t" | "umode_t" | "atomic_t" | "refcount_t" | "errseq_t"
        | "slab_flags_t" | "blk_opf_t" | "blk_status_t" | "__poll_t" | "vm_fault_t"
        | "clockid_t" => {
            if name == "umode_t" {
                sa(2, 2)
            } else {
                sa(4, 4)
            }
        }
        "u64" | "s64" | "__u64" | "__s64" | "uint64_t" | "int64_t" | "__le64" | "__be64"
        | "size_t" | "ssize_t" | "loff_t" | "uintptr_t" | "intptr_t" | "ptrdiff_t" | "ulong"
        | "u_long" | "sector_t" | "blkcnt_t" | "phys_addr_t" | "dma_addr_t" | "resource_size_t"
        | "time64_t" | "ktime_t" | "atomic64_t" | "atomic_long_t" | "pgoff_t"
        | "__kernel_size_t" | "__kernel_ssize_t" | "__kernel_loff_t" | "off_t" | "cycles_t"
        | "netdev_features_t" | "u64_stats_t" | "local64_t" | "local_t" => sa(8, 8),
        "bool" | "_Bool" => sa(1, 1),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins() {
        assert_eq!(builtin(&["unsigned", "long", "long"]), Some(sa(8, 8)));
        assert_eq!(builtin(&["unsigned"]), Some(sa(4, 4)));
        assert_eq!(builtin(&["signed", "char"]), Some(sa(1, 1)));
        assert_eq!(builtin(&["void"]), None);
        assert_eq!(builtin_size("unsigned long"), Some(8));
        assert_eq!(builtin_size("u16"), Some(2));
        assert_eq!(builtin_size("struct foo *"), Some(8));
    }
}
