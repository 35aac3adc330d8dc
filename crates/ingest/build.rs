//! Generates the pprof `Profile` message types from the vendored `proto/profile.proto`.
//!
//! protox parses the schema in pure Rust, so building gostall needs no `protoc` binary.

fn main() {
    println!("cargo:rerun-if-changed=proto/profile.proto");
    let fds = match protox::compile(["proto/profile.proto"], ["proto"]) {
        Ok(fds) => fds,
        Err(e) => panic!("cannot parse proto/profile.proto: {e}"),
    };
    if let Err(e) = prost_build::Config::new().compile_fds(fds) {
        panic!("cannot generate Rust code for proto/profile.proto: {e}");
    }
}
