//! Public data types of the index: [`Definition`], [`Field`], [`Reference`] and the query and
//! statistics types around them. They are plain data (serde-serialisable, snake_case) so that
//! the `tools` crate can hand them straight to JSON.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

/// How to index a tree: which architecture is "ours" and, optionally, a `.config` that decides
/// `#if CONFIG_*` conditions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IndexOptions {
    /// Kernel architecture name (`x86_64`, `arm64`, ...); `x86_64`/`i386` map to `arch/x86`.
    pub arch: String,
    /// A kernel `.config`; `None` leaves every conditional definition [`ConfigState::Unknown`].
    pub config: Option<PathBuf>,
    /// The `O=` directory of a build of this tree (`assess --build`). Its generated headers
    /// (`include/generated/**`, `arch/*/include/generated/**`) are indexed as if they sat in the
    /// tree at the same relative path — where the build's include paths find them — and win
    /// over same-named files in the tree.
    pub build_dir: Option<PathBuf>,
}

impl Default for IndexOptions {
    fn default() -> Self {
        IndexOptions {
            arch: "x86_64".to_string(),
            config: None,
            build_dir: None,
        }
    }
}

/// Progress sink for long builds (the CLI draws a bar; tests pass [`NoProgress`]).
pub trait Progress: Sync {
    fn set_total(&self, _n: u64) {}
    fn inc(&self, _n: u64) {}
    fn message(&self, _m: &str) {}
}

/// A [`Progress`] that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;
impl Progress for NoProgress {}

/// What a build or an incremental refresh did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct BuildStats {
    pub files_total: usize,
    /// Files lexed in this run (all of them on a cold build, only changed/added ones on refresh).
    pub files_indexed: usize,
    /// Files whose entries were carried over from the cache unchanged.
    pub files_reused: usize,
    pub files_removed: usize,
    pub definitions: usize,
    pub bytes_scanned: u64,
    /// Until the index was ready; a changed cache is then written in the background
    /// (`Index::wait_persisted`).
    pub elapsed: Duration,
    pub loaded_from_cache: bool,
    /// Where the cache file is (or is being written); `None` for an in-memory index.
    pub cache_file: Option<PathBuf>,
}

/// Per-kind totals of an index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Counts {
    pub files: usize,
    pub bytes: u64,
    pub functions: usize,
    pub prototypes: usize,
    pub structs: usize,
    pub unions: usize,
    pub fields: usize,
    pub enums: usize,
    pub enumerators: usize,
    pub typedefs: usize,
    pub global_variables: usize,
    pub macros: usize,
    /// (identifier, file) pairs in the reference posting lists.
    pub postings: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    Function,
    Prototype,
    Struct,
    Union,
    Field,
    Enum,
    Enumerator,
    Typedef,
    GlobalVariable,
    Macro,
}

impl EntityKind {
    pub const ALL: [EntityKind; 10] = [
        EntityKind::Function,
        EntityKind::Prototype,
        EntityKind::Struct,
        EntityKind::Union,
        EntityKind::Field,
        EntityKind::Enum,
        EntityKind::Enumerator,
        EntityKind::Typedef,
        EntityKind::GlobalVariable,
        EntityKind::Macro,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::Function => "function",
            EntityKind::Prototype => "prototype",
            EntityKind::Struct => "struct",
            EntityKind::Union => "union",
            EntityKind::Field => "field",
            EntityKind::Enum => "enum",
            EntityKind::Enumerator => "enumerator",
            EntityKind::Typedef => "typedef",
            EntityKind::GlobalVariable => "global_variable",
            EntityKind::Macro => "macro",
        }
    }

    pub(crate) fn to_u8(self) -> u8 {
        self as u8
    }

    pub(crate) fn from_u8(v: u8) -> Option<EntityKind> {
        EntityKind::ALL.get(v as usize).copied()
    }
}

/// Whether the `#if` chain around a definition holds under the selected `.config`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfigState {
    /// Compiled in (or unconditional).
    Active,
    /// Excluded by the `.config`.
    Inactive,
    /// No `.config`, or the condition depends on something other than `CONFIG_*` symbols.
    Unknown,
}

