//! Exact struct and union layouts read from the DWARF of a built kernel (`vmlinux` or a `.o`).
//!
//! The principal type is [`DwarfLayouts`]: it owns the (decompressed) DWARF sections of one ELF
//! file, builds a name → DIE map once on first use (a single pass over `.debug_info`; vmlinux
//! DWARF is hundreds of megabytes, so nothing else is parsed up front) and lays out one record per
//! query into the same [`TypeLayout`] the source engine produces, so the tool's output keeps one
//! schema. The compiler already decided every offset, so nothing here is computed or guessed:
//! a member whose location cannot be read is reported as unknown.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use gimli::{
    AttributeValue, DebugInfoOffset, DwarfSections, EndianSlice, RunTimeEndian, UnitOffset,
};
use object::{Object, ObjectSection};

use super::{FieldLayout, TypeLayout};

type Reader<'a> = EndianSlice<'a, RunTimeEndian>;
type Dwarf<'a> = gimli::Dwarf<Reader<'a>>;
type Unit<'a> = gimli::Unit<Reader<'a>>;

/// Nesting limit for anonymous members, named inner records and type chains (typedef → const → …).
const MAX_DEPTH: usize = 12;

/// Why DWARF could not be read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DwarfError {
    #[error("cannot read {path}: {message}")]
    Io { path: String, message: String },
    #[error("{path} is not a readable ELF file: {message}")]
    Object { path: String, message: String },
    #[error("{path} has no DWARF debug information (.debug_info is empty)")]
    NoDebugInfo { path: String },
    #[error("malformed DWARF in {path}: {message}")]
    Malformed { path: String, message: String },
    #[error(
        "{name} has definitions of different sizes in different compilation units of {path}; which one applies is not known from the name alone"
    )]
    Ambiguous { path: String, name: String },
}

/// Where a record's DIE lives.
#[derive(Debug, Clone, Copy)]
struct Loc {
    unit: DebugInfoOffset<usize>,
    die: UnitOffset<usize>,
    /// `DW_AT_byte_size` of the first definition (records only).
    size: Option<u64>,
    /// A later definition of the same name had another size: two different types (e.g.
    /// file-local structs of one name in two `.c` files), so the name alone cannot pick one.
    ambiguous: bool,
}

struct Loaded {
    sections: DwarfSections<Vec<u8>>,
    endian: RunTimeEndian,
    /// `struct`/`union` tag names and typedef names → the first defining DIE.
    structs: HashMap<String, Loc>,
    unions: HashMap<String, Loc>,
    typedefs: HashMap<String, Loc>,
}

/// A record's layout as the compiler made it.
#[derive(Debug, Clone)]
pub struct DwarfLayout {
    pub layout: TypeLayout,
    /// `DW_AT_decl_line` of the record (0 when absent).
    pub line: u32,
}

/// The DWARF of one ELF file, loaded and indexed on first use and shared between tool calls.
pub struct DwarfLayouts {
    path: PathBuf,
    loaded: OnceLock<Result<Loaded, DwarfError>>,
}

