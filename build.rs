//! Compiles the gRPC API. madsim-tonic-build emits code for both real tonic and the madsim
//! simulation, so the same generated module serves `meta-server` and `sim/`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tonic_build::configure()
        .btree_map(["."])
        .compile_protos(&["proto/shardmeta.proto"], &["proto"])?;
    Ok(())
}
