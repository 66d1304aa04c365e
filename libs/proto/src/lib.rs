//! Generated code for Salestrainer's gRPC contracts (`proto/`), plus the encoded descriptor
//! set that reflection serves and Envoy's JSON transcoder loads.

/// Every contract, its imports included, as an encoded `google.protobuf.FileDescriptorSet`.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/salestrainer_descriptor.bin"));

#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod google {
    pub mod api {
        tonic::include_proto!("google.api");
    }
}

#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod salestrainer {
    pub mod config {
        pub mod v1 {
            tonic::include_proto!("salestrainer.config.v1");
        }
    }
    pub mod call {
        pub mod v1 {
            tonic::include_proto!("salestrainer.call.v1");
        }
    }
    pub mod grading {
        pub mod v1 {
            tonic::include_proto!("salestrainer.grading.v1");
        }
    }
    pub mod analytics {
        pub mod v1 {
            tonic::include_proto!("salestrainer.analytics.v1");
        }
    }
    pub mod events {
        pub mod v1 {
            tonic::include_proto!("salestrainer.events.v1");
        }
    }
}

pub use salestrainer::{
    analytics::v1 as analytics, call::v1 as call, config::v1 as config, events::v1 as events,
    grading::v1 as grading,
};
