//! capsight's gRPC API for Rust clients: the `capsight.v1` messages and a tonic client
//! per service, generated from the repository's `proto/` at build time, without the
//! server (no storage, analytics or server dependencies).
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use capsight_proto::BearerToken;
//! use capsight_proto::pb::{self, directory_service_client::DirectoryServiceClient};
//! let channel = tonic::transport::Endpoint::from_static("http://127.0.0.1:50051")
//!     .connect()
//!     .await?;
//! let auth = BearerToken::new("cs_…")?;
//! let mut directory = DirectoryServiceClient::with_interceptor(channel, auth);
//! let people = directory
//!     .list_people(pb::ListPeopleRequest::default())
//!     .await?
//!     .into_inner();
//! # Ok(()) }
//! ```

/// The `capsight.v1` package.
pub mod pb {
    tonic::include_proto!("capsight.v1");

    /// Encoded descriptors of every capsight proto file.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("capsight_descriptor");
}

/// A client interceptor adding `authorization: Bearer <token>` to every call.
#[derive(Clone)]
pub struct BearerToken(tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

impl BearerToken {
    /// The interceptor for `token`; fails if the token is not printable ASCII.
    pub fn new(token: &str) -> Result<Self, tonic::metadata::errors::InvalidMetadataValue> {
        format!("Bearer {}", token.trim()).parse().map(Self)
    }
}

impl tonic::service::Interceptor for BearerToken {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}
