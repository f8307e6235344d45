"""The demo's traffic: a month of requests sent to its server over HTTP, and their labels."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from keel.demo.stories import Story

if TYPE_CHECKING:
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]

    from keel.project import Project

__all__ = [
    "LABEL_SERVICE",
    "Client",
    "Sent",
    "label_service",
    "month_rows",
    "post_labels",
    "send_month",
]


LABEL_SERVICE: Final = "label-feed"  # sends the labels that arrive later (role labeler)


@dataclass
class Sent:
    month: str
    ids: list[str]
    labels: list[int]


class Client:
    """JSON over one keep-alive connection to the demo's server."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self._host, self._port = parts.hostname or "", parts.port
        self._connection = http.client.HTTPConnection(self._host, self._port, timeout=60)

    def post(self, path: str, document: Any, headers: dict[str, str] | None = None) -> Any:
        body = json.dumps(document).encode()
        sent = {"Content-Type": "application/json", **(headers or {})}
        try:
            response = self._send(path, body, sent)
        except (ConnectionError, http.client.HTTPException):
            # The server closes a keep-alive connection left idle (while training ran).
            self._connection.close()
            self._connection = http.client.HTTPConnection(self._host, self._port, timeout=60)
            response = self._send(path, body, sent)
        answer = json.loads(response.read())
        if response.status != 200:
            raise RuntimeError(f"{path} answered {response.status}: {answer}")
        return answer

    def close(self) -> None:
        self._connection.close()

    def _send(self, path: str, body: bytes, headers: dict[str, str]) -> http.client.HTTPResponse:
        self._connection.request("POST", path, body, headers)
        return self._connection.getresponse()


def month_rows(project: Project, told: Story, month: str) -> pa.Table:
    """`told.per_month` raw rows of `month` (YYYY-MM), spread over it, with their labels."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq  # type: ignore[import-untyped,unused-ignore]

    from keel.examples import prepare_months

    path = project.settings.project_dir / "data" / "raw" / f"{month}.parquet"
    if not path.exists():
        # Production traffic the source has not caught up with yet: kept aside.
        staging = project.settings.project_dir / ".keel" / "demo-traffic"
        path = staging / f"{month}.parquet"
        if not path.exists():
            prepare_months(
                project.settings.project_dir, [month], example_name=told.example, into=staging
            )
    table = pq.read_table(path)
    picks = np.linspace(0, table.num_rows - 1, told.per_month).astype(int)
    return table.take(pa.array(picks))


def send_month(project: Project, told: Story, client: Client, month: str) -> Sent:
    rows = month_rows(project, told, month)
    # A request carries the model's inputs: neither the target nor the columns keel.yaml
    # excludes (bikeshare's casual and registered, the target's two parts).
    excluded = [] if project.spec.data is None else project.spec.data.exclude
    records = rows.drop([told.target, *excluded]).to_pylist()
    for record in records:
        # Requests carry times as ISO text: a timestamp, or a plain date (YYYY-MM-DD).
        record[told.timestamp] = record[told.timestamp].isoformat()
    ids: list[str] = []
    for start in range(0, len(records), told.per_request):
        answer = client.post("/predict", {"records": records[start : start + told.per_request]})
        ids.extend(p["id"] for p in answer["predictions"])
    return Sent(month, ids, [int(v) for v in rows[told.target].to_pylist()])


def label_service(project: Project) -> dict[str, str]:
    """The headers of the demo's labelling service: labels are writes, sent with an API
    token of a user who may label and do nothing else."""
    identities = project.metadata.identities
    actor = project.settings.user
    identities.add_user(LABEL_SERVICE, ["labeler"], actor=actor)
    token = identities.create_token(LABEL_SERVICE, actor=actor, label="demo label feed")
    return {"Authorization": f"Bearer {token}"}


def post_labels(client: Client, sent: Sent, headers: dict[str, str]) -> None:
    client.post(
        "/v1/feedback",
        {
            "feedback": [
                {"prediction_id": i, "label": v} for i, v in zip(sent.ids, sent.labels, strict=True)
            ]
        },
        headers,
    )
