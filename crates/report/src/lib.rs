//! Reports of a diagnosis: a terminal report for a person ([`text`]) and a versioned JSON document
//! for programs ([`json`]). Both write to any `io::Write` and read only the model and the analysis.
#![deny(missing_docs)]

pub mod json;
pub mod text;

use gostall_analyze::Analysis;
use gostall_model::Snapshot;

/// What to report on.
pub struct Report<'a> {
    /// The snapshot.
    pub snap: &'a Snapshot,
    /// Its analysis.
    pub analysis: &'a Analysis,
}