impl std::fmt::Debug for DwarfLayouts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DwarfLayouts")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl DwarfLayouts {
    /// Remembers the file; nothing is read until the first query.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            loaded: OnceLock::new(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn loaded(&self) -> Result<&Loaded, DwarfError> {
        self.loaded
            .get_or_init(|| load(&self.path))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The layout of `struct name` / `union name` (or of the record a typedef `name` names).
    /// `Ok(None)` when the file has no definition of it.
    pub fn layout(&self, name: &str) -> Result<Option<DwarfLayout>, DwarfError> {
        let loaded = self.loaded()?;
        let (kind, bare) = match name.trim().split_once(' ') {
            Some(("struct", rest)) => (Some(false), rest.trim()),
            Some(("union", rest)) => (Some(true), rest.trim()),
            _ => (None, name.trim()),
        };
        let loc = match kind {
            Some(false) => loaded.structs.get(bare),
            Some(true) => loaded.unions.get(bare),
            None => loaded
                .structs
                .get(bare)
                .or_else(|| loaded.unions.get(bare))
                .or_else(|| loaded.typedefs.get(bare)),
        };
        let Some(loc) = loc.copied() else {
            return Ok(None);
        };
        if loc.ambiguous {
            return Err(DwarfError::Ambiguous {
                path: self.path.display().to_string(),
                name: name.trim().to_string(),
            });
        }
        let dwarf = loaded
            .sections
            .borrow(|s| EndianSlice::new(s.as_slice(), loaded.endian));
        let malformed = |e: gimli::Error| DwarfError::Malformed {
            path: self.path.display().to_string(),
            message: e.to_string(),
        };
        let header = dwarf.unit_header(loc.unit).map_err(malformed)?;
        let unit = dwarf.unit(header).map_err(malformed)?;
        let walker = Walker {
            dwarf: &dwarf,
            unit: &unit,
        };
        let Some(die) = walker.strip(loc.die, 0) else {
            return Ok(None);
        };
        let entry = unit.entry(die).map_err(malformed)?;
        if !matches!(
            entry.tag(),
            gimli::DW_TAG_structure_type | gimli::DW_TAG_union_type
        ) {
            return Ok(None);
        }
        let line = entry
            .attr_value(gimli::DW_AT_decl_line)
            .and_then(|v| v.udata_value())
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(0);
        let layout = walker.record(die, 0, 0).map_err(malformed)?;
        Ok(Some(DwarfLayout { layout, line }))
    }
}

fn load(path: &Path) -> Result<Loaded, DwarfError> {
    let shown = path.display().to_string();
    let data = std::fs::read(path).map_err(|e| DwarfError::Io {
        path: shown.clone(),
        message: e.to_string(),
    })?;
    let file = object::File::parse(data.as_slice()).map_err(|e| DwarfError::Object {
        path: shown.clone(),
        message: e.to_string(),
    })?;
    let endian = if file.is_little_endian() {
        RunTimeEndian::Little
    } else {
        RunTimeEndian::Big
    };
    // In a relocatable `.o` (RELA on x86_64) every offset into another debug section (names in
    // `.debug_str`, `.debug_line_str`, the line program) is 0 in the section bytes and lives in
    // the relocation's addend, so those are applied; member offsets are plain constants.
    let relocatable = file.kind() == object::ObjectKind::Relocatable;
    let mut info_bytes = 0;
    let sections = DwarfSections::load(|id| -> Result<Vec<u8>, DwarfError> {
        use gimli::SectionId as S;
        // Variable locations, ranges and macros are most of a vmlinux's DWARF; layouts need none.
        let wanted = !matches!(
            id,
            S::DebugLoc
                | S::DebugLocLists
                | S::DebugRanges
                | S::DebugRngLists
                | S::DebugAranges
                | S::DebugMacinfo
                | S::DebugMacro
                | S::DebugNames
        );
        let bytes = match file.section_by_name(id.name()).filter(|_| wanted) {
            Some(section) => {
                let mut bytes = section
                    .uncompressed_data()
                    .map_err(|e| DwarfError::Object {
                        path: shown.clone(),
                        message: format!("section {}: {e}", id.name()),
                    })?
                    .into_owned();
                if relocatable {
                    relocate(&file, &section, &mut bytes, endian);
                }
                bytes
            }
            None => Vec::new(),
        };
        if id == gimli::SectionId::DebugInfo {
            info_bytes = bytes.len();
        }
        Ok(bytes)
    })?;
    drop(data);
    if info_bytes == 0 {
        return Err(DwarfError::NoDebugInfo { path: shown });
    }
    let mut loaded = Loaded {
        sections,
        endian,
        structs: HashMap::new(),
        unions: HashMap::new(),
        typedefs: HashMap::new(),
    };
    index(&mut loaded).map_err(|e| DwarfError::Malformed {
        path: shown,
        message: e.to_string(),
    })?;
    tracing::debug!(
        path = %path.display(),
        structs = loaded.structs.len(),
        unions = loaded.unions.len(),
        "DWARF names indexed"
    );
    Ok(loaded)
}

