//! Integration tests: each starts the real server on 127.0.0.1:0 with a temporary data
//! directory and talks to it through the generated clients. `TEST_LOG=1` shows logs.

mod access;
mod capability;
mod directory;
mod extremes;
mod faults;
mod helpers;
mod import;
mod ingest;
mod insights;
mod lifecycle;
mod mentoring;
mod overload;
#[path = "../support/raw_codec.rs"]
mod raw_codec;
mod teams;
mod web;
