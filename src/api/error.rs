//! The single mapping from crate errors to gRPC statuses. Callers' mistakes carry
//! field-level `BadRequest` details; internal failures are logged in full and returned
//! as a generic INTERNAL so that nothing about the store leaks to clients.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::error::Error;

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        match error {
            Error::InvalidArgument(violations) => {
                let mut details = ErrorDetails::new();
                for violation in &violations {
                    details.add_bad_request_violation(&violation.field, &violation.reason);
                }
                let message = match violations.as_slice() {
                    [only] => format!("{}: {}", only.field, only.reason),
                    many => format!("{} invalid fields; see details", many.len()),
                };
                Status::with_error_details(Code::InvalidArgument, message, details)
            }
            Error::NotFound { kind } => Status::not_found(format!("{kind} not found")),
            Error::AlreadyExists { kind } => {
                Status::already_exists(format!("{kind} already exists"))
            }
            Error::FailedPrecondition(reason) => Status::failed_precondition(reason),
            Error::Unauthenticated(reason) => Status::unauthenticated(reason),
            Error::PermissionDenied => Status::permission_denied("permission denied"),
            Error::ShuttingDown
            | Error::StoragePoisoned
            | Error::Cancelled
            | Error::Unavailable(_) => Status::unavailable(error.to_string()),
            Error::Overloaded { retry_after } => {
                let details = ErrorDetails::with_retry_info(Some(retry_after));
                Status::with_error_details(Code::ResourceExhausted, error.to_string(), details)
            }
            Error::DeadlineExceeded => Status::deadline_exceeded(error.to_string()),
            Error::Config(_)
            | Error::DataDir(_)
            | Error::Storage(_)
            | Error::Corrupt { .. }
            | Error::Internal(_) => {
                tracing::error!(error = %error, "internal error");
                Status::internal("internal error")
            }
        }
    }
}
