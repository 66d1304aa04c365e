//! Writes the encoded `FileDescriptorSet` of every Salestrainer contract to a file (default
//! `proto/descriptor.binpb`), for Envoy's `grpc_json_transcoder` and any reflection-less client.

use std::{path::PathBuf, process::ExitCode};

fn main() -> ExitCode {
    let path = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("proto/descriptor.binpb"));
    match std::fs::write(&path, salestrainer_proto::FILE_DESCRIPTOR_SET) {
        Ok(()) => {
            println!(
                "wrote {} bytes to {}",
                salestrainer_proto::FILE_DESCRIPTOR_SET.len(),
                path.display()
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("cannot write {}: {err}", path.display());
            ExitCode::FAILURE
        }
    }
}
