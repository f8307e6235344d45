"""Half-sent request bodies on raw sockets, against real servers on loopback (`keel serve`'s
app and `keel ui`'s): each is answered 408 once `serving.body_timeout` passes, and its
connection is closed, so clients that stall cannot hold the server's connections."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from keel.predlog.writer import open_prediction_log
from keel.server import create_app
from keel.web.server import MAX_HEAD_BYTES, run_in_thread
from keel.web.ui import create_ui
from tests.serving.support import Client, open_project, records, served_copy, set_alias

TIMEOUT_S = 1.0
#: However loaded the test machine, an answer comes well within this (no timing is asserted
#: beyond "answered within the configured timeout plus this slack").
SLACK_S = 60.0
STALLED = 40


@pytest.fixture(scope="module")
def folder(trained_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    copy = served_copy(
        trained_template, tmp_path_factory.mktemp("slow") / "flights", body_timeout="1s"
    )
    with open_project(copy) as project:
        set_alias(project, "production", 1)
    return copy


@pytest.fixture(params=["serve", "ui"])
def server(request: pytest.FixtureRequest, folder: Path) -> Iterator[tuple[str, str, str]]:
    """(base URL, path, content type) of a route that reads a body."""
    with open_project(folder) as project:
        if request.param == "serve":
            app, _ = create_app(project, log=open_prediction_log(project))
            path, kind = "/predict", "application/json"
        else:
            app = create_ui(project)
            path, kind = "/signin", "application/x-www-form-urlencoded"
        with run_in_thread(app) as url:
            yield url, path, kind


def _half_sent(url: str, path: str, kind: str) -> socket.socket:
    """A connection that sent its headers and half of the body they announce."""
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    sock = socket.create_connection((parts.hostname, parts.port), timeout=TIMEOUT_S + SLACK_S)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: {kind}\r\n"
        "Content-Length: 1000\r\n\r\n"
    )
    sock.sendall(head.encode() + b"x" * 500)
    return sock


def _read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def test_half_sent_bodies_are_answered_408_and_their_connections_closed(
    server: tuple[str, str, str], folder: Path
) -> None:
    url, path, kind = server
    stalled = [_half_sent(url, path, kind) for _ in range(STALLED)]
    try:
        for sock in stalled:
            # recv returns b"" only once the server closed the connection: it did not wait
            # for the rest of the body (the socket's own timeout is the generous bound).
            answer = _read_all(sock)
            status_line, _, rest = answer.partition(b"\r\n")
            assert status_line == b"HTTP/1.1 408 Request Timeout", answer[:300]
            headers, _, body = rest.partition(b"\r\n\r\n")
            assert b"connection: close" in headers.lower()
            problem = json.loads(body)["problems"][0]
            assert problem["field"] == "body" and "serving.body_timeout" in problem["rule"]
    finally:
        for sock in stalled:
            sock.close()
    # The server still answers a complete request.
    if path == "/predict":
        with Client(url) as client:
            row = records(folder, 1)[0]
            assert client.post("/predict", {"records": [row]}).status == 200


@pytest.mark.parametrize("how", ["one write", "a header at a time"])
def test_headers_beyond_the_bound_are_refused_431_and_the_server_keeps_serving(
    server: tuple[str, str, str], folder: Path, how: str
) -> None:
    url, path, _ = server
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    sock = socket.create_connection((parts.hostname, parts.port), timeout=SLACK_S)
    try:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n".encode())
        headers = [f"X-Filler-{n}: {'a' * 1000}\r\n".encode() for n in range(MAX_HEAD_BYTES // 900)]
        try:
            if how == "one write":
                sock.sendall(b"".join(headers) + b"\r\n")
            else:
                for header in headers:
                    sock.sendall(header)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused while still sending: the answer is already there
        answer = _read_all(sock)
    finally:
        sock.close()
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 431 Request Header Fields Too Large", answer[:300]
    problem = json.loads(rest.partition(b"\r\n\r\n")[2])["problems"][0]
    assert problem["field"] == "headers" and f"{MAX_HEAD_BYTES:,}" in problem["rule"]
    # Headers within the bound still pass, and the server answers a complete request.
    with Client(url) as client:
        padding = {"X-Filler": "a" * (MAX_HEAD_BYTES // 2)}
        if path == "/predict":
            row = records(folder, 1)[0]
            body = json.dumps({"records": [row]}).encode()
            assert client.request("POST", "/predict", body, padding).status == 200
        else:
            assert client.request("GET", "/", b"", padding).status < 500
