//! Pure functions over domain data: no I/O, no tonic, sled or tokio. Everything here is
//! deterministic for its inputs, so it is unit- and property-tested directly.

pub mod gaps;
pub mod matrix;
pub mod proficiency;
pub mod trends;
