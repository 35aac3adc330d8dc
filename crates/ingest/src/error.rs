//! Typed errors of the ingest layer; each says what gostall expected and where it failed.

use std::io;

/// Why an input could not be read.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Reading the file or stream failed.
    #[error("cannot read {name}: {source}")]
    Io {
        /// Input name.
        name: String,
        /// Underlying error.
        #[source]
        source: io::Error,
    },
    /// The input is empty.
    #[error("{name} is empty: expected a Go goroutine dump or a pprof profile")]
    Empty {
        /// Input name.
        name: String,
    },
    /// The content is not a format gostall understands.
    #[error("{name} is not a Go goroutine dump or a pprof profile: {detail}. gostall reads SIGQUIT/panic output, runtime.Stack or /debug/pprof/goroutine?debug=1|2 text, and pprof protobuf profiles (goroutine, mutex, block, threadcreate; gzipped or not)")]
    Unrecognized {
        /// Input name.
        name: String,
        /// What was seen instead.
        detail: String,
    },
    /// A pprof profile that is malformed.
    #[error("{name}: malformed pprof profile at byte {offset}: {detail}")]
    BadProfile {
        /// Input name.
        name: String,
        /// Byte offset (in the decompressed profile) where decoding failed, when known.
        offset: u64,
        /// What was wrong.
        detail: String,
    },
    /// An input larger than gostall is willing to hold in memory.
    #[error("{name}: {what} is larger than {limit} bytes; refusing to load it")]
    TooLarge {
        /// Input name.
        name: String,
        /// What was too large.
        what: String,
        /// The limit.
        limit: u64,
    },
}
