//! Compiles ../../proto with protox (pure Rust, no protoc): the messages, the tonic
//! clients, and the encoded descriptor set (for reflection and JSON transcoding).

use std::{env, fs, path::PathBuf};

use prost::Message;

const PROTOS: &[&str] = &[
    "capsight/v1/types.proto",
    "capsight/v1/directory.proto",
    "capsight/v1/ingest.proto",
    "capsight/v1/access.proto",
    "capsight/v1/capability.proto",
    "capsight/v1/insights.proto",
    "capsight/v1/talent.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    println!("cargo:rerun-if-changed={}", root.display());
    let descriptors = protox::compile(PROTOS, [&root])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(
        out_dir.join("capsight_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(false)
        // The dense matrix's arrays are shared, not copied, by clones of a decoded answer.
        .bytes(".capsight.v1.DenseMatrix")
        .compile_fds(descriptors)?;
    Ok(())
}
