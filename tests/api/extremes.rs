//! Extreme values in every field of every request: requests are built from the service
//! descriptors, each numeric field taking the edges of its type (0, ±max, NaN, ±inf,
//! times at and past the limits of `Timestamp`), each string a real id, an empty one
//! or a long one, each repeated field up to a few items. Whatever they hold, each call
//! answers within seconds with a status the gRPC spec gives for it — never INTERNAL,
//! UNKNOWN or a dropped connection — and the server stays up and correct.

use std::collections::HashMap;
use std::time::Duration;

use capsight::api::pb;
use prost::Message;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FieldDescriptorProto, FileDescriptorSet};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tonic::Code;

use crate::helpers::{TestApp, assessment, seed_org};
use crate::overload::raw_call;

/// Message types by full name (".capsight.v1.Person").
fn message_types(set: &FileDescriptorSet) -> HashMap<String, DescriptorProto> {
    fn add(out: &mut HashMap<String, DescriptorProto>, scope: &str, message: &DescriptorProto) {
        let name = format!("{scope}.{}", message.name());
        for nested in &message.nested_type {
            add(out, &name, nested);
        }
        out.insert(name, message.clone());
    }
    let mut out = HashMap::new();
    for file in &set.file {
        for message in &file.message_type {
            add(&mut out, &format!(".{}", file.package()), message);
        }
    }
    out
}

/// Draws request messages with extreme values.
struct Extremes<'a> {
    types: &'a HashMap<String, DescriptorProto>,
    rng: StdRng,
    /// Chance that a number takes an extreme value rather than an ordinary one (drawn
    /// per request, so that some requests carry one extreme among ordinary values).
    wild: f64,
}

const EDGE_INTS: [u64; 10] = [
    0,
    1,
    2,
    u64::MAX,              // -1 as int64
    i64::MAX as u64,       // largest int64
    i64::MIN as u64,       // smallest int64
    u32::MAX as u64,       // largest uint32
    i32::MAX as u64,       // largest int32
    0xFFFF_FFFF_8000_0000, // smallest int32
    1_000_001,
];

/// Seconds at, inside and past the range of `google.protobuf.Timestamp`.
const EDGE_SECONDS: [i64; 8] = [
    -62_135_596_800, // 0001-01-01
    -62_135_596_801,
    253_402_300_799, // 9999-12-31T23:59:59
    253_402_300_800,
    i64::MIN,
    i64::MAX,
    0,
    1_700_000_000,
];

const EDGE_DOUBLES: [f64; 10] = [
    0.0,
    -0.0,
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::MAX,
    f64::MIN,
    f64::MIN_POSITIVE,
    3.0,
    1e-300,
];

const IDS: [&str; 8] = [
    "alice", "bob", "rust", "sql", "dev", "backend", "eng", "org",
];

fn key(out: &mut Vec<u8>, number: i32, wire: u32) {
    prost::encoding::encode_key(
        u32::try_from(number).unwrap(),
        match wire {
            0 => prost::encoding::WireType::Varint,
            1 => prost::encoding::WireType::SixtyFourBit,
            2 => prost::encoding::WireType::LengthDelimited,
            _ => prost::encoding::WireType::ThirtyTwoBit,
        },
        out,
    );
}

fn bytes_field(out: &mut Vec<u8>, number: i32, bytes: &[u8]) {
    key(out, number, 2);
    prost::encoding::encode_varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

impl Extremes<'_> {
    fn request(&mut self, type_name: &str) -> Vec<u8> {
        self.wild = [0.05, 0.2, 1.0][self.rng.random_range(0..3)];
        self.message(type_name, 0)
    }

    fn int(&mut self) -> u64 {
        if self.rng.random_bool(self.wild) {
            EDGE_INTS[self.rng.random_range(0..EDGE_INTS.len())]
        } else {
            self.rng.random_range(1..=5)
        }
    }

    fn double(&mut self) -> f64 {
        if self.rng.random_bool(self.wild) {
            EDGE_DOUBLES[self.rng.random_range(0..EDGE_DOUBLES.len())]
        } else {
            f64::from(self.rng.random_range(0..=10u8)) / 2.0
        }
    }

    fn message(&mut self, type_name: &str, depth: u32) -> Vec<u8> {
        let mut out = Vec::new();
        if type_name == ".google.protobuf.Timestamp" || type_name == ".google.protobuf.Duration" {
            let (seconds, nanos) = if self.rng.random_bool(self.wild) {
                (
                    EDGE_SECONDS[self.rng.random_range(0..EDGE_SECONDS.len())],
                    [0i64, 999_999_999, 1_000_000_000, -1, i64::from(i32::MIN)]
                        [self.rng.random_range(0..5)],
                )
            } else {
                (1_700_000_000 + self.rng.random_range(0..40_000_000), 0)
            };
            key(&mut out, 1, 0);
            prost::encoding::encode_varint(seconds as u64, &mut out);
            key(&mut out, 2, 0);
            prost::encoding::encode_varint(nanos as u64, &mut out);
            return out;
        }
        let Some(descriptor) = self.types.get(type_name) else {
            return out;
        };
        let fields = descriptor.field.clone();
        for field in &fields {
            // Each field is left out now and then, so that defaults are tried too.
            if self.rng.random_bool(0.15) {
                continue;
            }
            let count = if field.label() == Label::Repeated {
                let least = u32::from(!self.rng.random_bool(self.wild));
                self.rng.random_range(least..=3)
            } else {
                1
            };
            for _ in 0..count {
                self.field(&mut out, field, depth);
            }
        }
        out
    }

    fn field(&mut self, out: &mut Vec<u8>, field: &FieldDescriptorProto, depth: u32) {
        let number = field.number();
        match field.r#type() {
            Type::Double => {
                key(out, number, 1);
                let value = self.double();
                out.extend_from_slice(&value.to_le_bytes());
            }
            Type::Float => {
                key(out, number, 5);
                let value = self.double() as f32;
                out.extend_from_slice(&value.to_le_bytes());
            }
            Type::Int64
            | Type::Uint64
            | Type::Int32
            | Type::Uint32
            | Type::Enum
            | Type::Bool
            | Type::Sint32
            | Type::Sint64 => {
                key(out, number, 0);
                let value = self.int();
                let value = if field.r#type() == Type::Bool {
                    value & 1
                } else {
                    value
                };
                prost::encoding::encode_varint(value, out);
            }
            Type::Fixed64 | Type::Sfixed64 => {
                key(out, number, 1);
                let value = self.int();
                out.extend_from_slice(&value.to_le_bytes());
            }
            Type::Fixed32 | Type::Sfixed32 => {
                key(out, number, 5);
                let value = self.int() as u32;
                out.extend_from_slice(&value.to_le_bytes());
            }
            Type::String if field.name() == "page_token" && !self.rng.random_bool(self.wild) => {}
            Type::String | Type::Bytes => {
                let text = match self.rng.random_range(0..(10.0 / self.wild) as u32) {
                    0 => "x".repeat(5_000),
                    1 => "\u{202e}é\u{0}".to_owned(),
                    2 => String::new(),
                    _ => IDS[self.rng.random_range(0..IDS.len())].to_owned(),
                };
                bytes_field(out, number, text.as_bytes());
            }
            Type::Message if depth < 4 => {
                let inner = self.message(field.type_name(), depth + 1);
                bytes_field(out, number, &inner);
            }
            Type::Message | Type::Group => {}
        }
    }
}

