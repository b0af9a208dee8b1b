//! The KCSAN report model: what [`crate::parse`] produces and what every later stage (the static
//! expert, the MCP server, the CLI) consumes.
//!
//! Principal types: [`ParseOutput`] (all reports found in one input, plus input-level warnings),
//! [`Report`] (one `BUG: KCSAN:` block), [`Access`] (one side of the race), [`Frame`] (one stack
//! line) and [`Warning`] (something the parser did not fully understand).
//!
//! The serde names are explicit and part of the documented JSON shape (docs/report-format.md,
//! docs/report.schema.json): renaming a field is a breaking change, adding an optional one is not.
//! Addresses and hex values stay strings because JSON numbers lose precision above 2^53.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Everything found in one input text. Parsing never fails: an input without any report yields an
/// empty `reports` and a warning saying so.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ParseOutput {
    /// The reports, in input order.
    #[serde(rename = "reports")]
    pub reports: Vec<Report>,
    /// Warnings about the input as a whole (e.g. no report found). Per-report warnings live in
    /// [`Report::warnings`].
    #[serde(rename = "warnings")]
    pub warnings: Vec<Warning>,
}

/// One KCSAN report: the block from `BUG: KCSAN:` to the closing `=====` line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Report {
    /// The title as syzbot writes it: `KCSAN: ` + the BUG line's text after `BUG: KCSAN: `, with
    /// `+0x../0x..` offsets, file:line and module of each function dropped (syzbot does that for
    /// unknown-origin reports) and a trailing ` (N)` recurrence counter removed (see
    /// [`Report::title_counter`]). E.g. `KCSAN: data-race in drain_all_stock / drain_obj_stock`.
    #[serde(rename = "title")]
    pub title: String,
    /// The BUG line's text after `BUG: KCSAN: ` exactly as printed (offsets, file and module
    /// included for a race at unknown origin, where the kernel prints `%pS`).
    #[serde(rename = "bug_line")]
    pub bug_line: String,
    /// syzbot's recurrence counter, `2` for a title ending in ` (2)`; absent otherwise.
    #[serde(
        rename = "title_counter",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub title_counter: Option<u32>,
    /// What kind of report this is.
    #[serde(rename = "kind")]
    pub kind: ReportKind,
    /// The function names named in the BUG line, offsets stripped (one for unknown origin, two
    /// otherwise, in the order printed — the kernel sorts them lexicographically).
    #[serde(rename = "title_functions")]
    pub title_functions: Vec<String>,
    /// The racing accesses in print order: two for a race between two threads, one for a race at
    /// unknown origin. Fewer than expected when the input was cut (see warnings).
    #[serde(rename = "accesses")]
    pub accesses: Vec<Access>,
    /// `value changed: A -> B` (and the optional ` bits changed:` line), when printed.
    #[serde(
        rename = "value_change",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub value_change: Option<ValueChange>,
    /// The `Reported by Kernel Concurrency Sanitizer on:` footer, when present.
    #[serde(
        rename = "reported_by",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub reported_by: Option<ReportedBy>,
    /// Where the report sits in the input (1-based, inclusive line numbers).
    #[serde(rename = "span")]
    pub span: LineSpan,
    /// Everything the parser could not fully understand about this report.
    #[serde(rename = "warnings")]
    pub warnings: Vec<Warning>,
}

/// The kind of KCSAN report, from the BUG line and the access header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum ReportKind {
    /// `BUG: KCSAN: data-race in A / B`: two plain/marked accesses, one of them a write.
    #[serde(rename = "data-race")]
    DataRace,
    /// `BUG: KCSAN: assert: race in A / B`: an `ASSERT_EXCLUSIVE_*` assertion was violated.
    #[serde(rename = "assert: race")]
    AssertRace,
    /// `race at unknown origin, with read to ...`: a value changed under a watchpoint but the
    /// other thread was not observed.
    #[serde(rename = "data-race, unknown origin")]
    DataRaceUnknownOrigin,
    /// An assertion violated at unknown origin.
    #[serde(rename = "assert: race, unknown origin")]
    AssertRaceUnknownOrigin,
    /// Early (v5.3-era) KCSAN wording such as `BUG: KCSAN: racing read in f+0x..`.
    #[serde(rename = "racing access")]
    RacingAccess,
}

