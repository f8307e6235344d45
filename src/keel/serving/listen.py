"""Where the gRPC endpoint listens: a plain value, importable without the grpc extra, so that
`keel serve` can check the port first and pickle it to its workers."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["GrpcListen"]


@dataclass(frozen=True)
class GrpcListen:
    """Where the gRPC endpoint listens. `reuse_port` lets several processes bind the same
    port (`keel serve --workers`); one process alone refuses a port already taken. Calls
    still running `grace` seconds after the server starts stopping are cancelled."""

    host: str
    port: int
    reuse_port: bool = False
    grace: float = 5.0

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"
