//! Compiles `proto/` with protox (pure Rust, no system `protoc`) and generates the tonic
//! services plus the encoded descriptor set used by server reflection.

use std::{env, fs, path::PathBuf};

use prost::Message;

const PROTOS: &[&str] = &[
    "proto/capsight/v1/types.proto",
    "proto/capsight/v1/directory.proto",
    "proto/capsight/v1/ingest.proto",
    "proto/capsight/v1/access.proto",
    "proto/capsight/v1/capability.proto",
    "proto/capsight/v1/insights.proto",
    "proto/capsight/v1/talent.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // tonic-prost-build 0.14 does not emit rerun-if-changed for the protos itself.
    println!("cargo:rerun-if-changed=proto");
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }

    let descriptors = protox::compile(PROTOS, ["proto"])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(
        out_dir.join("capsight_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // The dense matrix's arrays are shared, not copied, by clones of a cached view.
        .bytes(".capsight.v1.DenseMatrix")
        // prost's codec, except that an undecodable message is INVALID_ARGUMENT.
        .codec_path("crate::api::codec::ProtoCodec")
        .compile_fds(descriptors)?;
    Ok(())
}
