"""A deadline on reading a request's body, for keel's HTTP servers (`keel serve`, `keel ui`).

uvicorn bounds the wait for the next request on a kept-alive connection
(`timeout_keep_alive`) and the size of what it buffers, but not how long a client may take to
send a body once its headers are in: 2,000 clients that each send half a body and wait hold
2,000 connections (and their requests' memory) for as long as they like. `BodyDeadline`
gives the body `seconds` from the moment the app is called; a body not complete by then is
answered `408 Request Timeout` with `Connection: close`, and the connection is closed. The
app sees the client as gone (`http.disconnect`), so it stops waiting too; whatever it would
have answered is dropped in favour of the 408.
"""

from __future__ import annotations

import asyncio

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodyDeadline"]


class BodyDeadline:
    """ASGI middleware: the request body must arrive within `seconds` (408 beyond)."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.seconds
        state = {"expired": False, "started": False, "body_done": False}

        async def timed_receive() -> Message:
            if state["expired"]:
                return {"type": "http.disconnect"}
            if state["body_done"]:
                # After the body, a receive only waits for the client to leave: no deadline.
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
            except TimeoutError:
                state["expired"] = True
                return {"type": "http.disconnect"}
            if message["type"] == "http.request" and not message.get("more_body", False):
                state["body_done"] = True
            return message

        async def guarded_send(message: Message) -> None:
            if state["expired"] and not state["started"]:
                return  # the app's answer to the "disconnect"; the 408 goes out below
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        await self.app(scope, timed_receive, guarded_send)
        if state["expired"] and not state["started"]:
            await _send_timeout(send, self.seconds)


async def _send_timeout(send: Send, seconds: float) -> None:
    rule = f"the whole body within {seconds:g} s (serving.body_timeout)"
    body = orjson.dumps(
        {
            "error": f"the request body was not received within {seconds:g} s",
            "problems": [{"field": "body", "rule": rule, "detail": "incomplete"}],
        }
    )
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 408, "headers": headers})
    await send({"type": "http.response.body", "body": body})
