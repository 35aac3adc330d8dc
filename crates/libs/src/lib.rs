//! Library knowledge, in one place, as data: where the standard library and widely used Go
//! libraries park a goroutine that waits for something outside itself — a pooled connection, a
//! peer's answer, a permit — what that wait means, which fields of the library's own structures
//! say how full the resource is, and what to do about it.
//!
//! Each entry is one blocking point, keyed by the function that parks (the innermost library
//! frame on the waiter's stack). Rules read the table to recognise the wait from a stack (live
//! or in a dump); the live reader reads the listed fields through the binary's DWARF types to
//! show the resource's state. A library that is not listed falls back to the generic wait-for
//! graph. Adding one is a new entry (and a scenario in `realworld/` that proves it), not a new
//! rule.
#![deny(missing_docs)]

/// What a goroutine parked at a blocking point waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Wait {
    /// A resource from a pool of fixed capacity (database connections, Redis connections).
    PoolAcquire,
    /// A slot under a per-destination connection limit (`MaxConnsPerHost`).
    ConnSlot,
    /// Permits of a weighted semaphore.
    Permit,
    /// The answer of a network peer to a request already sent.
    PeerResponse,
    /// The database to answer a statement (which may itself wait on a lock in the database).
    DbAnswer,
}

/// How a state field is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// A signed integer of the member's size.
    Int,
    /// The length of a slice member.
    SliceLen,
}

/// What a state field means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Meaning {
    /// The configured capacity (0 or less: unlimited).
    Limit,
    /// Resources open (in use plus idle).
    Open,
    /// Resources idle, ready to hand out.
    Idle,
    /// Capacity held (a semaphore's acquired weight).
    Held,
    /// Waiters the library counts.
    Waiters,
}

/// One field of a library's structure.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// What it means.
    pub meaning: Meaning,
    /// Member path in the type (`freeConn`, `idle.count`).
    pub path: &'static str,
    /// How to read it.
    pub kind: FieldKind,
}

/// The structure behind a blocking point, read live through DWARF.
#[derive(Debug, Clone, Copy)]
pub struct StateSpec {
    /// The type's DWARF name, e.g. `database/sql.DB`.
    pub type_name: &'static str,
    /// Its fields that say how full the resource is.
    pub fields: &'static [Field],
}

/// A place where a library parks a goroutine.
#[derive(Debug, Clone, Copy)]
pub struct BlockingPoint {
    /// The function that parks (exact name as Go prints it).
    pub function: &'static str,
    /// The library, as people name it.
    pub library: &'static str,
    /// What the goroutine waits for.
    pub wait: Wait,
    /// The awaited thing, for sentences: "a database/sql connection".
    pub what: &'static str,
    /// The setting that bounds the resource, as the user writes it (`SetMaxOpenConns`).
    pub limit_setting: &'static str,
    /// The library's structure whose fields show the resource's state, when it has one.
    pub state: Option<StateSpec>,
    /// For bounded resources: the mistake that keeps one from coming back, for sentences
    /// ("Rows or a Tx not closed").
    pub not_returned: &'static str,
    /// What usually empties the resource, and what to do.
    pub advice: &'static str,
}

use FieldKind::{Int, SliceLen};
use Meaning::{Held, Idle, Limit, Open, Waiters};

const fn f(meaning: Meaning, path: &'static str, kind: FieldKind) -> Field {
    Field {
        meaning,
        path,
        kind,
    }
}

