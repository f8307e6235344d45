"""`keel.Project`: one keel project and the verbs a user runs on it.

A Project is a `keel.workspace.Workspace` (settings, spec, metadata and artifact stores)
that also carries the CLI's verbs, so a notebook or an orchestrator task does what the CLI
does, with the same checks and the same audit trail:

    import keel

    with keel.Project.open("path/to/project") as project:
        print(project.status().ok)

This module is the top of keel's layers (with the CLI and the server composition): it may
import any service, and no service imports it. Services take a Workspace.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Self

from keel.verbs.alerts import alert, alerts
from keel.verbs.approve import approve
from keel.verbs.audit import audit, audit_verify
from keel.verbs.canary_check import canary_check
from keel.verbs.canary_status import canary_status
from keel.verbs.ci_summary import ci_summary
from keel.verbs.ci_workflow import ci_workflow
from keel.verbs.compact_predictions import compact_predictions
from keel.verbs.contract_check import contract_check
from keel.verbs.contract_diff import contract_diff
from keel.verbs.contract_infer import contract_infer
from keel.verbs.contract_test import contract_test
from keel.verbs.dataset_diff import dataset_diff
from keel.verbs.datasets import dataset, datasets
from keel.verbs.deploy_render import deploy_render
from keel.verbs.drift import drift
from keel.verbs.env_check import env_check
from keel.verbs.explain import explain
from keel.verbs.exports import grafana_dashboard, prometheus_rules
from keel.verbs.feedback import feedback
from keel.verbs.label_history import label_history
from keel.verbs.lineage import lineage
from keel.verbs.list_artifacts import list_artifacts
from keel.verbs.models import model, models, sign_model
from keel.verbs.monitor import monitor
from keel.verbs.owners import owners
from keel.verbs.performance import performance
from keel.verbs.predict_batch import predict_batch
from keel.verbs.prediction_stats import prediction_stats
from keel.verbs.promote import promote
from keel.verbs.reject import reject
from keel.verbs.reproduce import reproduce
from keel.verbs.requests import request, requests
from keel.verbs.resolve_alert import resolve_alert
from keel.verbs.retrain import retrain
from keel.verbs.rollback import rollback
from keel.verbs.runs import run, runs
from keel.verbs.scorecard import scorecard
from keel.verbs.skew import skew
from keel.verbs.smoke_test import smoke_test
from keel.verbs.snapshot import snapshot
from keel.verbs.tokens import create_token, revoke_token, tokens
from keel.verbs.train import train
from keel.verbs.users import add_user, disable_user, users
from keel.verbs.watch_pass import watch_pass
from keel.verbs.webhooks import add_webhook, deliver_webhooks, remove_webhook, webhooks
from keel.workspace import ProjectStatus, VerifyReport, Workspace

if TYPE_CHECKING:
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
    from starlette.applications import Starlette

    from keel.domain.digest import Digest
    from keel.domain.model import ModelVersion
    from keel.models.package import LoadedModel

__all__ = ["Project", "ProjectStatus", "VerifyReport"]


class Project(Workspace):
    """A keel project with its verbs; see docs/python-api.md.

    Each verb is the function of the same name in `keel.verbs`, attached here: the method's
    signature and docstring are the function's, without the project.
    """

    train = train
    reproduce = reproduce
    promote = promote
    approve = approve
    reject = reject
    rollback = rollback
    predict_batch = predict_batch
    feedback = feedback
    monitor = monitor
    retrain = retrain
    canary_check = canary_check
    explain = explain
    audit = audit
    audit_verify = audit_verify
    requests = requests
    request = request
    canary_status = canary_status
    performance = performance
    label_history = label_history
    alerts = alerts
    alert = alert
    resolve_alert = resolve_alert
    add_user = add_user
    disable_user = disable_user
    create_token = create_token
    revoke_token = revoke_token
    add_webhook = add_webhook
    remove_webhook = remove_webhook
    deliver_webhooks = deliver_webhooks
    dataset_diff = dataset_diff
    snapshot = snapshot
    compact_predictions = compact_predictions
    owners = owners
    lineage = lineage
    skew = skew
    scorecard = scorecard
    contract_check = contract_check
    drift = drift
    models = models
    model = model
    sign_model = sign_model
    runs = runs
    run = run
    datasets = datasets
    dataset = dataset
    prediction_stats = prediction_stats
    contract_infer = contract_infer
    contract_diff = contract_diff
    prometheus_rules = prometheus_rules
    grafana_dashboard = grafana_dashboard
    users = users
    tokens = tokens
    webhooks = webhooks
    smoke_test = smoke_test
    contract_test = contract_test
    ci_workflow = ci_workflow
    ci_summary = ci_summary
    deploy_render = deploy_render
    env_check = env_check
    list_artifacts = list_artifacts
    watch_pass = watch_pass

    def serve_app(self, *, api: bool = True, ui: bool = False) -> Starlette:
        """The ASGI app `keel serve` runs: the models whose `production` alias is set over
        the Open Inference Protocol and `/predict`, with `/metrics`, the registry API at
        `/api/v1` (unless `api` is false) and the web UI at `/ui` (with `ui`). Run it with
        any ASGI server; every prediction goes to the project's prediction log, which the
        app opens on start and flushes on shutdown. The project must stay open meanwhile.
        """
        from keel.server import create_app, open_log

        app, _serving = create_app(self, log=open_log(self), api=api, ui=ui)
        return app

    # --- a project's data, models and scaffolding, for its users --------------------------

    @classmethod
    def init(
        cls,
        directory: Path | str,
        *,
        name: str | None = None,
        force: bool = False,
        env: Mapping[str, str] | None = None,
        example: str | None = None,
    ) -> Self:
        """Scaffold keel.yaml in `directory` (or, with `example`, copy that example project
        with its data: `keel init --example NAME`), create both stores, and open it."""
        if example is None:
            return super().init(directory, name=name, force=force, env=env)
        from keel.examples import write_example

        environ = dict(os.environ if env is None else env)
        folder = Path(directory).expanduser().resolve()
        write_example(example, folder, user=cls._owner(folder, environ), force=force)
        return cls._open_new(folder, environ)

    def load_dataset(self, ref: str | Digest) -> pa.Table:
        """The data of a dataset version (`latest`, an id or a unique prefix), verified."""
        from keel.data.snapshot import load_table

        return load_table(self, ref)

    def load_model(self, version: ModelVersion) -> LoadedModel:
        """A registered version's package, verified by signature and hash, then loaded, and
        kept while the project is open (see `keel.models.loader.ModelLoader.load`)."""
        from keel.models.loader import load_model

        return load_model(self, version)

    def sign_version(self, version: ModelVersion) -> ModelVersion:
        """Sign `version` with the project's signing key and store the signature, with an
        audit event: for versions registered before keel signed packages, once reviewed."""
        from keel.models.loader import sign_version

        return sign_version(self, version)

    def forget_loaded_models(self) -> None:
        """Drop the packages `load_model` keeps (they are loaded again on next use)."""
        from keel.models.loader import forget_loaded_models

        forget_loaded_models(self)
