"""A channel to a capsight server with its bearer token, and a stub per service."""

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import grpc

from .v1 import (
    access_pb2_grpc,
    capability_pb2_grpc,
    directory_pb2_grpc,
    ingest_pb2_grpc,
    insights_pb2_grpc,
    talent_pb2_grpc,
)


class _Bearer(grpc.AuthMetadataPlugin):
    def __init__(self, token: str):
        self._metadata = (("authorization", f"Bearer {token}"),)

    def __call__(self, context, callback):
        callback(self._metadata, None)


class _BearerInterceptor(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                         grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Adds the token to every call of a plaintext channel (call credentials need TLS)."""

    def __init__(self, token: str):
        self._header = ("authorization", f"Bearer {token}")

    def _details(self, details):
        metadata = list(details.metadata or []) + [self._header]
        return details._replace(metadata=metadata)

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation, details, requests):
        return continuation(self._details(details), requests)

    def intercept_stream_stream(self, continuation, details, requests):
        return continuation(self._details(details), requests)


@dataclass
class Api:
    """One stub per capsight service, over one channel."""

    channel: grpc.Channel
    directory: directory_pb2_grpc.DirectoryServiceStub
    ingest: ingest_pb2_grpc.IngestServiceStub
    access: access_pb2_grpc.AccessServiceStub
    capability: capability_pb2_grpc.CapabilityServiceStub
    insights: insights_pb2_grpc.OrgInsightsServiceStub
    talent: talent_pb2_grpc.TalentServiceStub

    def close(self) -> None:
        self.channel.close()


def connect(address: str, token: str, root_certificates: Optional[bytes] = None) -> Api:
    """Connects to `address` (host:port) with `token`; TLS when `root_certificates`
    (PEM of the CA) is given, plaintext otherwise."""
    if root_certificates is not None:
        credentials = grpc.composite_channel_credentials(
            grpc.ssl_channel_credentials(root_certificates),
            grpc.metadata_call_credentials(_Bearer(token)),
        )
        channel = grpc.secure_channel(address, credentials)
    else:
        channel = grpc.intercept_channel(grpc.insecure_channel(address), _BearerInterceptor(token))
    return Api(
        channel=channel,
        directory=directory_pb2_grpc.DirectoryServiceStub(channel),
        ingest=ingest_pb2_grpc.IngestServiceStub(channel),
        access=access_pb2_grpc.AccessServiceStub(channel),
        capability=capability_pb2_grpc.CapabilityServiceStub(channel),
        insights=insights_pb2_grpc.OrgInsightsServiceStub(channel),
        talent=talent_pb2_grpc.TalentServiceStub(channel),
    )


def read_token(path: Path) -> str:
    """The token in a token file (e.g. the server's `admin.token`)."""
    return Path(path).read_text().strip()
