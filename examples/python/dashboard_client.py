#!/usr/bin/env python3
"""A manager's morning view of one team from Python, the same tour as
examples/manager_dashboard.rs: a heatmap of members x skills, gaps against the team's
roles, skills that hang on one person, and who in the organisation could help.

    pip install grpcio grpcio-tools
    cargo run --release -- serve --demo                 # in one terminal
    python3 examples/python/dashboard_client.py team-00007

Server: CAPSIGHT_SERVER (default 127.0.0.1:50051). Token: CAPSIGHT_TOKEN, or
./capsight-data/admin.token. A manager token sees only its own teams.
"""

import os
import sys

import grpc

from capsight_stubs import load, token


def cell(c) -> str:
    if not c.HasField("level"):
        return "   · "
    # A trailing '?' marks a level resting on little or conflicting evidence.
    return f"{c.level:>4.1f}" + ("?" if c.confidence < 0.3 else " ")


def main() -> int:
    team = sys.argv[1] if len(sys.argv) > 1 else "team-00001"
    pb = load()
    channel = grpc.insecure_channel(os.environ.get("CAPSIGHT_SERVER", "127.0.0.1:50051"))
    auth = [("authorization", f"Bearer {token()}")]
    capability = pb.capability_pb2_grpc.CapabilityServiceStub(channel)
    try:
        view = capability.GetTeamCapability(
            pb.capability_pb2.GetTeamCapabilityRequest(team_id=team), metadata=auth
        ).capability
    except grpc.RpcError as e:
        print(f"{e.code().name}: {e.details()}", file=sys.stderr)
        return 1

    print(f"Team {team}: {len(view.members)} members, readiness {view.readiness * 100:.0f}%\n")
    print(" " * 22 + "".join(f"{s[:5]:>6}" for s in view.skill_ids))
    for m in view.members:
        row = "".join(" " + cell(c) for c in m.cells)
        print(f"{m.display_name[:20]:<22}{row}   {m.readiness * 100:.0f}%")

    print("\nGaps against the team's roles (required level not reached by anyone):")
    gaps = sorted((s for s in view.skills if s.HasField("gap") and s.gap > 0), key=lambda s: -s.gap)
    if not gaps:
        print("  none: for every required skill someone reaches the required level")
    for s in gaps:
        best = f"{s.max_level:.1f}" if s.HasField("max_level") else "—"
        print(
            f"  {s.skill_id:<24} needs {s.required_level:.1f}, best {best:>4}, "
            f"{s.members_below_requirement} of the team below it"
        )

    risks = capability.GetSkillRisks(pb.capability_pb2.GetSkillRisksRequest(team_id=team), metadata=auth).risks
    print("\nSkill risks (bus factor ≤ 1 for a required skill):")
    if not risks:
        print("  none")
    names = {m.person_id: m.display_name for m in view.members}
    for r in risks:
        if r.kind == pb.capability_pb2.RISK_KIND_SINGLE_POINT:
            print(f"  {r.skill_id:<24} hangs on {names.get(r.holder_id, r.holder_id)}")
        else:
            print(f"  {r.skill_id:<24} nobody is proficient; {r.people_requiring} role(s) need it")

    # Help for the biggest gaps, or else for the skills that hang on one person.
    needs = [s.skill_id for s in gaps[:3]] or [r.skill_id for r in risks[:3]]
    print("\nWho could help (level ≥ 4, can teach):")
    for skill_id in needs:
        found = capability.FindExperts(
            pb.capability_pb2.FindExpertsRequest(
                requirements=[pb.capability_pb2.SkillRequirement(skill_id=skill_id, min_level=4.0)],
                min_confidence=0.3,
                page_size=3,
            ),
            metadata=auth,
        )
        listed = ", ".join(f"{e.display_name} ({e.team_id}, {e.levels[0]:.1f})" for e in found.experts)
        print(f"  {skill_id:<24} {len(found.experts)} of {found.total} found: {listed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
