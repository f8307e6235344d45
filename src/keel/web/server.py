"""Running an ASGI app on uvicorn: in the foreground until SIGTERM (`keel serve`, `keel ui`),
or in a background thread (tests, notebooks, embedding)."""

from __future__ import annotations

import logging
import logging.config
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Final, TextIO

import click
import uvicorn

from keel.errors import ConfigError, KeelError

__all__ = ["run_in_thread", "serve_until_stopped", "serve_workers"]

#: How long the server may take to start (its lifespan may load models first).
STARTUP_TIMEOUT_S: Final = 120.0
#: How long a stopping server may take to drain.
SHUTDOWN_TIMEOUT_S: Final = 15.0


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
    config = uvicorn.Config(app, log_config=None, access_log=False, timeout_graceful_shutdown=5)
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


def serve_until_stopped(
    app: Any,
    *,
    host: str,
    port: int,
    access_log: bool,
    banner: str,
    as_json: bool,
    detail: str = "",
    stdout: TextIO | None = None,
    drain_timeout: float = 10.0,
) -> None:
    """Log to stderr, print where the app listens ("banner: URL detail", or one JSON line),
    and serve until SIGTERM or Ctrl-C. uvicorn drains requests, runs the lifespan's shutdown
    (where `keel serve` flushes the prediction log), then raises the signal again to the
    previous handler: a handler that does nothing makes that a clean exit 0. Requests still
    in flight after `drain_timeout` seconds are cut. The JSON line goes to `stdout` (the
    CLI's real stdout while it sends everything else to stderr)."""
    import json

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    where = f"http://{host}:{port}"
    line = f"{banner}: {where}{' ' + detail if detail else ''}"
    click.echo(json.dumps({"ok": True, "url": where}) if as_json else line, file=stdout)
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    uvicorn.run(
        app,
        host=host,
        port=port,
        access_log=access_log,
        log_level="info",
        timeout_graceful_shutdown=max(1, round(drain_timeout)),
    )


#: Workers log as `keel serve` does, each to its stderr (a dictConfig: they are new processes).
_WORKER_LOGGING: Final = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"keel": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "keel",
            "stream": "ext://sys.stderr",
        }
    },
    "root": {"level": "INFO", "handlers": ["stderr"]},
}


def serve_workers(
    factory: Callable[[], Any],
    *,
    workers: int,
    host: str,
    port: int,
    access_log: bool,
    banner: str,
    as_json: bool,
    detail: str = "",
    stdout: TextIO | None = None,
    drain_timeout: float = 10.0,
    env: dict[str, str] | None = None,
) -> None:
    """As `serve_until_stopped`, with `workers` processes sharing one listening socket, each
    running the app `factory()` builds in it (`factory` is pickled to them: a module-level
    function or a `functools.partial` of one). `env` is set in this process first, so the
    workers start with it. uvicorn's supervisor replaces a worker that dies; SIGTERM or
    Ctrl-C reaches every worker, each drains its requests and runs its lifespan's shutdown,
    and this process exits once all have."""
    import json
    import os

    from uvicorn.supervisors import Multiprocess

    logging.config.dictConfig(_WORKER_LOGGING)
    sock = _bind(host, port)
    os.environ.update(env or {})
    config = uvicorn.Config(
        factory,
        factory=True,
        workers=workers,
        log_config=_WORKER_LOGGING,
        access_log=access_log,
        timeout_graceful_shutdown=max(1, round(drain_timeout)),
    )
    where = f"http://{host}:{sock.getsockname()[1]}"
    line = f"{banner}: {where} ({workers} workers){' ' + detail if detail else ''}"
    document = {"ok": True, "url": where, "workers": workers}
    click.echo(json.dumps(document) if as_json else line, file=stdout)
    try:
        Multiprocess(config, sockets=[sock]).run()
    finally:
        sock.close()
