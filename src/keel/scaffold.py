"""`keel init`: the commented keel.yaml a new project starts from."""

from __future__ import annotations

import json
import re
from pathlib import Path

from keel.errors import Conflict
from keel.settings import STATE_DIR
from keel.spec import SPEC_FILENAME, parse_spec

__all__ = ["project_name_for", "render_spec", "scaffold"]

_TEMPLATE = """\
# keel.yaml: the spec of this keel project. Commit it; keel reads it on every command.
# Paths are relative to this file. Durations: 30s, 15m, 1h, 7d, 2w.
version: 1
name: {name}
description: ""

# Who answers for each stage. Alerts, approval requests and failed gates name them.
owners:
  data: {user}
  training: {user}
  release: {user}
  monitoring: {user}

# Where metadata and artifacts live. KEEL_DB_URL and KEEL_ARTIFACTS override these.
# Defaults: SQLite at .keel/keel.db and a folder at .keel/artifacts.
storage: {{}}
#  db_url: postgresql://keel@db.internal/keel
#  artifacts: s3://my-bucket/keel

# The data the model learns from: a CSV/Parquet file, a glob, a folder,
# or a SQL query: {{query: "SELECT ...", url: "postgresql://..."}}.
# data:
#   source: data/*.csv.gz
#   format: auto            # auto | csv | parquet
#   snapshot: copy          # copy | manifest: record a lake table's files, not a copy
#   timestamp: event_time   # orders rows; the newest form the holdout
#   target: label
#   entity_key: [id]        # joins feedback and recomputes features for skew checks
#   exclude: [notes]        # raw columns that are never model inputs (docs/data.md)
#   contract: contracts/data.yaml

# Entry points, as module:function, imported from this folder.
# features:
#   entry_point: features:build
# training:
#   entry_point: train:train
#   params: {{}}
#   seed: 0
#   split: {{method: time, holdout: 0.2}}

# Metrics computed on the holdout; the first is the primary one.
# metrics: [roc_auc, log_loss]

# What a version must pass before an alias moves, and who must approve.
release:
  # The aliases versions may be promoted to (`candidate`, where training registers new
  # versions, always is one). `keel promote` refuses any other name, so a typo cannot create one.
  aliases: [candidate, staging, canary, production]
  gates:
    - type: contract_passed          # the training data passed its contract
    - type: inference_contract       # the model answers sample requests in its schema
#   - type: metric_threshold
#     metric: roc_auc
#     min: 0.70
#   - type: beats_champion           # scored on the same data as the production model
#     metric: roc_auc
#     margin: 0.0
  approvals:
    required: 1                      # by someone other than the requester
    aliases: [production]
  request_ttl: 7d

monitoring:
  window: 1d
  drift:
    test: auto                       # auto | ks | psi | chi2 | wasserstein | jensenshannon
  prometheus: true

retraining:
  triggers: {{}}
#   drifted_features: 3
#   performance: {{metric: roc_auc, below: 0.65}}
#   new_labels: 50000
#   schedule: 7d
  promotion: manual                  # manual | canary | automatic
  canary:
    duration: 1h                     # watched this long on canary before promotion

serving:
  canary_share: 0.1                  # share of requests the canary answers while one is set
  shadow: []                         # aliases scored and logged on every request, never returned
  log:
    flush_interval: 200ms            # the most a hard crash of the server can lose
"""


def project_name_for(directory: Path) -> str:
    """A valid project name from a folder name: `My Model!` -> `my-model`."""
    name = re.sub(r"[^a-z0-9._-]+", "-", directory.resolve().name.lower()).strip("-._")
    return (name or "keel-project")[:63]


def render_spec(name: str, user: str) -> str:
    text = _TEMPLATE.format(name=name, user=_yaml_scalar(user))
    parse_spec(text)  # the template must always be a valid spec
    return text


def _yaml_scalar(value: str) -> str:
    # JSON strings are valid YAML scalars, whatever characters the name holds.
    return value if re.fullmatch(r"[A-Za-z0-9._@-]+", value) else json.dumps(value)


def scaffold(directory: Path, *, name: str | None, user: str, force: bool = False) -> Path:
    """Write keel.yaml and ignore `.keel/` in git; returns the spec path.

    Refuses (Conflict) to overwrite an existing keel.yaml unless `force`.
    """
    directory.mkdir(parents=True, exist_ok=True)
    spec_path = directory / SPEC_FILENAME
    if spec_path.exists() and not force:
        raise Conflict(
            f"{spec_path} already exists",
            hint="keep it, or pass --force to overwrite it with the template",
        )
    text = render_spec(name or project_name_for(directory), user)
    temp = spec_path.with_name(f".{SPEC_FILENAME}.tmp")
    temp.write_text(text, encoding="utf-8")
    temp.replace(spec_path)
    gitignore = directory / ".gitignore"
    entry = f"{STATE_DIR}/"
    existing = gitignore.read_text(encoding="utf-8") if gitignore.exists() else ""
    if entry not in existing.splitlines():
        separator = "" if not existing or existing.endswith("\n") else "\n"
        gitignore.write_text(f"{existing}{separator}{entry}\n", encoding="utf-8")
    return spec_path
