//! Compiles the gRPC API. madsim-tonic-build emits code for both real tonic and the madsim
//! simulation, so the same generated module serves `meta-server` and `sim/`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let descriptors =
        std::path::PathBuf::from(std::env::var("OUT_DIR")?).join("shardmeta_descriptor.bin");
    tonic_build::configure()
        .btree_map(["."])
        .file_descriptor_set_path(descriptors)
        .compile_protos(&["proto/shardmeta.proto"], &["proto"])?;
    Ok(())
}
