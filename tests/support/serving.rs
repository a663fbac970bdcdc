//! A child `capsight serve`: its command line, and waiting for it to listen.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufRead, Lines};
use tokio::process::Command;

/// Makes `command` (capsight, perhaps behind a wrapper) `serve` `data_dir` on a free
/// loopback port with JSON logs on a piped stderr; killed when dropped.
pub fn serve<'a>(command: &'a mut Command, data_dir: &std::path::Path) -> &'a mut Command {
    command
        .args([
            "--log-format",
            "json",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(data_dir)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
}

/// Reads the child's log until it says it serves; returns the address it listens on.
pub async fn serving_address<R: AsyncBufRead + Unpin>(lines: &mut Lines<R>) -> String {
    serving_or_exit(lines)
        .await
        .unwrap_or_else(|log| panic!("server exited before serving: {log:?}"))
}

/// Reads the child's log until it says it serves (the address it listens on) or its log
/// ends because it exited (the lines it wrote).
pub async fn serving_or_exit<R: AsyncBufRead + Unpin>(
    lines: &mut Lines<R>,
) -> Result<String, Vec<String>> {
    let mut log = Vec::new();
    loop {
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .expect("server started or exited in time")
            .expect("read stderr");
        let Some(line) = line else {
            return Err(log);
        };
        if line.contains("capsight serving") {
            let start = line.find("127.0.0.1:").expect("address in log");
            let end = line[start..].find('"').map_or(line.len(), |e| start + e);
            return Ok(line[start..end].to_owned());
        }
        log.push(line);
    }
}
