"""The Open Inference Protocol's gRPC messages, built from inference.proto's descriptor in a
descriptor pool of keel's own.

A private pool, not protobuf's default one: the protocol's messages are named
`inference.ModelInferRequest` and so on in every copy of it (tritonclient's, KServe's), and
two copies in the default pool refuse to load in one process. Building from the descriptor
at import, rather than from generated classes, also leaves the protobuf version free.
"""

from __future__ import annotations

from typing import Any, Final

from google.protobuf import descriptor_pool, message_factory

from keel.serving.grpc.descriptor import FILE

__all__ = ["SERVICE", "message"]

#: The service's full name, as it goes on the wire (`/inference.GRPCInferenceService/...`).
SERVICE: Final = "inference.GRPCInferenceService"

_POOL: Final = descriptor_pool.DescriptorPool()
_POOL.AddSerializedFile(FILE)


def message(name: str) -> Any:
    """The message class `inference.<name>` (nested names with dots)."""
    return message_factory.GetMessageClass(_POOL.FindMessageTypeByName(f"inference.{name}"))