/// Codes a request may be answered with, whatever it holds.
fn acceptable(code: Code) -> bool {
    !matches!(
        code,
        Code::Internal | Code::Unknown | Code::DataLoss | Code::Unavailable | Code::Cancelled
    )
}

#[tokio::test]
async fn extreme_values_in_every_field_of_every_request_never_break_an_answer() {
    let mut app = TestApp::spawn().await;
    seed_org(&mut app).await;
    app.ingest
        .record_assessments(pb::RecordAssessmentsRequest {
            assessments: vec![
                assessment("a1", "alice", "rust", 4.0),
                assessment("a2", "bob", "sql", 2.0),
            ],
        })
        .await
        .unwrap();
    let set = FileDescriptorSet::decode(pb::FILE_DESCRIPTOR_SET).expect("descriptors");
    let types = message_types(&set);
    let seed: u64 = std::env::var("EXTREMES_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed);
    let mut extremes = Extremes {
        types: &types,
        rng: StdRng::seed_from_u64(seed),
        wild: 1.0,
    };
    let mut failures = Vec::new();
    let mut calls = 0;
    let mut codes: HashMap<Code, usize> = HashMap::new();
    for file in &set.file {
        for service in &file.service {
            for method in &service.method {
                // Streams are exercised by their own tests; a unary client cannot drive them.
                if method.client_streaming() || method.server_streaming() {
                    continue;
                }
                let path = format!("/{}.{}/{}", file.package(), service.name(), method.name());
                let path: &'static str = Box::leak(path.into_boxed_str());
                for _ in 0..64 {
                    let body = extremes.request(method.input_type());
                    calls += 1;
                    let answer = tokio::time::timeout(
                        Duration::from_secs(10),
                        raw_call(&app, path, body.clone()),
                    )
                    .await;
                    if let Ok(status) = &answer {
                        *codes.entry(status.code()).or_default() += 1;
                        if std::env::var_os("EXTREMES_SHOW").is_some() {
                            eprintln!("{path} {:?} {}", status.code(), status.message());
                        }
                    }
                    match answer {
                        Err(_) => {
                            failures.push(format!("{path}: no answer in 10 s to {body:02x?}"))
                        }
                        Ok(status) if !acceptable(status.code()) => failures.push(format!(
                            "{path}: {:?} {} to {body:02x?}",
                            status.code(),
                            status.message()
                        )),
                        Ok(_) => {}
                    }
                }
            }
        }
    }
    eprintln!("{calls} calls: {codes:?}");
    assert!(calls > 1_500, "{calls} calls");
    // Most requests are refused, but enough get through to reach the engine.
    assert!(
        codes.get(&Code::Ok).copied().unwrap_or(0) > calls / 10,
        "{codes:?}"
    );
    assert!(failures.is_empty(), "seed {seed}:\n{}", failures.join("\n"));
    // No request value made the server allocate beyond the bound its limits give (the
    // whole test process, other tests included, stays under 2 GiB at its peak).
    let peak_kib = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        });
    if let Some(peak_kib) = peak_kib {
        assert!(peak_kib < 2 * 1024 * 1024, "peak RSS {peak_kib} KiB");
    }
    // Still up and answering.
    let people = app
        .directory
        .list_people(pb::ListPeopleRequest::default())
        .await
        .expect("the server still answers");
    assert!(!people.into_inner().people.is_empty());
}
