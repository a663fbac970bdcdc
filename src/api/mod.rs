//! The gRPC surface: generated protobuf code (`pb`), conversions between protobuf and
//! domain types, the mapping of crate errors to `tonic::Status`, and one file per
//! service. Handlers stay short: request → `TryFrom` → `service` → `From` → respond,
//! with the audit event written by `auth` for every call. Rules belong to `service`.

mod access;
pub mod auth;
mod capability;
pub mod codec;
mod convert;
pub mod denials;
mod directory;
mod error;
mod ingest;
mod insights;
mod talent;
mod team_capability;

pub use access::AccessApi;
pub use auth::{AuthLayer, Caller, Class, class_of};
pub use capability::CapabilityApi;
pub use capsight_proto::BearerToken;
pub use directory::DirectoryApi;
pub use ingest::IngestApi;
pub use insights::OrgInsightsApi;
pub use talent::TalentApi;
pub use team_capability::CapabilityRoutes;

/// Code generated from `proto/capsight/v1`.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod pb {
    // The messages, the clients and the descriptor set (`FILE_DESCRIPTOR_SET`).
    pub use capsight_proto::pb::*;
    // The service traits the server implements, over those messages.
    tonic::include_proto!("capsight.v1");
}

pub(crate) use convert::assessment_from_pb;
pub use convert::{role_to_pb, timestamp_to_pb};
