"""What `keel serve` answers with, its limits, and how it logs predictions: `serving:`."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from keel.spec._base import Duration, _Section

__all__ = ["BatchingSpec", "PredictionLogSpec", "ServingSpec"]


class PredictionLogSpec(_Section):
    """How served predictions are logged."""

    enabled: bool = True
    #: `durable`: a request is answered once its rows are fsynced to the local spool, so no
    #: crash loses an acknowledged prediction. `buffered`: answered once its rows are in
    #: memory; a hard crash loses up to `flush_interval` plus one commit of them.
    durability: Literal["buffered", "durable"] = "durable"
    #: How often buffered predictions are committed to the store.
    flush_interval: Duration = timedelta(milliseconds=200)
    #: Predictions held in memory beyond this go to the spool (readiness fails if it cannot
    #: be written).
    max_buffer: int = Field(default=100_000, gt=0)
    #: The local folder of the spool (rows on their way to the store, through outages and
    #: restarts) and of `dead-letter/` (rows the store refused). Relative to the project
    #: folder; `.keel/spool` when unset. Replicas may share it: each has its own files.
    spool_dir: Path | None = None

    @field_validator("flush_interval")
    @classmethod
    def _positive_interval(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("expected a positive duration like 200ms or 1s")
        return value


class BatchingSpec(_Section):
    """Adaptive batching: requests for one version that wait while its model is busy share
    its next call (docs/serving.md, "Adaptive batching")."""

    #: Off: every request is its own model call, on the event loop's thread.
    enabled: bool = True
    #: Most rows one gathered call carries; requests with more rows are called alone.
    max_batch_size: int = Field(default=64, gt=0, le=10_000)
    #: How long a call waits for more requests when fewer than `max_batch_size` rows wait.
    #: 0 (the default): never; a call takes what waits when the model is free.
    max_delay_ms: float = Field(default=0.0, ge=0, le=1_000)


class ServingSpec(_Section):
    """What `keel serve` answers with, and its limits."""

    #: Share of a model's requests answered by the version holding `canary`, while one does.
    canary_share: float = Field(default=0.1, ge=0, le=1)
    #: Aliases whose holders also score every request: logged, never returned.
    shadow: list[str] = Field(default_factory=list)
    #: How often a server looks for alias moves (promotion, rollback) to reload.
    reload_interval: Duration = timedelta(seconds=1)
    #: Largest request body accepted (413 beyond).
    max_request_bytes: int = Field(default=8 * 1024 * 1024, gt=0)
    #: Most rows one request may carry (413 beyond).
    max_rows: int = Field(default=10_000, gt=0)
    #: Values outside the data contract's ranges and domains recorded with the version:
    #: `warn` answers the request, logs and counts them (`keel_input_contract_violations_total`);
    #: `enforce` refuses it (422 naming the input, the row and the rule). `warn` by default:
    #: an inferred contract holds what training saw, and production brings new months and
    #: hotter days that monitoring should report as drift, not refuse as an outage.
    input_contract: Literal["enforce", "warn"] = "warn"
    #: How long a client may take to send a request's body once its headers are in (408
    #: and the connection closed beyond): half-sent bodies would otherwise hold connections.
    body_timeout: Duration = timedelta(seconds=10)
    #: How long SIGTERM may take: drain requests in flight, commit the log, spill the rest
    #: to the spool. Keep it below the orchestrator's grace period (Kubernetes: 30 s; the
    #: generated manifests allow this plus 10 s).
    shutdown_timeout: Duration = timedelta(seconds=20)
    log: PredictionLogSpec = Field(default_factory=PredictionLogSpec)
    batching: BatchingSpec = Field(default_factory=BatchingSpec)

    @field_validator("shutdown_timeout")
    @classmethod
    def _positive_timeout(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("expected a positive duration like 20s")
        return value

    @field_validator("body_timeout")
    @classmethod
    def _positive_body_timeout(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("expected a positive duration like 10s")
        return value
