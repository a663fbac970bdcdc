#!/usr/bin/env python3
"""GetTeamCapability vs the health check under load from a third-party generator, h2load
(Debian package nghttp2-client), against the release binary's demo server.

A cross-check of `cargo bench --bench grpc_load`'s raw client: h2load is written in C,
sends the same pre-encoded gRPC request over and over and does not decode the answers.
It only sees HTTP statuses, so each request is first sent once through grpcio and must
succeed with a real answer.

    cargo build --release && python3 benches/h2load_ratio.py [--rounds 3] [--secs 5]
"""

import argparse
import os
import re
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc

ROOT = Path(__file__).resolve().parent.parent


def frame(message: bytes) -> bytes:
    """A gRPC length-prefixed message: no compression, big-endian length."""
    return b"\x00" + struct.pack(">I", len(message)) + message


def team_request(team: str, layout: int) -> bytes:
    """GetTeamCapabilityRequest{team_id (1), layout (5)}, encoded by hand."""
    name = team.encode()
    return b"\x0a" + bytes([len(name)]) + name + (b"\x28" + bytes([layout]) if layout else b"")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def h2load(url: str, body: Path, headers: list[str], secs: int, clients: int, streams: int) -> float:
    cmd = ["h2load", "-t", "1", "-c", str(clients), "-m", str(streams), "-D", str(secs),
           "--warm-up-time", "1", "-d", str(body)]
    for h in headers:
        cmd += ["-H", h]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, check=True).stdout
    failed = re.search(r"(\d+) failed", out)
    if failed and int(failed.group(1)) > 0:
        sys.exit(f"h2load saw failures:\n{out}")
    return float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out).group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--secs", type=int, default=5)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--streams", type=int, default=8, help="concurrent streams per client")
    args = parser.parse_args()
    if not shutil.which("h2load"):
        sys.exit("h2load not found: apt-get install nghttp2-client")
    binary = os.environ.get("CAPSIGHT_BIN", str(ROOT / "target" / "release" / "capsight"))
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        server = subprocess.Popen([binary, "serve", "--demo", "--data-dir", str(data),
                                   "--listen", f"127.0.0.1:{port}"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            token_file = data / "admin.token"
            for _ in range(600):
                if token_file.exists() and token_file.read_text().strip():
                    break
                time.sleep(0.1)
            token = token_file.read_text().strip()
            channel = grpc.insecure_channel(f"127.0.0.1:{port}")
            grpc.channel_ready_future(channel).result(timeout=60)
            auth = [("authorization", f"Bearer {token}")]
            base = f"http://127.0.0.1:{port}"
            grpc_headers = ["content-type: application/grpc", "te: trailers"]
            cases = [
                ("health", "/grpc.health.v1.Health/Check", b"", []),
                ("GetTeamCapability CELLS", "/capsight.v1.CapabilityService/GetTeamCapability",
                 team_request("team-00001", 1), [f"authorization: Bearer {token}"]),
                ("GetTeamCapability DENSE", "/capsight.v1.CapabilityService/GetTeamCapability",
                 team_request("team-00001", 2), [f"authorization: Bearer {token}"]),
            ]
            bodies = {}
            for name, path, message, _ in cases:
                # The exact request h2load will send must succeed with a real answer.
                call = channel.unary_unary(path)
                answer = call(message, metadata=auth if "Capability" in path else None, timeout=10)
                if "Capability" in path and len(answer) < 1000:
                    sys.exit(f"{name}: a {len(answer)}-byte answer is not a team view")
                body = Path(tmp) / f"{len(bodies)}.bin"
                body.write_bytes(frame(message))
                bodies[name] = (body, len(answer))
            rates: dict[str, list[float]] = {name: [] for name, *_ in cases}
            ratios: dict[str, list[float]] = {name: [] for name, *_ in cases[1:]}
            for round_ in range(args.rounds):
                line = []
                for name, path, _, headers in cases:
                    rate = h2load(base + path, bodies[name][0], grpc_headers + headers, args.secs,
                                  args.clients, args.streams)
                    rates[name].append(rate)
                    if name != "health":
                        ratios[name].append(rate / rates["health"][-1])
                    line.append(f"{name} {rate:.0f}/s")
                print(f"round {round_}: " + ", ".join(line))
            concurrent = args.clients * args.streams
            print(f"median of {args.rounds} rounds, h2load, {concurrent} concurrent streams:")
            print(f"  health {statistics.median(rates['health']):.0f}/s")
            for name in ratios:
                print(f"  {name} ({bodies[name][1]} bytes): {statistics.median(rates[name]):.0f}/s, "
                      f"ratio {statistics.median(ratios[name]):.2f}")
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