/// Applies a `.o` section's absolute 32/64-bit relocations (the only kinds debug sections use);
/// any other kind is left alone, which at worst garbles a name or an address, never an offset.
fn relocate(
    file: &object::File<'_>,
    section: &object::Section<'_, '_>,
    bytes: &mut [u8],
    endian: RunTimeEndian,
) {
    use object::ObjectSymbol;
    for (offset, reloc) in section.relocations() {
        if reloc.kind() != object::RelocationKind::Absolute {
            continue;
        }
        let target = match reloc.target() {
            object::RelocationTarget::Symbol(index) => match file.symbol_by_index(index) {
                Ok(symbol) => symbol.address(),
                Err(_) => continue,
            },
            object::RelocationTarget::Section(index) => match file.section_by_index(index) {
                Ok(sec) => sec.address(),
                Err(_) => continue,
            },
            _ => continue,
        };
        let Ok(start) = usize::try_from(offset) else {
            continue;
        };
        let width = usize::from(reloc.size() / 8);
        let Some(slot) = start
            .checked_add(width)
            .and_then(|end| bytes.get_mut(start..end))
        else {
            continue;
        };
        let implicit = if reloc.has_implicit_addend() {
            read_uint(slot, endian)
        } else {
            0
        };
        let value = target
            .wrapping_add(reloc.addend() as u64)
            .wrapping_add(implicit);
        write_uint(slot, value, endian);
    }
}

fn read_uint(slot: &[u8], endian: RunTimeEndian) -> u64 {
    let mut v = 0u64;
    let ordered: Vec<u8> = match endian {
        RunTimeEndian::Little => slot.iter().rev().copied().collect(),
        RunTimeEndian::Big => slot.to_vec(),
    };
    for b in ordered {
        v = (v << 8) | u64::from(b);
    }
    v
}

/// Writes the low bytes of `value` into `slot` (4 or 8 bytes; other widths are not used by DWARF).
fn write_uint(slot: &mut [u8], value: u64, endian: RunTimeEndian) {
    let n = slot.len();
    for (i, b) in slot.iter_mut().enumerate() {
        let shift = match endian {
            RunTimeEndian::Little => 8 * i,
            RunTimeEndian::Big => 8 * (n - 1 - i),
        };
        *b = if shift < 64 {
            (value >> shift) as u8
        } else {
            0
        };
    }
}

/// One pass over every unit, recording each named defining record and typedef.
fn index(loaded: &mut Loaded) -> gimli::Result<()> {
    let dwarf = loaded
        .sections
        .borrow(|s| EndianSlice::new(s.as_slice(), loaded.endian));
    let mut structs: HashMap<String, Loc> = HashMap::new();
    let mut unions = HashMap::new();
    let mut typedefs = HashMap::new();
    let mut headers = dwarf.units();
    while let Some(header) = headers.next()? {
        let Some(unit_off) = UnitOffset(0usize).to_debug_info_offset(&header) else {
            continue;
        };
        let abbrevs = dwarf.abbreviations(&header)?;
        let mut cursor = header.entries(&abbrevs);
        while let Some(entry) = cursor.next_dfs()? {
            let map = match entry.tag() {
                gimli::DW_TAG_structure_type => &mut structs,
                gimli::DW_TAG_union_type => &mut unions,
                gimli::DW_TAG_typedef => &mut typedefs,
                _ => continue,
            };
            if entry.attr_value(gimli::DW_AT_declaration).is_some() {
                continue;
            }
            let Some(name) = entry.attr_value(gimli::DW_AT_name) else {
                continue;
            };
            let Ok(name) = dwarf.attr_string_header(&header, name) else {
                continue;
            };
            let name = name.to_string_lossy().into_owned();
            let size = entry
                .attr_value(gimli::DW_AT_byte_size)
                .and_then(|v| v.udata_value());
            map.entry(name)
                .and_modify(|loc| loc.ambiguous |= loc.size != size)
                .or_insert(Loc {
                    unit: unit_off,
                    die: entry.offset(),
                    size,
                    ambiguous: false,
                });
        }
    }
    loaded.structs = structs;
    loaded.unions = unions;
    loaded.typedefs = typedefs;
    Ok(())
}

trait AttrStringHeader<'a> {
    fn attr_string_header(
        &self,
        header: &gimli::UnitHeader<Reader<'a>>,
        value: AttributeValue<Reader<'a>>,
    ) -> gimli::Result<Reader<'a>>;
}