impl ReportKind {
    /// True for the kinds where only one access is printed.
    pub fn is_unknown_origin(self) -> bool {
        matches!(
            self,
            ReportKind::DataRaceUnknownOrigin | ReportKind::AssertRaceUnknownOrigin
        )
    }
}

/// One side of the race: its header line and stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Access {
    /// The access type exactly as printed, e.g. `read-write (marked, reordered)`, `assert no writes`.
    #[serde(rename = "access_type")]
    pub access_type: String,
    /// The memory operation.
    #[serde(rename = "operation")]
    pub operation: Operation,
    /// The parenthesised and assert qualifiers.
    #[serde(rename = "qualifiers")]
    pub qualifiers: Qualifiers,
    /// The accessed address as printed (`0xffff888237c2a2f8`); a string to keep all 64 bits in JSON.
    /// Hand-edited reports sometimes elide it (`...`); it is then kept verbatim.
    #[serde(rename = "address")]
    pub address: String,
    /// Access size in bytes.
    #[serde(rename = "size")]
    pub size: u64,
    /// Who made the access.
    #[serde(rename = "context")]
    pub context: AccessContext,
    /// The "by ..." text as printed: `task 5923`, `interrupt`, or an edited `task ipvs_cfg`.
    #[serde(rename = "who")]
    pub who: String,
    /// The CPU the access ran on; absent only in hand-edited reports that dropped `on cpu N`.
    #[serde(rename = "cpu", default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<u32>,
    /// The stack, innermost frame first, as printed.
    #[serde(rename = "stack")]
    pub stack: Vec<Frame>,
    /// For `reordered` accesses: the `+-> reordered to:` frame (where the access was reordered to).
    #[serde(
        rename = "reordered_to",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub reordered_to: Option<Frame>,
    /// CONFIG_KCSAN_VERBOSE's held-locks and irq-state block, when printed.
    #[serde(rename = "verbose", default, skip_serializing_if = "Option::is_none")]
    pub verbose: Option<VerboseInfo>,
}

impl Access {
    /// The first frame that is neither KCSAN runtime, instrumentation nor entry plumbing: the
    /// function the access really belongs to. Falls back to `None` for an empty or all-plumbing stack.
    pub fn first_interesting_frame(&self) -> Option<&Frame> {
        self.stack
            .iter()
            .find(|f| f.class == FrameClass::Interesting)
    }

    /// Whether the access ran in a kernel thread, as far as the stack tells: `Some(true)` when
    /// it passes through `kthread` (kworkers, kthreads), `Some(false)` when it came from a
    /// syscall or user-mode fault entry, `None` when the stack does not say (interrupts, cut
    /// stacks). The header only says `task N`.
    pub fn kernel_thread(&self) -> Option<bool> {
        const USER_ENTRY: &[&str] = &[
            "entry_SYSCALL_64_after_hwframe",
            "do_syscall_64",
            "el0_svc",
            "el0t_64_sync",
            "system_call_exception",
            "asm_exc_page_fault",
        ];
        if self.stack.iter().any(|f| f.function == "kthread") {
            Some(true)
        } else if self
            .stack
            .iter()
            .any(|f| USER_ENTRY.contains(&f.function.as_str()))
        {
            Some(false)
        } else {
            None
        }
    }
}

/// The memory operation of an access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Operation {
    #[serde(rename = "read")]
    Read,
    #[serde(rename = "write")]
    Write,
    /// A compound read-modify-write (`x++`, `x |= y`).
    #[serde(rename = "read-write")]
    ReadWrite,
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Operation::Read => "read",
            Operation::Write => "write",
            Operation::ReadWrite => "read-write",
        })
    }
}

/// Qualifiers of an access type. `assert no writes` is a read with `assert`; `assert no accesses`
/// a write with `assert` (that is how the kernel encodes `ASSERT_EXCLUSIVE_WRITER/ACCESS`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub struct Qualifiers {
    /// `(marked)`: READ_ONCE/WRITE_ONCE/atomic-marked access.
    #[serde(rename = "marked")]
    pub marked: bool,
    /// `atomic` wording of early KCSAN versions.
    #[serde(rename = "atomic")]
    pub atomic: bool,
    /// An `ASSERT_EXCLUSIVE_*` check rather than a real access.
    #[serde(rename = "assert")]
    pub assert: bool,
    /// `(reordered)`: the access may have been reordered (weak-memory modelling).
    #[serde(rename = "reordered")]
    pub reordered: bool,
    /// `(scoped)`: a scoped access/assertion (wording of v5.8–v5.14).
    #[serde(rename = "scoped")]
    pub scoped: bool,
}

