"""Running an ASGI app on uvicorn: in the foreground until SIGTERM (`keel serve`, `keel ui`),
or in a background thread (tests, notebooks, embedding)."""

from __future__ import annotations

import asyncio
import logging
import logging.config
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final, TextIO

import click
import orjson
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from keel.errors import ConfigError, KeelError

__all__ = [
    "MAX_HEAD_BYTES",
    "BoundedHead",
    "Listen",
    "run_in_thread",
    "serve_until_stopped",
    "serve_workers",
]

#: How long the server may take to start (its lifespan may load models first).
STARTUP_TIMEOUT_S: Final = 120.0
#: How long a stopping server may take to drain.
SHUTDOWN_TIMEOUT_S: Final = 15.0
#: How `keel serve` and `keel ui` log their own lines, to stderr.
_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: How `keel serve --workers` logs: keel's lines as in one process, to stderr (a dictConfig,
#: so that worker processes, started anew, log the same).
_LOGGING: Final = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"keel": {"format": _FORMAT}},
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "keel",
            "stream": "ext://sys.stderr",
        }
    },
    "root": {"level": "INFO", "handlers": ["stderr"]},
}


#: The most a request line and its headers may take, in bytes: larger ones are refused
#: with 431 before they are read further (uvicorn's httptools parser sets no bound).
MAX_HEAD_BYTES: Final = 16 * 1024
#: How long a connection refused for its head stays open to take (and drop) what the client
#: is still sending, so that the client reads the answer.
_LINGER_S: Final = 2.0


class _HeadTooLarge(Exception):
    """Raised from a parser callback to stop parsing a request whose head is too large."""


class BoundedHead(HttpToolsProtocol):
    """uvicorn's HTTP protocol on httptools (a C parser: much cheaper per request than h11),
    refusing a request whose line and headers exceed `MAX_HEAD_BYTES` (431), as h11's
    `h11_max_incomplete_event_size` did, so that a client cannot make the server hold
    megabytes of headers: counted exactly as the parser hands them over, and, for a head
    still arriving, as raw bytes read since the previous message ended."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True
        self._read = 0  # bytes read while in a head
        self._head = 0  # bytes of the request line and headers parsed
        self._too_large = False
        self._refused = False

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # the answer is sent: what the client still sends is discarded
        if self._in_head:
            self._read += len(data)
        super().data_received(data)
        if self._in_head and self._read > MAX_HEAD_BYTES and not self.transport.is_closing():
            self._refuse_head()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)  # ": " and CRLF
        super().on_header(name, value)

    def _count(self, size: int) -> None:
        self._head += size
        if self._head > MAX_HEAD_BYTES:
            self._too_large = True
            raise _HeadTooLarge  # httptools stops and raises a parser error: 431, below

    def send_400_response(self, msg: str) -> None:
        if self._too_large:
            self._refuse_head()
        else:
            super().send_400_response(msg)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._read = self._head = 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True

    def _refuse_head(self) -> None:
        rule = f"at most {MAX_HEAD_BYTES:,} bytes"
        body = orjson.dumps(
            {
                "error": f"the request line and headers exceed {MAX_HEAD_BYTES:,} bytes",
                "problems": [{"field": "headers", "rule": rule, "detail": "larger"}],
            }
        )
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: application/json\r\n"
            b"connection: close\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
        # Close only our side now, and the connection a moment later: closing a socket with
        # unread data sends a reset, which can destroy the answer before the client reads it
        # (a client still sending headers would see "connection reset", not 431).
        self._refused = True
        if self.transport.can_write_eof():
            self.transport.write_eof()
        asyncio.get_running_loop().call_later(_LINGER_S, self.transport.close)


def _bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to `host:port`; `ConfigError` naming the port if it is taken."""
    # IPPROTO_TCP named explicitly: asyncio turns Nagle's algorithm off only on sockets that
    # say they are TCP; without it every response waits ~40 ms for a delayed acknowledgement.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"cannot listen on {host}:{port}: {exc}",
            problems=[("port", "must be free to listen on")],
        ) from exc
    return sock