impl ConfigState {
    pub(crate) fn to_u8(self) -> u8 {
        match self {
            ConfigState::Active => 0,
            ConfigState::Inactive => 1,
            ConfigState::Unknown => 2,
        }
    }
    pub(crate) fn from_u8(v: u8) -> ConfigState {
        match v {
            0 => ConfigState::Active,
            1 => ConfigState::Inactive,
            _ => ConfigState::Unknown,
        }
    }
}

/// One definition (or prototype) found in the tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Definition {
    pub kind: EntityKind,
    /// The lookup name: `foo`, or `record::member` for fields.
    pub name: String,
    /// Tree-relative, `/`-separated.
    pub file: String,
    /// 1-based, inclusive, whole body (from the first specifier to the closing brace/semicolon).
    pub start_line: u32,
    pub end_line: u32,
    /// Lines of the comment block just before the definition (or kernel-doc), if any.
    pub comment: Option<(u32, u32)>,
    pub is_static: bool,
    pub is_weak: bool,
    pub is_inline: bool,
    /// An `extern` declaration of a global variable (kind [`EntityKind::GlobalVariable`]), not
    /// its definition; ranked below definitions, like a prototype.
    pub is_extern: bool,
    /// Enclosing `#if` chain, e.g. `CONFIG_SMP && !(CONFIG_X)`; include guards are left out.
    pub condition: Option<String>,
    pub config_state: ConfigState,
    /// `Some("arm64")` for files under `arch/arm64/`.
    pub arch: Option<String>,
    /// The record of a field, the enum of an enumerator, the outer record of a nested record.
    pub parent: Option<String>,
    /// The generator macro, e.g. `SYSCALL_DEFINE3`, for definitions made by macros.
    pub generated_by: Option<String>,
}

/// A member of a struct or union, in declaration order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Field {
    pub name: String,
    pub line: u32,
    /// The member declaration without comments, whitespace collapsed, e.g. `unsigned int flags : 3`.
    pub decl: String,
    pub bitfield_width: Option<u32>,
    /// Enclosing anonymous struct/union members, outermost first, each written `struct@LINE`
    /// or `union@LINE` (the line of the anonymous member's keyword).
    pub anonymous_path: Vec<String>,
}

/// What to look for with [`crate::Index::find_references`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefQuery {
    /// `foo` (function, global, macro, type, enumerator) or `record::field`
    /// (`struct record::field` is accepted too).
    pub name: String,
    /// Only files whose tree-relative path starts with this.
    pub path_prefix: Option<String>,
    /// At most this many references are returned (`0` = no limit); `total` counts all.
    pub limit: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefResults {
    /// Sorted by file then line then column.
    pub references: Vec<Reference>,
    /// Number of references before `limit` was applied.
    pub total: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RefKind {
    Call,
    /// A function's name used other than in a call (stored in a pointer, passed as an argument).
    AddressTaken,
    Read,
    Write,
    /// `x++`, `x--`, `++x`, `x |= ..`, `x += ..`, and atomic read-modify-write helpers.
    ReadWrite,
    /// `&x->f`, `&global`.
    AddressOf,
    TypeUse,
    /// A macro used without arguments, or any other use of a name.
    Use,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Marking {
    Plain,
    ReadOnce,
    WriteOnce,
    DataRace,
    LoadAcquire,
    StoreRelease,
    /// `atomic_*`, `test_bit`, `set_bit`, `cmpxchg`, ...
    Atomic,
    /// `rcu_dereference*`, `rcu_assign_pointer`, `rcu_access_pointer`.
    Rcu,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// The base expression's type was resolved to the queried record (or the name is unambiguous).
    Exact,
    /// Only the member name matched; the base type could not be determined cheaply.
    NameOnly,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reference {
    pub kind: RefKind,
    pub marking: Marking,
    pub file: String,
    /// 1-based.
    pub line: u32,
    /// 1-based byte column of the name.
    pub column: u32,
    /// The function containing the reference, if any.
    pub enclosing: Option<String>,
    /// The source line, trailing whitespace trimmed.
    pub line_text: String,
    pub resolution: Resolution,
}
