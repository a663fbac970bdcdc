//! Browsers: the embedded dashboard over HTTP/1.1, CORS preflights for configured
//! origins, and a gRPC-Web call on the same port as gRPC.

use capsight::server::ServerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::TestApp;

/// Sends one raw HTTP/1.1 request and returns the status line, headers and body.
async fn http1(address: &str, request: &[u8]) -> (String, Vec<(String, String)>, Vec<u8>) {
    let host = address.trim_start_matches("http://");
    let mut stream = TcpStream::connect(host).await.expect("connect");
    stream.write_all(request).await.expect("write");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of headers");
    let head = String::from_utf8(raw[..split].to_vec()).expect("utf-8 head");
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default().to_owned();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, raw[split + 4..].to_vec())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").into_bytes()
}

#[tokio::test]
async fn the_dashboard_is_served_with_a_strict_content_security_policy() {
    let app = TestApp::spawn().await;
    let (status, headers, body) = http1(&app.address, &get("/")).await;
    assert!(status.ends_with("200 OK"), "{status}");
    assert_eq!(
        header(&headers, "content-type"),
        Some("text/html; charset=utf-8")
    );
    let csp = header(&headers, "content-security-policy").expect("CSP");
    assert!(csp.contains("script-src 'self'") && csp.contains("connect-src 'self'"));
    let html = String::from_utf8(body).unwrap();
    assert!(
        html.contains(r#"<script type="module" src="app.js">"#),
        "{html}"
    );

    let (status, headers, body) = http1(&app.address, &get("/app.js")).await;
    assert!(status.ends_with("200 OK"), "{status}");
    assert_eq!(
        header(&headers, "content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert!(
        body.len() > 10_000,
        "the bundled dashboard, {} bytes",
        body.len()
    );

    let (status, _, _) = http1(&app.address, &get("/missing.js")).await;
    assert!(status.ends_with("404 Not Found"), "{status}");
    // rpc paths are not pages: a GET there is not answered with the dashboard
    let (status, _, body) = http1(
        &app.address,
        &get("/capsight.v1.DirectoryService/ListTeams"),
    )
    .await;
    assert!(!status.ends_with("200 OK") || body.is_empty(), "{status}");
}

/// A gRPC-Web frame: flag 0, big-endian length, message.
fn grpc_web_frame(message: &[u8]) -> Vec<u8> {
    let mut frame = vec![0u8];
    frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
    frame.extend_from_slice(message);
    frame
}

#[tokio::test]
async fn grpc_web_calls_work_over_http1_with_cors_for_configured_origins() {
    let temp = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::new(temp.path().join("data"));
    config.cors_origins = vec!["https://dash.example.com".into()];
    let app = TestApp::start(config).await;

    // Preflight from the configured origin is allowed, with the headers a client sends.
    let preflight = |origin: &str| {
        format!(
            "OPTIONS /capsight.v1.DirectoryService/ListTeams HTTP/1.1\r\nHost: localhost\r\n\
             Origin: {origin}\r\nAccess-Control-Request-Method: POST\r\n\
             Access-Control-Request-Headers: authorization,content-type,x-grpc-web\r\n\
             Connection: close\r\n\r\n"
        )
        .into_bytes()
    };
    let (status, headers, _) = http1(&app.address, &preflight("https://dash.example.com")).await;
    assert!(status.ends_with("200 OK"), "{status}");
    assert_eq!(
        header(&headers, "access-control-allow-origin"),
        Some("https://dash.example.com")
    );
    let allowed = header(&headers, "access-control-allow-headers").unwrap_or_default();
    assert!(allowed.contains("authorization") && allowed.contains("x-grpc-web"));
    // Another origin gets no permission.
    let (_, headers, _) = http1(&app.address, &preflight("https://evil.example.com")).await;
    assert_eq!(header(&headers, "access-control-allow-origin"), None);

    // A real gRPC-Web call (an empty ListTeamsRequest) with the admin token.
    let call = |token: &str| {
        let body = grpc_web_frame(&[]);
        let mut request = format!(
            "POST /capsight.v1.DirectoryService/ListTeams HTTP/1.1\r\nHost: localhost\r\n\
             Origin: https://dash.example.com\r\nContent-Type: application/grpc-web+proto\r\n\
             X-Grpc-Web: 1\r\nAuthorization: Bearer {token}\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(&body);
        request
    };
    let (status, headers, body) = http1(&app.address, &call(&app.admin_token)).await;
    assert!(status.ends_with("200 OK"), "{status}");
    assert!(
        header(&headers, "content-type")
            .unwrap_or_default()
            .starts_with("application/grpc-web")
    );
    assert_eq!(
        header(&headers, "access-control-allow-origin"),
        Some("https://dash.example.com")
    );
    // The body ends with a trailers frame (flag 0x80) carrying grpc-status: 0.
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("grpc-status:0"), "{text}");

    // Authentication applies to gRPC-Web exactly as to gRPC.
    let (_, headers, body) = http1(&app.address, &call("not-a-token")).await;
    let status = header(&headers, "grpc-status")
        .map(str::to_owned)
        .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
    assert!(
        status.contains("16"),
        "UNAUTHENTICATED expected, got {status}"
    );
}

fn connect_post(path: &str, token: Option<&str>, content_type: &str, body: &[u8]) -> Vec<u8> {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: {content_type}\r\n{auth}\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    request
}

#[tokio::test]
async fn connect_json_calls_reach_every_unary_rpc_with_the_same_auth_and_errors_as_json() {
    use prost::Message;
    let app = TestApp::spawn().await;
    let skills =
        br#"{"skills":[{"id":"rust","name":"Rust","category":"SKILL_CATEGORY_TECHNICAL"}]}"#;
    let path = "/capsight.v1.DirectoryService/UpsertSkills";
    let token = app.admin_token.as_str();
    let (status, headers, body) = http1(
        &app.address,
        &connect_post(path, Some(token), "application/json", skills),
    )
    .await;
    assert!(status.ends_with("200 OK"), "{status}");
    assert_eq!(header(&headers, "content-type"), Some("application/json"));
    let answer: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer["upserted"], 1, "{answer}");
    // Read back through Connect JSON and checked through gRPC.
    let list = "/capsight.v1.DirectoryService/ListSkills";
    let (_, _, body) = http1(
        &app.address,
        &connect_post(list, Some(token), "application/json", b"{}"),
    )
    .await;
    let listed: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(listed["skills"][0]["name"], "Rust", "{listed}");

    // No token: UNAUTHENTICATED as HTTP 401 with a Connect error body.
    let (status, _, body) = http1(
        &app.address,
        &connect_post(list, None, "application/json", b"{}"),
    )
    .await;
    assert!(status.contains(" 401 "), "{status}");
    let error: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(error["code"], "unauthenticated");
    // An invalid request: 400 with the BadRequest detail, decoded.
    let bad = br#"{"skills":[{"id":"","name":"X","category":"SKILL_CATEGORY_TECHNICAL"}]}"#;
    let (status, _, body) = http1(
        &app.address,
        &connect_post(path, Some(token), "application/json", bad),
    )
    .await;
    assert!(status.contains(" 400 "), "{status}");
    let error: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(error["code"], "invalid_argument", "{error}");
    assert_eq!(
        error["details"][0]["type"], "google.rpc.BadRequest",
        "{error}"
    );
    assert_eq!(
        error["details"][0]["debug"]["fieldViolations"][0]["field"], "skills[0].id",
        "{error}"
    );
    // JSON that is not the request message: 400, naming the field.
    let (status, _, body) = http1(
        &app.address,
        &connect_post(path, Some(token), "application/json", br#"{"nope":1}"#),
    )
    .await;
    assert!(status.contains(" 400 "), "{status}");
    assert!(String::from_utf8_lossy(&body).contains("nope"));
    // Binary protobuf works the same way.
    let request = capsight::api::pb::ListSkillsRequest::default().encode_to_vec();
    let (status, headers, body) = http1(
        &app.address,
        &connect_post(list, Some(token), "application/proto", &request),
    )
    .await;
    assert!(status.ends_with("200 OK"), "{status}");
    assert_eq!(header(&headers, "content-type"), Some("application/proto"));
    let listed = capsight::api::pb::ListSkillsResponse::decode(body.as_slice()).unwrap();
    assert_eq!(listed.skills.len(), 1);
    // Streaming rpcs are not Connect unary calls.
    let watch = "/capsight.v1.CapabilityService/WatchTeamCapability";
    let (status, _, _) = http1(
        &app.address,
        &connect_post(watch, Some(token), "application/json", b"{}"),
    )
    .await;
    assert!(status.contains(" 501 "), "{status}");
}
