#!/usr/bin/env python3
"""The installed capsight client against a running server: the first team's weakest
skills against what its roles require, and the people who could close the largest gap.

    pip install ./clients/python
    python3 clients/python/examples/team_gaps.py 127.0.0.1:50051 capsight-data/admin.token
"""

import sys

from capsight import connect
from capsight.client import read_token
from capsight.v1 import capability_pb2, directory_pb2


def main() -> int:
    address, token_file = sys.argv[1], sys.argv[2]
    api = connect(address, read_token(token_file))
    teams = api.directory.ListTeams(directory_pb2.ListTeamsRequest(page_size=1000)).teams
    # The first department (a team with a parent), with every team below it.
    team = next(t for t in teams if t.parent_id)
    answer = api.capability.GetTeamCapability(capability_pb2.GetTeamCapabilityRequest(team_id=team.id, include_subteams=True))
    required = [s for s in answer.capability.skills if s.HasField("gap") and s.HasField("max_level")]
    required.sort(key=lambda s: s.gap, reverse=True)
    print(f"{team.name} ({team.id}): {answer.capability.member_count} members, "
          f"{len(required)} required skills with evidence")
    for skill in required[:5]:
        print(f"  {skill.skill_id:<24} required {skill.required_level:.1f}  best {skill.max_level:.1f}  "
              f"gap {skill.gap:+.1f}  below requirement {skill.members_below_requirement}")
    api.close()
    return 0 if required else 1


if __name__ == "__main__":
    sys.exit(main())