/// Who performed an access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind")]
pub enum AccessContext {
    /// `by task N`.
    #[serde(rename = "task")]
    Task {
        #[serde(rename = "pid")]
        pid: u32,
    },
    /// `by interrupt`.
    #[serde(rename = "interrupt")]
    Interrupt,
    /// Anything else (hand-edited reports: `by task ipvs_cfg`); see [`Access::who`].
    #[serde(rename = "unknown")]
    Unknown,
}

/// One stack-trace line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Frame {
    /// The symbol, e.g. `drain_obj_stock` or `_nohz_idle_balance.isra.0`.
    #[serde(rename = "function")]
    pub function: String,
    /// `+0x408` as a number, when printed.
    #[serde(rename = "offset", default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// `/0x4e0` (the function size), when printed.
    #[serde(rename = "size", default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Module name for `[ext4]`-style frames.
    #[serde(rename = "module", default, skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
    /// Source file relative to the tree (`mm/memcontrol.c`), when symbolized.
    #[serde(rename = "file", default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Source line, when symbolized.
    #[serde(rename = "line", default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// Source column, when the symbolizer printed one.
    #[serde(rename = "column", default, skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
    /// `[inline]`: a frame inlined into the next non-inline frame.
    #[serde(rename = "inline")]
    pub inline: bool,
    /// A `? ` prefixed (unreliable) frame.
    #[serde(
        rename = "unreliable",
        default,
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub unreliable: bool,
    /// What kind of code the frame is in.
    #[serde(rename = "class")]
    pub class: FrameClass,
}

/// A coarse classification of a frame, so consumers can skip to the code that matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum FrameClass {
    /// The KCSAN runtime (`kcsan_*`, `__kcsan_*`, kernel/kcsan/).
    #[serde(rename = "kcsan-runtime")]
    KcsanRuntime,
    /// Compiler instrumentation hooks (`__tsan_*`, `*_once_size`).
    #[serde(rename = "instrumentation")]
    Instrumentation,
    /// Entry, syscall, interrupt and worker plumbing (`do_syscall_64`, `ret_from_fork`, `kthread`,
    /// `worker_thread`, `process_one_work`, ...).
    #[serde(rename = "entry")]
    Entry,
    /// Everything else: code that can explain the race.
    #[serde(rename = "interesting")]
    Interesting,
    /// A bare address the kernel could not symbolize (`function` holds the address text).
    #[serde(rename = "unsymbolized")]
    Unsymbolized,
}

/// `value changed: 0x.. -> 0x..`, plus ` bits changed: 0x.. with mask 0x..` when a mask was used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ValueChange {
    /// The old value as printed (hex string).
    #[serde(rename = "old")]
    pub old: String,
    /// The new value as printed (hex string).
    #[serde(rename = "new")]
    pub new: String,
    /// The changed bits, from the ` bits changed:` line.
    #[serde(
        rename = "bits_changed",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub bits_changed: Option<String>,
    /// The assertion mask, from the ` bits changed:` line.
    #[serde(rename = "mask", default, skip_serializing_if = "Option::is_none")]
    pub mask: Option<String>,
}

/// The CONFIG_KCSAN_VERBOSE block printed after a stack: held locks and irq-state trace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct VerboseInfo {
    /// `N locks held by comm/pid:` → N (`no locks held` → 0), when printed.
    #[serde(
        rename = "locks_held",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub locks_held: Option<u32>,
    /// The ` #0: ffff... (&lock){....}, at: f+0x..` lines, trimmed.
    #[serde(rename = "locks", default)]
    pub locks: Vec<String>,
    /// The irq trace lines (`irq event stamp:`, `hardirqs last  enabled at ...`), trimmed.
    #[serde(rename = "irq_trace", default)]
    pub irq_trace: Vec<String>,
}

