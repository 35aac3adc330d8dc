//! Layouts for binaries without DWARF: every struct layout, constant and variable type the
//! layout reader asks a binary's DWARF for, recorded once per Go version from a probe program
//! built by that toolchain (`crates/corpus/examples/gen-layout-tables.rs`, `tables/probe/`), and
//! replayed for release binaries built with `-ldflags=-w` or stripped. The DWARF is preferred
//! whenever the binary has it; a test compares the two on every supported version.
//!
//! The tables describe the default build of linux/amd64 (default GOEXPERIMENTs). What depends on
//! an experiment is completed from the binary's own code where it can be (the Green Tea
//! collector's inline mark bits: `HeapBits::with_code`).

use gostall_binfmt::{Dwarf, StructField, StructLayout};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::BTreeMap;

/// Where type information comes from: a binary's DWARF, or a recorded [`Table`].
pub trait TypeInfo {
    /// The layout of a named struct type (typedefs followed).
    fn struct_layout(&self, name: &str) -> Option<StructLayout>;
    /// The value of a named constant (`runtime._PageSize`).
    fn constant(&self, name: &str) -> Option<i64>;
    /// The type name of a global variable (anonymous struct types spelled out).
    fn variable_type(&self, name: &str) -> Option<String>;
}

impl TypeInfo for Dwarf {
    fn struct_layout(&self, name: &str) -> Option<StructLayout> {
        Dwarf::struct_layout(self, name)
    }
    fn constant(&self, name: &str) -> Option<i64> {
        Dwarf::constant(self, name)
    }
    fn variable_type(&self, name: &str) -> Option<String> {
        Dwarf::variable_type(self, name)
    }
}

/// One struct type as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableStruct {
    /// `DW_AT_byte_size`.
    pub size: u64,
    /// Members: (name, offset, size, type name).
    pub fields: Vec<(String, u64, u64, String)>,
}

/// The type information of one Go version, as recorded from a probe binary's DWARF.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Table {
    /// The toolchain that built the probe (`go1.27.3`).
    pub go_version: String,
    /// Struct layouts by type name.
    pub structs: BTreeMap<String, TableStruct>,
    /// Constants by name.
    pub constants: BTreeMap<String, i64>,
    /// Global variables' type names.
    pub variables: BTreeMap<String, String>,
}

impl TypeInfo for Table {
    fn struct_layout(&self, name: &str) -> Option<StructLayout> {
        let s = self.structs.get(name)?;
        Some(StructLayout {
            name: name.to_string(),
            size: s.size,
            fields: s
                .fields
                .iter()
                .map(|(n, offset, size, type_name)| StructField {
                    name: n.clone(),
                    offset: *offset,
                    size: *size,
                    type_name: type_name.clone(),
                })
                .collect(),
        })
    }
    fn constant(&self, name: &str) -> Option<i64> {
        self.constants.get(name).copied()
    }
    fn variable_type(&self, name: &str) -> Option<String> {
        self.variables.get(name).cloned()
    }
}

/// Answers from an inner source and records every answer, to build a [`Table`].
pub struct Recorder<'a> {
    inner: &'a dyn TypeInfo,
    table: RefCell<Table>,
}

impl<'a> Recorder<'a> {
    /// Records what is asked of `inner`.
    pub fn new(inner: &'a dyn TypeInfo, go_version: &str) -> Self {
        Recorder {
            inner,
            table: RefCell::new(Table {
                go_version: go_version.to_string(),
                ..Table::default()
            }),
        }
    }

    /// The table of everything answered so far.
    pub fn into_table(self) -> Table {
        self.table.into_inner()
    }
}

impl TypeInfo for Recorder<'_> {
    fn struct_layout(&self, name: &str) -> Option<StructLayout> {
        let l = self.inner.struct_layout(name)?;
        self.table.borrow_mut().structs.insert(
            name.to_string(),
            TableStruct {
                size: l.size,
                fields: l
                    .fields
                    .iter()
                    .map(|f| (f.name.clone(), f.offset, f.size, f.type_name.clone()))
                    .collect(),
            },
        );
        Some(l)
    }
    fn constant(&self, name: &str) -> Option<i64> {
        let v = self.inner.constant(name)?;
        self.table
            .borrow_mut()
            .constants
            .insert(name.to_string(), v);
        Some(v)
    }
    fn variable_type(&self, name: &str) -> Option<String> {
        let v = self.inner.variable_type(name)?;
        self.table
            .borrow_mut()
            .variables
            .insert(name.to_string(), v.clone());
        Some(v)
    }
}

/// The recorded tables, one per supported minor version (patch releases of a minor version
/// share one: the runtime's layout does not change in patch releases).
const TABLES: &[(u32, &str)] = &[
    (21, include_str!("../tables/go1.21.json")),
    (22, include_str!("../tables/go1.22.json")),
    (23, include_str!("../tables/go1.23.json")),
    (24, include_str!("../tables/go1.24.json")),
    (25, include_str!("../tables/go1.25.json")),
    (26, include_str!("../tables/go1.26.json")),
    (27, include_str!("../tables/go1.27.json")),
];

/// The recorded table of Go 1.`minor`, when there is one.
pub fn table_for(minor: u32) -> Option<Table> {
    let (_, text) = TABLES.iter().find(|(m, _)| *m == minor)?;
    serde_json::from_str(text).ok()
}
