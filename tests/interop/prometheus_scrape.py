#!/usr/bin/env python3
"""A real Prometheus server scrapes capsight's /metrics, run by .ci/clients.

Starts `capsight serve --demo` and Debian's `prometheus` (both on 127.0.0.1, in temporary
directories, stopped at the end), makes calls, and asks Prometheus through its HTTP API
for capsight's rpc counter and latency histogram: both must be scraped and move with the
calls.

    CAPSIGHT_BIN=target/debug/capsight python3 tests/interop/prometheus_scrape.py
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import grpc

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples" / "python"))
from capsight_stubs import load  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from interop_common import Checks, start_server  # noqa: E402

check = Checks()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def query(prometheus: str, expr: str) -> float:
    url = f"http://{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as response:
        body = json.load(response)
    results = body["data"]["result"]
    return sum(float(r["value"][1]) for r in results) if results else 0.0


def wait_for(prometheus: str, expr: str, at_least: float, seconds: float = 30.0) -> float:
    deadline = time.time() + seconds
    value = 0.0
    while time.time() < deadline:
        try:
            value = query(prometheus, expr)
        except OSError:
            value = 0.0
        if value >= at_least:
            return value
        time.sleep(0.5)
    return value


def main() -> int:
    binary = os.environ.get("CAPSIGHT_BIN", str(ROOT / "target" / "debug" / "capsight"))
    with tempfile.TemporaryDirectory() as temp:
        data_dir = os.path.join(temp, "data")
        server, address = start_server(binary, data_dir, "--demo")
        prometheus_port = free_port()
        config = os.path.join(temp, "prometheus.yml")
        with open(config, "w") as f:
            f.write(
                "global:\n  scrape_interval: 1s\n"
                "scrape_configs:\n"
                "  - job_name: capsight\n"
                f"    static_configs:\n      - targets: ['{address}']\n"
            )
        prometheus = subprocess.Popen(
            ["prometheus", f"--config.file={config}",
             f"--storage.tsdb.path={os.path.join(temp, 'tsdb')}",
             f"--web.listen-address=127.0.0.1:{prometheus_port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        api = f"127.0.0.1:{prometheus_port}"
        try:
            token = Path(data_dir, "admin.token").read_text().strip()
            pb = load()
            channel = grpc.insecure_channel(address)
            directory = pb.directory_pb2_grpc.DirectoryServiceStub(channel)
            metadata = (("authorization", f"Bearer {token}"),)
            calls = 'capsight_rpc_requests_total{rpc="/capsight.v1.DirectoryService/ListSkills",code="OK"}'
            check(wait_for(api, "up{job='capsight'}", 1) == 1, "Prometheus scrapes capsight (up == 1)")
            for _ in range(5):
                directory.ListSkills(pb.directory_pb2.ListSkillsRequest(), metadata=metadata)
            first = wait_for(api, calls, 5)
            check(first >= 5, f"rpc counter scraped after 5 calls ({first})")
            for _ in range(7):
                directory.ListSkills(pb.directory_pb2.ListSkillsRequest(), metadata=metadata)
            second = wait_for(api, calls, first + 7)
            check(second >= first + 7, f"rpc counter moved by the next 7 calls ({first} -> {second})")
            buckets = wait_for(
                api,
                'capsight_rpc_duration_seconds_bucket{rpc="/capsight.v1.DirectoryService/ListSkills",le="+Inf"}',
                second,
            )
            check(buckets >= second, f"latency histogram counts every call ({buckets})")
            p99 = query(
                api,
                'histogram_quantile(0.99, sum by (le) (capsight_rpc_duration_seconds_bucket'
                '{rpc="/capsight.v1.DirectoryService/ListSkills"}))',
            )
            check(0 < p99 <= 30, f"p99 latency computable from the histogram ({p99:.4f} s)")
        finally:
            prometheus.terminate()
            server.terminate()
            prometheus.wait(timeout=30)
            server.wait(timeout=30)
    print("all checks passed" if check.failures == 0 else f"{check.failures} check(s) failed")
    return 1 if check.failures else 0


if __name__ == "__main__":
    sys.exit(main())
