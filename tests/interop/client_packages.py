#!/usr/bin/env python3
"""The client packages run their examples against `serve --demo`:

- Python (clients/python, installed from the repository with pip, its stubs generated at
  build time), over gRPC;
- TypeScript (clients/ts, which the dashboard installs with npm as a `file:` dependency),
  bundled for Node by `npm run example` in dashboard/, over Connect JSON.

    python3 -m pip install ./clients/python
    (cd dashboard && npm ci && npm run example)
    CAPSIGHT_BIN=target/debug/capsight python3 tests/interop/client_packages.py
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from interop_common import Checks, start_server  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def main() -> int:
    check = Checks()
    binary = os.environ.get("CAPSIGHT_BIN", str(ROOT / "target" / "debug" / "capsight"))
    data_dir = tempfile.mkdtemp(prefix="capsight-pyclient-")
    server, address = start_server(binary, data_dir, "--demo", "--demo-people", "300")
    try:
        # Run from elsewhere, so that the installed package is imported, not the sources.
        done = subprocess.run(
            [sys.executable, str(ROOT / "clients" / "python" / "examples" / "team_gaps.py"),
             address, str(Path(data_dir) / "admin.token")],
            capture_output=True, text=True, timeout=120, cwd=tempfile.gettempdir())
        print(done.stdout + done.stderr, end="")
        check(done.returncode == 0 and "members" in done.stdout and "required" in done.stdout,
              "the installed Python package's example reads a department's gaps")
        bundle = ROOT / "dashboard" / "test-results" / "team_gaps.mjs"
        done = subprocess.run(["node", str(bundle), address, str(Path(data_dir) / "admin.token")],
                              capture_output=True, text=True, timeout=120)
        print(done.stdout + done.stderr, end="")
        check(done.returncode == 0 and "members" in done.stdout and "required" in done.stdout,
              "the TypeScript package's example reads a department's gaps over Connect JSON")
        import capsight  # noqa: PLC0415
        check("site-packages" in capsight.__file__ or "dist-packages" in capsight.__file__,
              f"capsight imported from the installed package ({capsight.__file__})")
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(data_dir, ignore_errors=True)
    return 1 if check.failures else 0


if __name__ == "__main__":
    sys.exit(main())
