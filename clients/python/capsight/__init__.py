"""capsight's gRPC API for Python: the generated `capsight.v1` stubs and `connect`.

    from capsight import connect
    from capsight.v1 import capability_pb2

    api = connect("127.0.0.1:50051", token)
    team = api.capability.GetTeamCapability(capability_pb2.GetTeamCapabilityRequest(team_id="team-00001"))
"""

from .client import Api, connect

__all__ = ["Api", "connect"]
