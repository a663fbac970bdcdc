//! Policy, free of transport: which caller may name which team or person, and (as the
//! layer grows) privacy suppression, limits and defaults, and which work is a job. Takes
//! domain values and the engine, returns domain results; never sees tonic or prost.
//! See `ARCHITECTURE.md` for what is here and what still lives in `api`.

pub mod scope;
