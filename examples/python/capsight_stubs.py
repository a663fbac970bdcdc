"""Python stubs for capsight, generated from ../../proto with grpcio-tools on first use.

Nothing generated is committed: the stubs are written once per version of the .proto
files into a cache directory and imported from there.

    from capsight_stubs import load
    pb = load()          # pb.capability_pb2, pb.capability_pb2_grpc, ...
"""

import hashlib
import importlib
import os
import shutil
import sys
import tempfile
import types
from pathlib import Path

PROTO_ROOT = Path(__file__).resolve().parents[2] / "proto"
MODULES = ["types", "directory", "ingest", "access", "capability", "insights", "talent"]


def load(cache: Path | None = None) -> types.SimpleNamespace:
    """Generates (if needed) and imports the capsight.v1 stubs."""
    from grpc_tools import protoc  # grpcio-tools

    files = sorted(PROTO_ROOT.glob("capsight/v1/*.proto"))
    digest = hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()[:16]
    base = cache or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "capsight-python"
    out = base / digest
    if not (out / "capsight" / "v1" / "talent_pb2_grpc.py").exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=out.parent))
        well_known = Path(protoc.__file__).parent / "_proto"
        args = [
            "grpc_tools.protoc",
            f"-I{PROTO_ROOT}",
            f"-I{well_known}",
            f"--python_out={staging}",
            f"--grpc_python_out={staging}",
            *[str(f) for f in files],
        ]
        if protoc.main(args) != 0:
            raise RuntimeError("grpc_tools.protoc failed on " + str(PROTO_ROOT))
        if out.exists():  # another process generated them meanwhile
            shutil.rmtree(staging)
        else:
            staging.rename(out)
    if str(out) not in sys.path:
        sys.path.insert(0, str(out))
    stubs = types.SimpleNamespace()
    for name in MODULES:
        setattr(stubs, f"{name}_pb2", importlib.import_module(f"capsight.v1.{name}_pb2"))
        if name != "types":
            setattr(stubs, f"{name}_pb2_grpc", importlib.import_module(f"capsight.v1.{name}_pb2_grpc"))
    return stubs


def token() -> str:
    """CAPSIGHT_TOKEN, else the admin token file of ./capsight-data (or CAPSIGHT_DATA_DIR)."""
    if os.environ.get("CAPSIGHT_TOKEN"):
        return os.environ["CAPSIGHT_TOKEN"].strip()
    path = Path(os.environ.get("CAPSIGHT_DATA_DIR", "capsight-data")) / "admin.token"
    try:
        return path.read_text().strip()
    except OSError as e:
        sys.exit(f"set CAPSIGHT_TOKEN or run from the server's directory ({e})")
