#!/usr/bin/env python3
"""Interoperability with third-party clients, run by .ci/interop.

- Google's gRPC implementation (Python grpcio, stubs generated from proto/ with
  grpcio-tools) writes a small organisation, ingests a batch and reads the team's
  capability; the levels are checked against hand-computed values.
- curl calls a unary rpc with JSON (the Connect protocol), with and without a token
  (HTTP 401) and with an invalid request (HTTP 400 with the BadRequest details).
- grpcurl lists the services through reflection, calls GetTeamCapability with JSON and
  must agree with grpcio; the standard health check answers SERVING (grpcio-health-checking
  and grpcurl).

    CAPSIGHT_BIN=target/debug/capsight python3 tests/interop/grpcio_and_grpcurl.py
"""

import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples" / "python"))
from capsight_stubs import load  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from interop_common import Checks, start_server  # noqa: E402

check = Checks()


def grpcurl(*args: str) -> str:
    done = subprocess.run(["grpcurl", "-plaintext", *args], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"grpcurl {' '.join(args)}: {done.stderr}")
    return done.stdout


def main() -> int:
    binary = os.environ.get("CAPSIGHT_BIN", str(ROOT / "target" / "debug" / "capsight"))
    pb = load(Path(tempfile.mkdtemp(prefix="capsight-stubs-")))
    data_dir = tempfile.mkdtemp(prefix="capsight-interop-")
    server, address = start_server(binary, data_dir)
    try:
        token = (Path(data_dir) / "admin.token").read_text().strip()
        auth = [("authorization", f"Bearer {token}")]
        channel = grpc.insecure_channel(address)
        directory = pb.directory_pb2_grpc.DirectoryServiceStub(channel)
        ingest = pb.ingest_pb2_grpc.IngestServiceStub(channel)
        capability = pb.capability_pb2_grpc.CapabilityServiceStub(channel)
        t, d, i, c = pb.types_pb2, pb.directory_pb2, pb.ingest_pb2, pb.capability_pb2

        # A team of two with one role requiring Rust at 3.
        directory.UpsertSkills(
            d.UpsertSkillsRequest(skills=[t.Skill(id="rust", name="Rust", category=t.SKILL_CATEGORY_TECHNICAL)]),
            metadata=auth,
        )
        directory.UpsertRoles(
            d.UpsertRolesRequest(
                roles=[t.Role(id="dev", name="Developer", requirements=[t.RoleRequirement(skill_id="rust", required_level=3, weight=1)])]
            ),
            metadata=auth,
        )
        directory.UpsertTeams(d.UpsertTeamsRequest(teams=[t.Team(id="core", name="Core")]), metadata=auth)
        directory.UpsertPeople(
            d.UpsertPeopleRequest(
                people=[
                    t.Person(id="ana", display_name="Ana", team_id="core", role_id="dev", availability=1.0),
                    t.Person(id="bo", display_name="Bo", team_id="core", role_id="dev", availability=1.0),
                ]
            ),
            metadata=auth,
        )
        now = Timestamp()
        now.GetCurrentTime()
        batch = i.RecordAssessmentsRequest(
            assessments=[
                t.Assessment(id="a1", person_id="ana", skill_id="rust", score=4.0,
                             source=t.ASSESSMENT_SOURCE_OBJECTIVE_TEST, assessed_at=now),
                t.Assessment(id="a2", person_id="bo", skill_id="rust", score=2.0,
                             source=t.ASSESSMENT_SOURCE_OBJECTIVE_TEST, assessed_at=now),
            ]
        )
        ack = ingest.RecordAssessments(batch, metadata=auth)
        check(ack.accepted == 2, f"grpcio ingests a batch (accepted {ack.accepted})")
        again = ingest.RecordAssessments(batch, metadata=auth)
        check(again.duplicates == 2 and again.accepted == 0, "the same batch again is recognised as duplicates")

        view = capability.GetTeamCapability(c.GetTeamCapabilityRequest(team_id="core"), metadata=auth).capability
        levels = {m.person_id: m.cells[0].level for m in view.members}
        # One objective test each, assessed now: the level is the score.
        check(abs(levels["ana"] - 4.0) < 1e-6 and abs(levels["bo"] - 2.0) < 1e-6, f"levels read back {levels}")
        rust = view.skills[0]
        check(rust.proficient_count == 1 and abs(rust.mean_level - 3.0) < 1e-6, "team summary: mean 3.0, one proficient")
        check(abs(rust.required_level - 3.0) < 1e-6 and abs(rust.gap) < 1e-6, "requirement 3.0 met by the best member")
        # Readiness: each member's share of the role met (min(level / required, 1)), averaged:
        # Ana 4/3 -> 1, Bo 2/3 -> (1 + 2/3) / 2.
        check(abs(view.readiness - 5 / 6) < 1e-6, f"readiness 83.3% ({view.readiness})")

        # The dense layout: the same levels as raw little-endian float32, read with the
        # standard library (numpy.frombuffer(b, "<f4") does the same).
        dense = capability.GetTeamCapability(
            c.GetTeamCapabilityRequest(team_id="core", layout=c.MATRIX_LAYOUT_DENSE), metadata=auth
        ).capability
        # One skill column, both members known: bits 0 and 1, one entry each.
        raw = dense.dense.levels_f32le
        check(dense.dense.known_bitmap == b"\x03", f"both cells known ({dense.dense.known_bitmap!r})")
        dense_levels = dict(zip((m.person_id for m in dense.members), struct.unpack(f"<{len(raw) // 4}f", raw)))
        check(dense_levels == {p: struct.unpack("<f", struct.pack("<f", v))[0] for p, v in levels.items()}
              and all(not m.cells for m in dense.members),
              f"the dense layout carries the same levels as float32 ({dense_levels})")

        try:
            capability.GetTeamCapability(c.GetTeamCapabilityRequest(team_id="core"))
            check(False, "a call without a token is refused")
        except grpc.RpcError as e:
            check(e.code() == grpc.StatusCode.UNAUTHENTICATED, f"a call without a token is UNAUTHENTICATED ({e.code().name})")
        bad = ingest.RecordAssessments(
            i.RecordAssessmentsRequest(assessments=[t.Assessment(id="a3", person_id="ana", skill_id="rust", score=9.0,
                                                                  source=t.ASSESSMENT_SOURCE_PEER, assessed_at=now)]),
            metadata=auth,
        )
        check(bad.accepted == 0 and len(bad.rejections) == 1 and bad.rejections[0].field == "score",
              f"a score of 9 is rejected, naming the field ({[r.field + ': ' + r.reason for r in bad.rejections]})")

        health = health_pb2_grpc.HealthStub(channel)
        for service in ["", "capsight.v1.CapabilityService"]:
            status = health.Check(health_pb2.HealthCheckRequest(service=service)).status
            check(status == health_pb2.HealthCheckResponse.SERVING, f"grpcio health check {service or '(server)'} SERVING")

        # grpcurl: reflection, JSON call, health.
        services = grpcurl(address, "list").split()
        expected = {
            "capsight.v1.AccessService", "capsight.v1.CapabilityService", "capsight.v1.DirectoryService",
            "capsight.v1.IngestService", "capsight.v1.OrgInsightsService", "capsight.v1.TalentService",
            "grpc.health.v1.Health",
        }
        check(expected <= set(services), f"grpcurl lists the services through reflection ({len(services)})")
        answer = json.loads(grpcurl("-H", f"authorization: Bearer {token}", "-d", '{"team_id": "core"}',
                                    address, "capsight.v1.CapabilityService/GetTeamCapability"))
        by_json = {m["personId"]: m["cells"][0]["level"] for m in answer["capability"]["members"]}
        check(by_json == levels, f"grpcurl's JSON answer agrees with grpcio ({by_json})")
        status = json.loads(grpcurl(address, "grpc.health.v1.Health/Check"))
        check(status.get("status") == "SERVING", f"grpcurl health check: {status}")
        # Error details resolve through reflection: grpcurl decodes the BadRequest.
        refused = subprocess.run(
            ["grpcurl", "-plaintext", "-H", f"authorization: Bearer {token}",
             "-d", '{"people": [{"id": "", "display_name": "x"}]}',
             address, "capsight.v1.DirectoryService/UpsertPeople"],
            capture_output=True, text=True, timeout=60)
        output = refused.stdout + refused.stderr
        check(refused.returncode != 0 and "google.rpc.BadRequest" in output
              and '"field":"people[0].id"' in output,
              "grpcurl decodes the BadRequest details of an invalid upsert")
        # JSON over HTTP (the Connect protocol) with curl, on the same port.
        def curl(path: str, body: str, token: str | None) -> tuple[int, dict]:
            headers = ["-H", "content-type: application/json"]
            if token:
                headers += ["-H", f"authorization: Bearer {token}"]
            done = subprocess.run(
                ["curl", "-s", "-w", "\n%{http_code}", *headers, "-d", body, f"http://{address}/{path}"],
                capture_output=True, text=True, timeout=60)
            text, _, code = done.stdout.rpartition("\n")
            return int(code), json.loads(text)
        code, answer = curl("capsight.v1.CapabilityService/GetTeamCapability", '{"teamId": "core"}', token)
        by_curl = {m["personId"]: m["cells"][0]["level"] for m in answer["capability"]["members"]}
        check(code == 200 and by_curl == levels, f"curl's JSON answer agrees with grpcio ({code}, {by_curl})")
        code, answer = curl("capsight.v1.CapabilityService/GetTeamCapability", '{"teamId": "core"}', None)
        check(code == 401 and answer.get("code") == "unauthenticated",
              f"curl without a token: HTTP 401 unauthenticated ({code}, {answer})")
        code, answer = curl("capsight.v1.DirectoryService/UpsertPeople",
                            '{"people": [{"id": "", "displayName": "x"}]}', token)
        details = answer.get("details") or [{}]
        check(code == 400 and details[0].get("type") == "google.rpc.BadRequest"
              and details[0]["debug"]["fieldViolations"][0]["field"] == "people[0].id",
              f"curl gets the BadRequest details as JSON ({code}, {answer})")
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(data_dir, ignore_errors=True)
    if check.failures:
        print(f"{check.failures} check(s) failed", file=sys.stderr)
        return 1
    print("interop: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