impl<'a> AttrStringHeader<'a> for Dwarf<'a> {
    /// Names without building a full `Unit` (the index pass would otherwise parse every line
    /// program). Forms needing `DW_AT_str_offsets_base` fall back to the unit.
    fn attr_string_header(
        &self,
        header: &gimli::UnitHeader<Reader<'a>>,
        value: AttributeValue<Reader<'a>>,
    ) -> gimli::Result<Reader<'a>> {
        match value {
            AttributeValue::String(s) => Ok(s),
            AttributeValue::DebugStrRef(off) => self.debug_str.get_str(off),
            AttributeValue::DebugLineStrRef(off) => self.debug_line_str.get_str(off),
            other => {
                let unit = self.unit(*header)?;
                self.attr_string(&unit, other)
            }
        }
    }
}

struct Walker<'d, 'a> {
    dwarf: &'d Dwarf<'a>,
    unit: &'d Unit<'a>,
}

/// A member's type, described for the declaration text and the layout.
struct TypeDesc {
    /// e.g. "struct list_head", "unsigned int *", "void (*)()".
    base: String,
    /// Array dimensions, e.g. "[16]".
    suffix: String,
    size: Option<u64>,
    /// Set when the type (through typedefs and qualifiers, not arrays or pointers) is a record.
    record: Option<(UnitOffset<usize>, bool)>,
}

