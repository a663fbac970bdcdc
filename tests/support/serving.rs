//! Waiting for a child `capsight serve` (started with `--log-format json`) to listen.

use std::time::Duration;

use tokio::io::{AsyncBufRead, Lines};

/// Reads the child's log until it says it serves; returns the address it listens on.
pub async fn serving_address<R: AsyncBufRead + Unpin>(lines: &mut Lines<R>) -> String {
    loop {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("server started in time")
            .expect("read stderr")
            .expect("server exited before serving (store did not open cleanly?)");
        if line.contains("capsight serving") {
            let start = line.find("127.0.0.1:").expect("address in log");
            let end = line[start..].find('"').map_or(line.len(), |e| start + e);
            return line[start..end].to_owned();
        }
    }
}
