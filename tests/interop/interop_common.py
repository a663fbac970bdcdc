"""Helpers shared by the interop scripts: a check counter and a child `capsight serve`."""

import json
import subprocess


class Checks:
    """Prints each check as ok/FAIL and counts the failures."""

    def __init__(self) -> None:
        self.failures = 0

    def __call__(self, condition: bool, what: str) -> None:
        print(("ok   " if condition else "FAIL ") + what, flush=True)
        if not condition:
            self.failures += 1


def start_server(binary: str, data_dir: str, *extra: str) -> tuple[subprocess.Popen, str]:
    """Starts `capsight serve` on a free port; returns the process and its address."""
    server = subprocess.Popen(
        [binary, "--log-format", "json", "serve", "--data-dir", data_dir,
         "--listen", "127.0.0.1:0", *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in server.stderr:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("fields", {}).get("message") == "capsight serving":
            return server, event["fields"]["address"]
    raise RuntimeError(f"server exited with {server.wait()} before serving")