impl<'a> Walker<'_, 'a> {
    fn name(&self, entry: &gimli::DebuggingInformationEntry<Reader<'a>>) -> Option<String> {
        let value = entry.attr_value(gimli::DW_AT_name)?;
        let s = self.dwarf.attr_string(self.unit, value).ok()?;
        Some(s.to_string_lossy().into_owned())
    }

    fn type_ref(
        &self,
        entry: &gimli::DebuggingInformationEntry<Reader<'a>>,
    ) -> Option<UnitOffset<usize>> {
        match entry.attr_value(gimli::DW_AT_type)? {
            AttributeValue::UnitRef(off) => Some(off),
            _ => None,
        }
    }

    /// Follows typedefs and qualifiers to the underlying type.
    fn strip(&self, mut off: UnitOffset<usize>, depth: usize) -> Option<UnitOffset<usize>> {
        for _ in depth..MAX_DEPTH * 2 {
            let entry = self.unit.entry(off).ok()?;
            match entry.tag() {
                gimli::DW_TAG_typedef
                | gimli::DW_TAG_const_type
                | gimli::DW_TAG_volatile_type
                | gimli::DW_TAG_restrict_type
                | gimli::DW_TAG_atomic_type => off = self.type_ref(&entry)?,
                _ => return Some(off),
            }
        }
        None
    }

    fn describe(&self, off: Option<UnitOffset<usize>>, depth: usize) -> TypeDesc {
        let unknown = |base: &str| TypeDesc {
            base: base.to_string(),
            suffix: String::new(),
            size: None,
            record: None,
        };
        let Some(off) = off else {
            return TypeDesc {
                base: "void".into(),
                suffix: String::new(),
                size: None,
                record: None,
            };
        };
        if depth > MAX_DEPTH * 2 {
            return unknown("?");
        }
        let Ok(entry) = self.unit.entry(off) else {
            return unknown("?");
        };
        let byte_size = entry
            .attr_value(gimli::DW_AT_byte_size)
            .and_then(|v| v.udata_value());
        let name = self.name(&entry);
        match entry.tag() {
            gimli::DW_TAG_base_type => TypeDesc {
                base: name.unwrap_or_else(|| "?".into()),
                suffix: String::new(),
                size: byte_size,
                record: None,
            },
            tag @ (gimli::DW_TAG_structure_type
            | gimli::DW_TAG_union_type
            | gimli::DW_TAG_enumeration_type) => {
                let kw = match tag {
                    gimli::DW_TAG_structure_type => "struct",
                    gimli::DW_TAG_union_type => "union",
                    _ => "enum",
                };
                let is_record = tag != gimli::DW_TAG_enumeration_type;
                TypeDesc {
                    base: match name {
                        Some(n) => format!("{kw} {n}"),
                        None => format!("{kw} {{...}}"),
                    },
                    suffix: String::new(),
                    size: byte_size,
                    record: is_record.then_some((off, tag == gimli::DW_TAG_union_type)),
                }
            }
            gimli::DW_TAG_pointer_type => {
                let target = self.type_ref(&entry);
                let pointee = match target.and_then(|t| self.unit.entry(t).ok()) {
                    Some(e) if e.tag() == gimli::DW_TAG_subroutine_type => "void (*)()".to_string(),
                    _ => format!("{} *", self.describe(target, depth + 1).base),
                };
                TypeDesc {
                    base: pointee,
                    suffix: String::new(),
                    size: byte_size.or(Some(8)),
                    record: None,
                }
            }
            gimli::DW_TAG_typedef => {
                let inner = self.describe(self.type_ref(&entry), depth + 1);
                TypeDesc {
                    base: name.unwrap_or(inner.base),
                    ..inner
                }
            }
            tag @ (gimli::DW_TAG_const_type
            | gimli::DW_TAG_volatile_type
            | gimli::DW_TAG_restrict_type
            | gimli::DW_TAG_atomic_type) => {
                let inner = self.describe(self.type_ref(&entry), depth + 1);
                let q = match tag {
                    gimli::DW_TAG_const_type => "const",
                    gimli::DW_TAG_volatile_type => "volatile",
                    gimli::DW_TAG_restrict_type => "restrict",
                    _ => "_Atomic",
                };
                TypeDesc {
                    base: format!("{q} {}", inner.base),
                    ..inner
                }
            }
            gimli::DW_TAG_array_type => {
                let elem = self.describe(self.type_ref(&entry), depth + 1);
                let (suffix, count) = self.dims(off);
                TypeDesc {
                    base: elem.base,
                    size: byte_size.or_else(|| elem.size.zip(count).map(|(s, n)| s * n)),
                    suffix: format!("{suffix}{}", elem.suffix),
                    record: None,
                }
            }
            _ => TypeDesc {
                base: name.unwrap_or_else(|| "?".into()),
                suffix: String::new(),
                size: byte_size,
                record: None,
            },
        }
    }

    /// An array's dimensions as text and its total element count (flexible arrays count 0).
    fn dims(&self, off: UnitOffset<usize>) -> (String, Option<u64>) {
        let mut text = String::new();
        let mut total: Option<u64> = Some(1);
        let Ok(mut tree) = self.unit.entries_tree(Some(off)) else {
            return (text, None);
        };
        let Ok(root) = tree.root() else {
            return (text, None);
        };
        let mut children = root.children();
        while let Ok(Some(child)) = children.next() {
            let e = child.entry();
            if e.tag() != gimli::DW_TAG_subrange_type {
                continue;
            }
            let count = e
                .attr_value(gimli::DW_AT_count)
                .and_then(|v| v.udata_value())
                .or_else(|| {
                    e.attr_value(gimli::DW_AT_upper_bound)
                        .and_then(|v| v.udata_value())
                        .map(|u| u + 1)
                });
            match count {
                Some(n) => text.push_str(&format!("[{n}]")),
                None => text.push_str("[]"),
            }
            total = total.and_then(|t| t.checked_mul(count.unwrap_or(0)));
        }
        (text, total)
    }

    /// Lays out the record at `off`; offsets are relative to the outermost record (`base_bits`).
    fn record(
        &self,
        off: UnitOffset<usize>,
        base_bits: u64,
        depth: usize,
    ) -> gimli::Result<TypeLayout> {
        let entry = self.unit.entry(off)?;
        let is_union = entry.tag() == gimli::DW_TAG_union_type;
        let size = entry
            .attr_value(gimli::DW_AT_byte_size)
            .and_then(|v| v.udata_value());
        let align = entry
            .attr_value(gimli::DW_AT_alignment)
            .and_then(|v| v.udata_value());
        let file = self.decl_file(&entry).unwrap_or_default();
        let mut fields = Vec::new();
        let mut tree = self.unit.entries_tree(Some(off))?;
        let root = tree.root()?;
        let mut children = root.children();
        while let Some(child) = children.next()? {
            let m = child.entry();
            if m.tag() != gimli::DW_TAG_member {
                continue;
            }
            fields.push(self.member(m, base_bits, is_union, depth));
        }
        Ok(TypeLayout {
            is_union,
            size,
            align,
            fields,
            file,
            unknown: None,
        })
    }

    fn member(
        &self,
        m: &gimli::DebuggingInformationEntry<Reader<'a>>,
        base_bits: u64,
        in_union: bool,
        depth: usize,
    ) -> FieldLayout {
        let name = self.name(m).unwrap_or_default();
        let ty = self.describe(self.type_ref(m), 0);
        let line = m
            .attr_value(gimli::DW_AT_decl_line)
            .and_then(|v| v.udata_value())
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(0);
        let bit_size = m
            .attr_value(gimli::DW_AT_bit_size)
            .and_then(|v| v.udata_value());
        let byte_loc = match m.attr_value(gimli::DW_AT_data_member_location) {
            None if in_union => Some(0),
            None => None,
            Some(v) => v
                .udata_value()
                .or_else(|| v.exprloc_value().and_then(|e| plus_uconst(e.0.slice()))),
        };
        let mut unknown = None;
        let offset = if let Some(bits) = m
            .attr_value(gimli::DW_AT_data_bit_offset)
            .and_then(|v| v.udata_value())
        {
            Some(bits)
        } else if let (Some(old), Some(width)) = (
            m.attr_value(gimli::DW_AT_bit_offset)
                .and_then(|v| v.udata_value()),
            bit_size,
        ) {
            // DWARF 2/3 counts from the most significant bit of the storage unit; on a
            // little-endian target the LSB-relative position is unit_bits - old - width.
            let unit_bytes = m
                .attr_value(gimli::DW_AT_byte_size)
                .and_then(|v| v.udata_value())
                .or(ty.size);
            match (unit_bytes, byte_loc) {
                (Some(u), Some(b)) => (u * 8)
                    .checked_sub(old + width)
                    .map(|within| b * 8 + within),
                _ => None,
            }
        } else {
            byte_loc.map(|b| b * 8)
        };
        if offset.is_none() {
            unknown = Some("DWARF gives no readable member location".to_string());
        }
        let offset_bits = offset.map(|o| o + base_bits);
        let size_bits = bit_size.or(ty.size.map(|s| s * 8));
        let mut type_text = if name.is_empty() {
            format!("{}{}", ty.base, ty.suffix)
        } else if ty.base.ends_with('*') {
            format!("{}{name}{}", ty.base, ty.suffix)
        } else {
            format!("{} {name}{}", ty.base, ty.suffix)
        };
        if let Some(w) = bit_size {
            type_text.push_str(&format!(":{w}"));
        }
        let mut children = Vec::new();
        let mut inner = None;
        let record = ty.suffix.is_empty().then_some(ty.record).flatten();
        if let (Some((rec, _)), Some(off)) = (record, offset_bits)
            && depth < MAX_DEPTH
        {
            if name.is_empty() {
                if let Ok(layout) = self.record(rec, off, depth + 1) {
                    children = layout.fields;
                }
            } else if let Ok(layout) = self.record(rec, 0, depth + 1) {
                inner = Some(Arc::new(layout));
            }
        }
        FieldLayout {
            name,
            type_text,
            line,
            offset_bits,
            size_bits,
            bitfield: bit_size.is_some(),
            condition: None,
            presence_unknown: false,
            unknown,
            children,
            inner,
        }
    }

    fn decl_file(&self, entry: &gimli::DebuggingInformationEntry<Reader<'a>>) -> Option<String> {
        let index = entry.attr_value(gimli::DW_AT_decl_file)?.udata_value()?;
        let program = self.unit.line_program.as_ref()?;
        let header = program.header();
        let file = header.file(index)?;
        let name = self.dwarf.attr_string(self.unit, file.path_name()).ok()?;
        let name = name.to_string_lossy().into_owned();
        let dir = file
            .directory(header)
            .and_then(|d| self.dwarf.attr_string(self.unit, d).ok())
            .map(|d| d.to_string_lossy().into_owned());
        let full = match dir {
            Some(d) if !name.starts_with('/') && !d.is_empty() => format!("{d}/{name}"),
            _ => name,
        };
        Some(full.trim_start_matches("./").to_string())
    }
}

/// `DW_OP_plus_uconst N`: the location form DWARF 2/3 producers use for member offsets.
fn plus_uconst(expr: &[u8]) -> Option<u64> {
    let (&op, rest) = expr.split_first()?;
    if op != gimli::DW_OP_plus_uconst.0 {
        return None;
    }
    let mut value = 0u64;
    for (i, &b) in rest.iter().enumerate().take(10) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}
