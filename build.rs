//! Compiles `proto/` with protox (pure Rust, no system `protoc`) into the tonic service
//! traits the server implements. The messages and clients come from the
//! `capsight-proto` crate (`clients/rust`), which compiles the same files.

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

    tonic_prost_build::configure()
        .build_client(false)
        .build_server(true)
        // The messages are capsight-proto's.
        .extern_path(".capsight.v1", "::capsight_proto::pb")
        // prost's codec, except that an undecodable message is INVALID_ARGUMENT.
        .codec_path("crate::api::codec::ProtoCodec")
        .compile_fds(descriptors)?;
    Ok(())
}
