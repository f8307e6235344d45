"""Adaptive batching: concurrent requests for one served version share one model call.

A model's cost per call is mostly fixed (building the DataFrame, the feature code, the
estimator's own set-up): a call on eight rows costs little more than a call on one. So while
the model is busy, the requests that arrive for a version wait in its queue; when the call
ends, the next call takes every waiting request at once, up to `max_batch_size` rows, and each
request gets back its own rows. An idle model takes a request at once: one client alone waits
for nothing (Triton's dynamic batcher with no queue delay; BentoML's adaptive batching and Ray
Serve's `@serve.batch` gather the same way). `max_delay_ms` above zero holds a call that long
for more rows while fewer than `max_batch_size` wait: more rows per call, at the cost of
latency when traffic is light.

Calls run on the process's model thread, so the event loop goes on reading, checking,
encoding and logging other requests meanwhile. When a gathered call fails, each of its
requests is predicted on its own: one request's bad row fails that request only.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

from keel.serving.codec import Batch

__all__ = ["Batcher", "join_batches", "split_outputs"]

_log = logging.getLogger(__name__)

Outputs = dict[str, list[Any]]
#: Called after each model call with (requests, rows) it carried.
OnCall = Callable[[int, int], None]


def join_batches(batches: list[Batch]) -> Batch:
    """One batch holding the rows of `batches`, in order (all have the same inputs)."""
    if len(batches) == 1:
        return batches[0]
    names = list(batches[0].columns)
    columns = {name: [value for b in batches for value in b.columns[name]] for name in names}
    return Batch(columns, sum(b.rows for b in batches))


def split_outputs(outputs: Outputs, sizes: list[int]) -> list[Outputs]:
    """`outputs` of a joined batch cut back into one set per request of `sizes` rows."""
    parts: list[Outputs] = []
    start = 0
    for size in sizes:
        parts.append({name: values[start : start + size] for name, values in outputs.items()})
        start += size
    return parts


class Batcher:
    """The queue in front of one version's model: `await batcher.predict(batch)`."""

    def __init__(
        self,
        predict: Callable[[Batch], Outputs],
        executor: Executor,
        *,
        max_batch_size: int,
        max_delay_ms: float = 0.0,
        on_call: OnCall | None = None,
    ) -> None:
        self._predict = predict
        self._executor = executor
        self.max_batch_size = max_batch_size
        self.max_delay = max_delay_ms / 1000
        self._on_call = on_call
        self._waiting: deque[tuple[Batch, asyncio.Future[Outputs]]] = deque()
        self._arrived: asyncio.Event | None = None
        #: The task taking waiting requests to the model, while it runs.
        self._task: asyncio.Task[None] | None = None

    async def predict(self, batch: Batch) -> Outputs:
        """The outputs for `batch`'s rows, predicted with whatever else waits for the model;
        raises what predicting `batch` on its own raises."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Outputs] = loop.create_future()
        self._waiting.append((batch, future))
        if self._arrived is not None:
            self._arrived.set()
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self._waiting:
            if self.max_delay > 0:
                await self._hold()
            taken = self._take()
            if not taken:
                continue
            batches = [batch for batch, _ in taken]
            try:
                answers = await loop.run_in_executor(self._executor, self._call, batches)
            except BaseException as exc:  # the executor is gone: tell every waiter
                for _, future in taken:
                    if not future.done():
                        future.set_exception(exc)
                raise
            for (_, future), answer in zip(taken, answers, strict=True):
                if future.done():  # cancelled: its client went away
                    continue
                if isinstance(answer, BaseException):
                    future.set_exception(answer)
                else:
                    future.set_result(answer)

    async def _hold(self) -> None:
        """Hold the call until `max_delay` after now, or until `max_batch_size` rows wait."""
        if self._arrived is None:
            self._arrived = asyncio.Event()
        deadline = time.monotonic() + self.max_delay
        while sum(batch.rows for batch, _ in self._waiting) < self.max_batch_size:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), left)
            except TimeoutError:
                return

    def _take(self) -> list[tuple[Batch, asyncio.Future[Outputs]]]:
        """The oldest request, and those after it that fit in `max_batch_size` rows; none
        whose client went away while it waited (its request was cancelled)."""
        taken: list[tuple[Batch, asyncio.Future[Outputs]]] = []
        rows = 0
        while self._waiting:
            batch, future = self._waiting[0]
            if future.done():
                self._waiting.popleft()
                continue
            if taken and (
                rows + batch.rows > self.max_batch_size
                or batch.columns.keys() != taken[0][0].columns.keys()
            ):
                break
            taken.append(self._waiting.popleft())
            rows += batch.rows
        return taken

    def _call(self, batches: list[Batch]) -> list[Outputs | BaseException]:
        """On the model's thread: one call for all of `batches`, or, when it fails, one call
        each, so that each request gets its own outputs or its own exception."""
        if self._on_call is not None:
            self._on_call(len(batches), sum(b.rows for b in batches))
        if len(batches) > 1:
            try:
                joined = self._predict(join_batches(batches))
                return list(split_outputs(joined, [b.rows for b in batches]))
            except Exception:  # noqa: BLE001 - found below: whose rows the model refused
                _log.debug("a gathered call failed; each request is predicted alone")
        answers: list[Outputs | BaseException] = []
        for batch in batches:
            try:
                answers.append(self._predict(batch))
            except Exception as exc:  # noqa: BLE001 - that request's own failure
                answers.append(exc)
        return answers
