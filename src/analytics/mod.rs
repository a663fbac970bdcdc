//! Pure functions over domain data: no I/O, no tonic, sled or tokio. Everything here is
//! deterministic for its inputs, so it is unit- and property-tested directly.

pub mod archetypes;
pub mod gaps;
pub mod kmeans;
pub mod matrix;
pub mod mentors;
pub mod privacy;
pub mod proficiency;
pub mod teams;
pub mod trends;