@contextmanager
def run_in_thread(app: Any, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve `app` on `host:port` (0: a free port) until the block ends; yields the base URL.

    The socket is bound before the server starts, so the port is known and taken at once
    (no race with another process picking the same free port). uvicorn's logging setup is
    skipped: the host application owns logging.
    """
    sock = _bind(host, port)
    bound = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_config=None, access_log=False, timeout_graceful_shutdown=5, http=BoundedHead
    )
    # uvicorn leaves signals alone outside the main thread: they stay the host's.
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"keel-http-{bound}", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise KeelError(f"the HTTP server on {host}:{bound} did not start")
            time.sleep(0.01)
        netloc = f"[{host}]" if ":" in host else host
        yield f"http://{netloc}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout=SHUTDOWN_TIMEOUT_S)
        sock.close()


@dataclass(frozen=True)
class Listen:
    """Where a foreground server listens, and what it prints once it does: "banner: URL
    detail", or one JSON line (`as_json`) on `stdout` (the CLI's real stdout while it sends
    everything else to stderr). Requests still in flight `drain_timeout` seconds after
    SIGTERM are cut."""

    host: str
    port: int
    banner: str
    as_json: bool = False
    detail: str = ""
    access_log: bool = False
    drain_timeout: float = 10.0
    stdout: TextIO | None = None
    #: The gRPC port served beside HTTP, for the JSON line (None: none).
    grpc_port: int | None = None

    def announce(self, port: int, workers: int = 1) -> None:
        import json

        where = f"http://{self.host}:{port}"
        if self.as_json:
            document: dict[str, Any] = {"ok": True, "url": where}
            if self.grpc_port is not None:
                document["grpc"] = f"{self.host}:{self.grpc_port}"
            click.echo(
                json.dumps(document | ({"workers": workers} if workers > 1 else {})),
                file=self.stdout,
            )
            return
        many = f" ({workers} workers)" if workers > 1 else ""
        click.echo(
            f"{self.banner}: {where}{many}{' ' + self.detail if self.detail else ''}",
            file=self.stdout,
        )

    @property
    def graceful_seconds(self) -> int:
        return max(1, round(self.drain_timeout))


def serve_until_stopped(app: Any, listen: Listen) -> None:
    """Log to stderr, print where the app listens (`listen.announce`), and serve until
    SIGTERM or Ctrl-C. uvicorn drains requests, runs the lifespan's shutdown (where `keel
    serve` flushes the prediction log), then raises the signal again to the previous
    handler: a handler that does nothing makes that a clean exit 0."""
    logging.basicConfig(level=logging.INFO, format=_FORMAT)
    listen.announce(listen.port)
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    uvicorn.run(
        app,
        host=listen.host,
        port=listen.port,
        access_log=listen.access_log,
        log_level="info",
        timeout_graceful_shutdown=listen.graceful_seconds,
        http=BoundedHead,
    )


def serve_workers(
    factory: Callable[[], Any],
    listen: Listen,
    *,
    workers: int,
    env: dict[str, str] | None = None,
) -> None:
    """As `serve_until_stopped`, with `workers` processes sharing one listening socket, each
    running the app `factory()` builds in it (`factory` is pickled to them: a module-level
    function or a `functools.partial` of one). `env` is set in this process first, so the
    workers start with it. uvicorn's supervisor replaces a worker that dies; SIGTERM or
    Ctrl-C reaches every worker, each drains its requests and runs its lifespan's shutdown,
    and this process exits once all have."""
    import os

    from uvicorn.supervisors import Multiprocess

    logging.config.dictConfig(_LOGGING)
    sock = _bind(listen.host, listen.port)
    os.environ.update(env or {})
    config = uvicorn.Config(
        factory,
        factory=True,
        workers=workers,
        log_config=_LOGGING,
        access_log=listen.access_log,
        timeout_graceful_shutdown=listen.graceful_seconds,
        http=BoundedHead,
    )
    listen.announce(sock.getsockname()[1], workers)
    try:
        Multiprocess(config, sockets=[sock]).run()
    finally:
        sock.close()