/// Every known blocking point.
pub const BLOCKING_POINTS: &[BlockingPoint] = &[
    BlockingPoint {
        function: "database/sql.(*DB).conn",
        library: "database/sql",
        wait: Wait::PoolAcquire,
        what: "a database/sql connection",
        limit_setting: "SetMaxOpenConns (MaxOpenConns)",
        state: Some(StateSpec {
            type_name: "database/sql.DB",
            fields: &[
                f(Limit, "maxOpen", Int),
                f(Open, "numOpen", Int),
                f(Idle, "freeConn", SliceLen),
            ],
        }),
        not_returned: "Rows or a Tx not closed",
        advice: "Every connection of the pool is taken and none comes back: something holds connections without returning them. Close every *sql.Rows (`defer rows.Close()` right after the error check, also on early returns), finish every *sql.Tx with Commit or Rollback (`defer tx.Rollback()` right after Begin), and give queries a context with a deadline so a stuck one cannot hold a connection forever.",
    },
    BlockingPoint {
        function: "github.com/gomodule/redigo/redis.(*Pool).waitVacantConn",
        library: "github.com/gomodule/redigo",
        wait: Wait::PoolAcquire,
        what: "a Redis connection from redigo's Pool",
        limit_setting: "Pool.MaxActive",
        state: Some(StateSpec {
            type_name: "github.com/gomodule/redigo/redis.Pool",
            fields: &[
                f(Limit, "MaxActive", Int),
                f(Open, "active", Int),
                f(Idle, "idle.count", Int),
            ],
        }),
        not_returned: "a connection from Get never Closed",
        advice: "Every connection the pool may open is out and none is returned: a code path takes a connection with Get and never calls Close on it. `defer conn.Close()` right after every pool.Get; use GetContext with a deadline so a waiter gives up instead of hanging.",
    },
    BlockingPoint {
        function: "github.com/jackc/puddle.(*Pool).Acquire",
        library: "github.com/jackc/pgx/v4/pgxpool (puddle)",
        wait: Wait::PoolAcquire,
        what: "a PostgreSQL connection from pgxpool",
        limit_setting: "pgxpool.Config.MaxConns",
        state: Some(StateSpec {
            type_name: "github.com/jackc/puddle.Pool",
            fields: &[
                f(Limit, "maxSize", Int),
                f(Open, "allResources", SliceLen),
                f(Idle, "idleResources", SliceLen),
            ],
        }),
        not_returned: "an acquired connection never Released, or Rows not closed",
        advice: "Every connection of the pool is acquired and none is released: Release every *pgxpool.Conn from Acquire (`defer conn.Release()`), Close every pgx.Rows, and finish every transaction; pass a context with a deadline to Acquire and Query.",
    },
    BlockingPoint {
        function: "golang.org/x/sync/semaphore.(*Weighted).Acquire",
        library: "golang.org/x/sync/semaphore",
        wait: Wait::Permit,
        what: "permits of a semaphore.Weighted",
        limit_setting: "semaphore.NewWeighted(n)",
        state: Some(StateSpec {
            type_name: "golang.org/x/sync/semaphore.Weighted",
            fields: &[
                f(Limit, "size", Int),
                f(Held, "cur", Int),
                f(Waiters, "waiters.len", Int),
            ],
        }),
        not_returned: "an Acquire without its Release",
        advice: "The semaphore's permits are all held and none is given back: a path that acquires returns without Release. Call `defer sem.Release(n)` right after a successful Acquire, and acquire with a context that has a deadline.",
    },
    BlockingPoint {
        function: "net/http.(*Transport).getConn",
        library: "net/http",
        wait: Wait::ConnSlot,
        what: "a connection to the host under the Transport's MaxConnsPerHost",
        limit_setting: "Transport.MaxConnsPerHost",
        state: Some(StateSpec {
            type_name: "net/http.Transport",
            fields: &[f(Limit, "MaxConnsPerHost", Int)],
        }),
        not_returned: "requests that never finish, or a Response.Body not closed",
        advice: "All connections allowed to this host are busy with requests that do not finish, so new requests queue for a slot. Give the http.Client a Timeout (or each request a context deadline) so a hung peer cannot keep the slots, close every Response.Body, and size MaxConnsPerHost for the concurrency you need.",
    },
    BlockingPoint {
        function: "net/http.(*persistConn).roundTrip",
        library: "net/http",
        wait: Wait::PeerResponse,
        what: "an HTTP response through net/http's Transport",
        limit_setting: "http.Client.Timeout or a request context deadline",
        state: None,
        not_returned: "",
        advice: "The peer accepted the request but never answers, and nothing bounds the wait: the http.Client has no Timeout and the request's context no deadline. Set Client.Timeout (or use http.NewRequestWithContext with a deadline), and set Transport.ResponseHeaderTimeout for peers that accept but stall.",
    },
    BlockingPoint {
        function: "google.golang.org/grpc/internal/transport.(*Stream).waitOnHeader",
        library: "google.golang.org/grpc",
        wait: Wait::PeerResponse,
        what: "the response headers of a gRPC call",
        limit_setting: "deadline on the call's context",
        state: None,
        not_returned: "",
        advice: "The server accepted the call but never answers, and the call has no deadline, so the client waits forever. Call with a context that has a deadline (context.WithTimeout), and make the server's handler honour its context.",
    },
    BlockingPoint {
        function: "google.golang.org/grpc/internal/transport.(*recvBufferReader).read",
        library: "google.golang.org/grpc",
        wait: Wait::PeerResponse,
        what: "a message on a gRPC stream",
        limit_setting: "deadline on the call's context",
        state: None,
        not_returned: "",
        advice: "The stream waits for a message that does not come and the call has no deadline. Give the call a context with a deadline, or cancel it when the caller gives up.",
    },
    BlockingPoint {
        function: "github.com/lib/pq.(*conn).recvMessage",
        library: "github.com/lib/pq",
        wait: Wait::DbAnswer,
        what: "PostgreSQL's answer to a statement",
        limit_setting: "the query's context deadline (statement_timeout, lock_timeout)",
        state: None,
        not_returned: "",
        advice: "PostgreSQL does not answer because the statement waits inside the database — typically for a row lock another transaction holds. Keep transactions short and never hold one open across a wait in Go (a channel, an HTTP call); commit or roll back on every path; set lock_timeout or statement_timeout, and pass a context with a deadline to QueryContext/ExecContext.",
    },
    BlockingPoint {
        function: "github.com/jackc/pgconn.(*PgConn).peekMessage",
        library: "github.com/jackc/pgx",
        wait: Wait::DbAnswer,
        what: "PostgreSQL's answer to a statement",
        limit_setting: "the query's context deadline (statement_timeout, lock_timeout)",
        state: None,
        not_returned: "",
        advice: "PostgreSQL does not answer because the statement waits inside the database — typically for a row lock another transaction holds. Keep transactions short, commit or roll back on every path, set lock_timeout or statement_timeout, and pass a context with a deadline.",
    },
];

