//! pprof protobuf profiles (to be implemented).

use crate::IngestError;
use gostall_model::{Snapshot, SourceKind};

/// Largest profile (compressed or decompressed) gostall loads.
pub const MAX_PROFILE_BYTES: u64 = 1 << 30;

/// Does this look like a pprof profile (gzip, or a protobuf that starts like `Profile`)?
pub fn looks_like_profile(head: &[u8]) -> bool {
    head.starts_with(&[0x1f, 0x8b])
}

/// Decodes a profile into the snapshot.
pub fn ingest_profile(
    name: &str,
    _bytes: &[u8],
    _source: u16,
    _snap: &mut Snapshot,
) -> Result<SourceKind, IngestError> {
    Err(IngestError::Unrecognized {
        name: name.into(),
        detail: "pprof not implemented yet".into(),
    })
}
