"""The Open Inference Protocol over gRPC (`keel serve --grpc-port`): the same models, routing,
validation, prediction ids, logging and metrics as the HTTP endpoints, on a port of its own.
Needs the `grpc` extra (`pip install 'keelml[grpc]'`)."""

from __future__ import annotations

from keel.serving.grpc.service import InferenceService, grpc_service
from keel.serving.listen import GrpcListen

__all__ = ["GrpcListen", "InferenceService", "grpc_service"]