/// The blocking point whose parking function is `function`.
pub fn blocking_point(function: &str) -> Option<&'static BlockingPoint> {
    BLOCKING_POINTS.iter().find(|b| b.function == function)
}

/// The first blocking point among a stack's functions (innermost first).
pub fn blocking_point_on<'a>(
    functions: impl IntoIterator<Item = &'a str>,
) -> Option<&'static BlockingPoint> {
    functions.into_iter().find_map(blocking_point)
}

/// A goroutine that keeps a database/sql transaction open (its context watcher), as Go prints
/// it: while it lives, the transaction has neither committed nor rolled back.
pub const OPEN_TX_WATCHER: &str = "database/sql.(*Tx).awaitDone";

/// SQLite under cgo: the statement step that sleeps in SQLite's busy handler while another
/// connection holds the database's write lock.
pub fn is_sqlite_step(function: &str) -> bool {
    function.starts_with("github.com/mattn/go-sqlite3._Cfunc__sqlite3_step")
        || function.starts_with("github.com/mattn/go-sqlite3._Cfunc_sqlite3_step")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_is_unique_and_complete() {
        for (i, b) in BLOCKING_POINTS.iter().enumerate() {
            assert!(
                BLOCKING_POINTS[..i]
                    .iter()
                    .all(|o| o.function != b.function),
                "{} twice",
                b.function
            );
            assert!(!b.what.is_empty() && !b.advice.is_empty() && !b.library.is_empty());
            if let Some(s) = b.state {
                assert!(
                    s.fields.iter().any(|f| f.meaning == Meaning::Limit),
                    "{}",
                    b.function
                );
            }
        }
    }

    #[test]
    fn found_from_a_stack() {
        let stack = [
            "runtime.gopark",
            "runtime.selectgo",
            "database/sql.(*DB).conn",
            "database/sql.(*DB).query",
            "main.(*Store).Open",
        ];
        let b = blocking_point_on(stack).expect("found");
        assert_eq!(b.wait, Wait::PoolAcquire);
        assert!(blocking_point_on(["main.f", "runtime.goexit"]).is_none());
        assert!(is_sqlite_step(
            "github.com/mattn/go-sqlite3._Cfunc__sqlite3_step_row_internal"
        ));
    }
}