/// The `Reported by Kernel Concurrency Sanitizer on:` footer (dump_stack_print_info).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ReportedBy {
    #[serde(rename = "cpu", default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<u32>,
    #[serde(rename = "pid", default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(rename = "comm", default, skip_serializing_if = "Option::is_none")]
    pub comm: Option<String>,
    /// `Not tainted` → `None`; `Tainted: G        W` → `Some("G        W")`.
    #[serde(rename = "taint", default, skip_serializing_if = "Option::is_none")]
    pub taint: Option<String>,
    /// The kernel release, e.g. `6.3.0-rc2-syzkaller-00387-g534293368afa`.
    #[serde(
        rename = "kernel_release",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub kernel_release: Option<String>,
    /// Whatever follows the release on the CPU line (`#0`, `#10 PREEMPT(voluntary)`).
    #[serde(rename = "build", default, skip_serializing_if = "Option::is_none")]
    pub build: Option<String>,
    /// The `Hardware name:` line's text.
    #[serde(rename = "hardware", default, skip_serializing_if = "Option::is_none")]
    pub hardware: Option<String>,
    /// The `Workqueue:` line's text (workqueue name and work function), when printed.
    #[serde(rename = "workqueue", default, skip_serializing_if = "Option::is_none")]
    pub workqueue: Option<String>,
    /// Other footer lines (e.g. 6.12's separate `Tainted: [W]=WARN` line), trimmed.
    #[serde(rename = "extra", default, skip_serializing_if = "Vec::is_empty")]
    pub extra: Vec<String>,
    /// The raw CPU line, for anything not broken out above.
    #[serde(rename = "cpu_line", default, skip_serializing_if = "Option::is_none")]
    pub cpu_line: Option<String>,
}

/// 1-based, inclusive line range in the input.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LineSpan {
    #[serde(rename = "start")]
    pub start: usize,
    #[serde(rename = "end")]
    pub end: usize,
}

/// Something the parser did not fully understand. Never a silent drop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Warning {
    #[serde(rename = "kind")]
    pub kind: WarningKind,
    /// Human-readable, names what is missing or was not understood.
    #[serde(rename = "message")]
    pub message: String,
    /// 1-based input line the warning is about, when there is one.
    #[serde(rename = "line", default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
}

/// Warning categories. The incompleteness ones say the report lacks information a consumer may rely on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum WarningKind {
    /// The input contained no KCSAN report.
    #[serde(rename = "no-report")]
    NoReport,
    /// No `Reported by Kernel Concurrency Sanitizer on:` footer.
    #[serde(rename = "no-footer")]
    NoFooter,
    /// An access (usually the second) is missing entirely.
    #[serde(rename = "missing-access")]
    MissingAccess,
    /// An access header without any stack frame, or a stack cut off by the end of input.
    #[serde(rename = "truncated-stack")]
    TruncatedStack,
    /// A `...` or `[snip]` gap inside the report: lines were elided.
    #[serde(rename = "gap")]
    Gap,
    /// Email quoting stopped (or changed depth) in the middle of the report.
    #[serde(rename = "quoting-cut")]
    QuotingCut,
    /// A line inside the report that the parser did not understand.
    #[serde(rename = "unparsed-line")]
    UnparsedLine,
    /// A console line from another source interleaved into the report (skipped).
    #[serde(rename = "interleaved-line")]
    InterleavedLine,
    /// A line the mail client wrapped, rejoined with the next one.
    #[serde(rename = "wrapped-line")]
    WrappedLine,
    /// A header or footer field that did not have the expected shape.
    #[serde(rename = "malformed-field")]
    MalformedField,
}

impl WarningKind {
    /// True for the kinds that mean the report lacks information (as opposed to noise that was
    /// skipped or repaired).
    pub fn is_incompleteness(self) -> bool {
        matches!(
            self,
            WarningKind::NoReport
                | WarningKind::NoFooter
                | WarningKind::MissingAccess
                | WarningKind::TruncatedStack
                | WarningKind::Gap
                | WarningKind::QuotingCut
        )
    }
}

impl Report {
    /// The first interesting frame of each access, in access order (the "who" of the race).
    pub fn interesting_frames(&self) -> Vec<Option<&Frame>> {
        self.accesses
            .iter()
            .map(Access::first_interesting_frame)
            .collect()
    }

    /// The title with the recurrence counter put back, as syzbot shows it (`... (2)`).
    pub fn full_title(&self) -> String {
        match self.title_counter {
            Some(n) => format!("{} ({n})", self.title),
            None => self.title.clone(),
        }
    }
}
