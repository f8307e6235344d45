"""The demo's story, step by step: `run_demo` and the steps it narrates."""

from __future__ import annotations

import contextlib
import logging
import random
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from keel.demo.stories import FLIGHTS, Story, story
from keel.demo.traffic import Client, label_service, post_labels, send_month
from keel.errors import ConfigError

if TYPE_CHECKING:
    from keel.maturity import Scorecard
    from keel.project import Project

__all__ = ["APPROVER", "MODEL", "OWNER", "STEPS", "DemoResult", "run_demo"]


#: The flights story's model.
MODEL: Final = FLIGHTS.model
OWNER: Final = "ana"  # trains, requests releases, owns the data
APPROVER: Final = "ben"  # approves releases


STEPS: Final = ("init", "release", "serve", "retrain", "canary", "rollback", "explain")


@dataclass
class DemoResult:
    """Where the demo ran and what it left behind."""

    folder: Path
    report: Path | None = None
    prediction: str | None = None
    events: list[str] = field(default_factory=list)
    scorecard: Scorecard | None = None


class _Narrator:
    def __init__(self, say: Callable[[str], None], told: Story, env: dict[str, str]) -> None:
        self._say = say
        #: The story being told, and the environment its projects open with: what the steps
        #: below need of them.
        self.story = told
        self.env = env
        self._started = time.perf_counter()
        self._number = 0

    @contextmanager
    def step(self, title: str) -> Iterator[None]:
        self._number += 1
        began = time.perf_counter()
        self._say(f"\n== {self._number}. {title}")
        yield
        self._say(f"   ({time.perf_counter() - began:.1f} s)")

    def __call__(self, text: str) -> None:
        self._say("   " + text.replace("\n", "\n   "))

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self._started


def run_demo(
    folder: Path | None = None,
    *,
    say: Callable[[str], None] = print,
    steps: tuple[str, ...] = STEPS,
    example: str = FLIGHTS.example,
    env: Mapping[str, str] | None = None,
) -> DemoResult:
    """Run the lifecycle of `example`'s story in `folder` (a new temp folder by default;
    refused if not empty). `env` adds settings (KEEL_DB_URL, say) to the demo's own."""
    import yaml

    from keel.project import Project

    told = story(example)

    if folder is None:
        folder = Path(tempfile.mkdtemp(prefix="keel-demo-"))
    folder = folder.resolve()
    if folder.exists() and any(folder.iterdir()):
        raise ConfigError(
            f"{folder} is not empty: give the demo a new folder (it is kept afterwards)",
            problems=[("DIR", "must be new or empty")],
        )
    environ = {**(env or {}), "KEEL_USER": OWNER}
    _refuse_a_used_database(folder, environ)
    tell = _Narrator(say, told, environ)
    result = DemoResult(folder)
    # The server runs in this process: seeding the traffic split between production and
    # canary makes the demo tell the same story on every run.
    random.seed(told.seed)
    # The narration tells each alert; the log's copy of them is for servers and `keel watch`.
    logging.getLogger("keel.alerts").addHandler(logging.NullHandler())
    with tell.step(f"keel init --example {told.example}: the project, its data and its contract"):
        Project.init(folder, example=told.example, env=environ).close()
        spec = yaml.safe_load((folder / "keel.yaml").read_text(encoding="utf-8"))
        spec.update(told.policy)
        (folder / "keel.yaml").write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
        tell(told.init_text)
        _tell_stores(tell, folder)
        if _git(folder, "init", "-q") and _commit(folder, f"the {told.example} example"):
            tell(
                "a git repository holds the code, keel.yaml and the contract (the data is "
                "versioned by keel's snapshots): every run records its commit"
            )
    project = Project.open(folder, env=environ)
    try:
        if "release" in steps:
            _release_first(project, tell)
        if "serve" in steps:
            _serve_and_replay(project, tell, result, steps)
        if "explain" in steps:
            _explain_and_audit(project, tell, result)
    finally:
        project.close()
    tell(f"\nDone in {tell.elapsed:.0f} s. The project is in {folder}; next:")
    tell(f"  cd {folder}")
    # The comments line up at one column, whatever the model's name.
    tell(f"  keel models show {told.model}".ljust(40) + "# versions, aliases, lineage")
    tell(f"  keel audit-log {told.model}".ljust(40) + "# every release, alert and decision")
    tell("  keel alerts list --state all          # alerts with their owners")
    tell("  keel audit                            # the maturity scorecard")
    tell("  keel ui                               # all of it in the browser (sign in to approve)")
    if result.report is not None:
        tell(f"  open {result.report}  # the monitoring report")
    tell("  keel serve                            # production, canary and the prediction log")
    return result


def _refuse_a_used_database(folder: Path, environ: Mapping[str, str]) -> None:
    """The demo tells its story from an empty metadata store: a `KEEL_DB_URL` that already
    holds a project's history would mix the two, the demo's releases and approvals into
    someone's audit log. Checked before anything is written."""
    if not environ.get("KEEL_DB_URL", "").strip():
        return  # the demo's own SQLite file, in its new folder
    from keel.metadata import open_metadata_store
    from keel.settings import Settings
    from keel.spec import ProjectSpec

    url = Settings.load(folder, ProjectSpec(name="demo"), environ).db_url
    with open_metadata_store(url, upgrade=False) as store:
        if store.revision().current is None:
            return  # no keel tables yet: an empty database
        events, _ = store.audit.head()
        where = store.url
    if events:
        raise ConfigError(
            f"KEEL_DB_URL: {where} already holds a keel project's history ({events} audit "
            "events); the demo needs an empty database, nothing was written",
            problems=[("KEEL_DB_URL", "must name an empty database for the demo")],
            hint="create a new database for the demo (e.g. createdb keel_demo) and point "
            "KEEL_DB_URL at it, or unset KEEL_DB_URL for a SQLite file in the demo's folder",
        )


def _tell_stores(tell: _Narrator, folder: Path) -> None:
    """Say where the story is recorded when the environment chose the stores."""
    from keel.project import Project

    chosen = [name for name in ("KEEL_DB_URL", "KEEL_ARTIFACTS") if tell.env.get(name)]
    if not chosen:
        return
    with Project.open(folder, env=tell.env) as project:
        from keel.metadata import redact_url

        tell(
            f"recorded in {redact_url(project.settings.db_url)} and artifacts in "
            f"{project.settings.artifacts_url} ({' and '.join(chosen)} from the environment)"
        )


def _release_first(project: Project, tell: _Narrator) -> None:
    from keel.domain.identity import Actor
    from keel.pipeline.train import train
    from keel.release import approve, promote

    told = tell.story
    model = told.model
    with tell.step(f"keel train: v1 on {told.trained} (contract checked, lineage recorded)"):
        trained = train(project, as_of=told.first_as_of)
        assert trained.registered is not None
        metrics = ", ".join(f"{k} {v:.4f}" for k, v in sorted(trained.metrics.items()))
        tell(f"{trained.registered.ref} registered as candidate: {metrics} on its holdout")
    with tell.step(f"keel promote {model}@1 --to production: gates, then an approval"):
        result = promote(
            project, f"{model}@1", "production", actor=Actor(OWNER), reason="first release"
        )
        for gate in result.gates:
            reason = gate.reason.removeprefix("passed: ")
            tell(f"{'pass' if gate.passed else 'FAIL'}  {gate.gate}: {reason}")
        assert result.request is not None, result
        tell(f"pending: request {result.request.id} needs one approval from someone else")
        try:
            approve(project, result.request.id, actor=Actor(OWNER), comment="self")
        except Exception as exc:  # noqa: BLE001 - shown to the reader, the refusal is the point
            tell(f"ana approving her own request is refused: {getattr(exc, 'message', exc)}")
        decided = approve(project, result.request.id, actor=Actor(APPROVER), comment="looks good")
        tell(f"ben approves: {decided.outcome}; {model}@1 now holds production")


def _serve_and_replay(
    project: Project, tell: _Narrator, result: DemoResult, steps: tuple[str, ...]
) -> None:
    from keel.predlog.writer import open_prediction_log
    from keel.server import create_app
    from keel.web.server import run_in_thread

    told = tell.story
    model = told.model
    labels = label_service(project)
    app, serving = create_app(project, log=open_prediction_log(project))
    with run_in_thread(app) as url, contextlib.closing(Client(url)) as client:
        with tell.step(
            f"keel serve on {url}: {told.replayed_words} replayed, labels arriving later"
        ):
            for month in told.replayed:
                sent = send_month(project, told, client, month)
                serving.log.flush()
                post_labels(client, sent, labels)
                report = _monitor(project, tell, month)
                result.events.append(f"month {month}")
                result.prediction = result.prediction or sent.ids[0]
            result.report = _write_report(project, report)
            tell(f"monitoring report: {result.report}")
        if "retrain" not in steps:
            return
        _retrain(project, tell)
        _wait_for(
            lambda: (
                serving.state.routes.get(model) is not None
                and serving.state.routes[model].canary is not None
            ),
            10,
        )
        if "canary" in steps:
            with tell.step(told.canary_title):
                sent = send_month(project, told, client, told.canary_month)
                serving.log.flush()
                post_labels(client, sent, labels)
                _judge_canary(project, tell)
        if "rollback" in steps:
            with tell.step(told.rollback_title):
                _weak_canary(project, tell)
                _wait_for(lambda: serving.state.routes[model].canary is not None, 10)
                sent = send_month(project, told, client, told.rollback_month)
                serving.log.flush()
                post_labels(client, sent, labels)
                _judge_canary(project, tell)


def _monitor(project: Project, tell: _Narrator, month: str) -> Any:
    from keel.monitoring.service import WindowPlan, monitor

    told = tell.story
    # One window per replayed month: each month's traffic judged as a whole.
    plan = WindowPlan(rows=told.per_month)
    report = monitor(project, plan=plan, windows=6, actor="keel-monitor")
    window = report.windows[-1]
    drifted = ", ".join(c.removeprefix("inputs.") for c in window.drifted) or "none"
    performance = "-" if window.performance is None else f"{window.performance:.3f}"
    tell(
        f"{month}: {window.rows} predictions, {window.coverage or 0:.0%} labelled, "
        f"{told.metric_label} {performance}; drifted: {drifted}"
    )
    grouped: dict[tuple[str, str, str], list[str]] = {}
    for alert in report.opened:
        key = (alert.rule, alert.severity, alert.owner or "nobody")
        grouped.setdefault(key, []).append(alert.subject.removeprefix("inputs.") or alert.model)
    for (rule, severity, owner), subjects in grouped.items():
        tell(f"  ALERT {rule} [{severity}] on {', '.join(subjects)} -> {owner}")
    for alert in report.resolved:
        tell(f"  resolved: {alert.rule} on {alert.subject or alert.model}")
    return report


def _write_report(project: Project, report: Any) -> Path:
    from keel.monitoring.report import render_monitor_report

    path = project.settings.project_dir / "reports" / "monitor.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_monitor_report(report), encoding="utf-8")
    return path


def _retrain(project: Project, tell: _Narrator) -> None:
    from keel.contracts import infer_contract, write_contract
    from keel.data import read_table
    from keel.examples import prepare_months
    from keel.retraining.service import retrain
    from keel.retraining.triggers import evaluate_triggers

    told = tell.story
    with tell.step("keel retrain --if-triggered: production signals call for a new model"):
        for trigger in evaluate_triggers(project, told.model):
            tell(f"{'FIRED' if trigger.fired else 'quiet'} {trigger.name}: {trigger.reason}")
        directory = project.settings.project_dir
        prepare_months(directory, told.replayed, example_name=told.example)
        source = read_table(directory / "data" / "raw")
        write_contract(
            infer_contract(
                source,
                timestamp=told.timestamp,
                source=f"data/raw ({told.caught_up})",
                inferred_at=told.retrain_as_of.replace(hour=0),
            ),
            directory / "contracts" / "raw.yaml",
        )
        _commit(directory, f"contract reviewed for {told.replayed_words}")
        tell(told.review_text)
        outcome = retrain(project, if_triggered=True, as_of=told.retrain_as_of)
        comparison = outcome.comparison
        if comparison is not None:
            tell(
                f"challenger v{comparison.challenger} {comparison.metric} "
                f"{comparison.challenger_value:.4f} vs champion v{comparison.champion} "
                f"{comparison.champion_value:.4f} on the newest {comparison.rows} labelled "
                "predictions"
            )
        tell(f"decision: {outcome.decision} (recorded in the audit log as retraining.decided)")
        _approve_pending(project, tell, outcome.release, "the challenger goes on canary")


def _judge_canary(project: Project, tell: _Narrator) -> str:
    """`keel canary check` as of the end of the canary's watch (the demo's clock jumps
    there): promote (through an approval, which ben gives) or roll back."""
    from keel.domain.identity import Actor
    from keel.release import approve
    from keel.retraining.canary import act_on_canary

    model = tell.story.model
    later = datetime.now(UTC) + project.spec.retraining.canary.duration + timedelta(seconds=1)
    outcome = act_on_canary(project, model, now=later, actor="keel-canary")
    analysis = outcome.analysis
    if analysis is not None:
        for slot in (analysis.canary_slot, analysis.production_slot):
            performance = "-" if slot.performance is None else f"{slot.performance:.4f}"
            latency = "-" if slot.latency_p50_ms is None else f"{slot.latency_p50_ms:.1f} ms"
            tell(
                f"{slot.slot} v{slot.version}: {slot.predictions} predictions, median "
                f"latency {latency}, {analysis.metric} {performance} on {slot.labelled} labels"
            )
        tell(analysis.summary())
    tell(f"action: {outcome.action}")
    if outcome.request is not None:
        decided = approve(project, outcome.request.id, actor=Actor(APPROVER), comment="canary ok")
        tell(f"the promotion to production waits for approval: ben approves ({decided.outcome})")
        again = act_on_canary(project, model, now=later, actor="keel-canary")
        tell(f"next check: {again.action}")
    holders = {
        alias: project.metadata.releases.holder(model, alias) for alias in ("production", "canary")
    }
    canary = "none" if holders["canary"] is None else f"v{holders['canary']}"
    tell(f"now: production v{holders['production']}, canary {canary}")
    return outcome.action


def _weak_canary(project: Project, tell: _Narrator) -> None:
    import yaml

    from keel.domain.identity import Actor
    from keel.pipeline.train import train
    from keel.project import Project as Opened
    from keel.release import promote

    folder = project.settings.project_dir
    path = folder / "keel.yaml"
    spec = yaml.safe_load(path.read_text(encoding="utf-8"))
    kept = spec["training"]["params"]
    spec["training"]["params"] = dict(tell.story.weak_params)
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    try:
        with Opened.open(folder, env=tell.env) as weak:
            trained = train(weak, as_of=tell.story.retrain_as_of)
            assert trained.registered is not None
            result = promote(
                weak,
                trained.registered.ref,
                "canary",
                actor=Actor(OWNER),
                reason="try a cheaper model",
            )
    finally:
        spec["training"]["params"] = kept
        path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    tell(f"{trained.registered.ref}, one tiny tree, asks for canary: {result.outcome}")
    _approve_pending(project, tell, result, "a cheaper model is worth a try")


def _approve_pending(project: Project, tell: _Narrator, release: Any, comment: str) -> None:
    """Ben approves a release request the narration has just shown."""
    from keel.domain.identity import Actor
    from keel.release import approve

    if release is None or release.outcome != "pending" or release.request is None:
        return
    decided = approve(project, release.request.id, actor=Actor(APPROVER), comment=comment)
    tell(
        f"{release.ref} -> {release.alias} needs approval (release.approvals covers canary "
        f"too): ben approves ({decided.outcome})"
    )


def _wait_for(check: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)


def _explain_and_audit(project: Project, tell: _Narrator, result: DemoResult) -> None:
    from keel.serving.explain import explain_prediction

    with tell.step("keel explain: which data, code and environment produced a prediction"):
        if result.prediction is not None:
            chain = explain_prediction(project, result.prediction)
            tell(_lineage(chain))
    with tell.step("keel audit-log verify: every release, alert and decision, hash-chained"):
        events = project.metadata.audit.events(after=0)
        kinds: dict[str, int] = {}
        for event in events:
            kinds[event.kind] = kinds.get(event.kind, 0) + 1
        tell(", ".join(f"{kind} x{count}" for kind, count in sorted(kinds.items())))
        report = project.metadata.audit.verify()
        tell(f"chain verified: {report.ok} ({len(events)} events)")
    with tell.step("keel audit: the project's maturity scorecard, from its real state"):
        from keel.maturity import scorecard

        card = scorecard(project)
        tell(f"level {card.level} ({card.level_name}), score {card.score}/{card.max_score}")
        for item in card.items:
            if item.status != "pass":
                tell(f"{item.status.upper():7} {item.key}: {item.evidence}")
                if item.fix:
                    tell(f"        fix: {item.fix}")
        result.scorecard = card


def _git(folder: Path, *args: str) -> bool:
    """Run git in `folder` as a demo user; False when git is absent or fails."""
    from keel.code.git import run_git

    identity = ("-c", "user.name=keel demo", "-c", "user.email=demo@keel.invalid")
    done = run_git(folder, *identity, "-c", "commit.gpgsign=false", *args)
    return done is not None and done.returncode == 0


def _commit(folder: Path, message: str) -> bool:
    """Commit the code, keel.yaml and contracts (data and reports stay out of git)."""
    ignore = folder / ".gitignore"
    lines = ignore.read_text(encoding="utf-8").splitlines() if ignore.exists() else []
    missing = [entry for entry in (".keel/", "data/", "reports/") if entry not in lines]
    if missing:
        ignore.write_text("\n".join([*lines, *missing]) + "\n", encoding="utf-8")
    return _git(folder, "add", "-A") and _git(folder, "commit", "-q", "-m", message)


def _lineage(chain: dict[str, Any]) -> str:
    """The chain `keel explain` prints, in a few lines."""
    prediction = chain.get("prediction", {})
    model = chain.get("model", {})
    lineage = chain.get("run", {}).get("lineage", {})
    release = chain.get("release", {})
    lines = [
        f"prediction {prediction.get('id')} at {prediction.get('at')} "
        f"({prediction.get('slot')}): {prediction.get('outputs')}",
        f"  model:        {model.get('ref')} (package {model.get('package')})",
        f"  run:          {model.get('run_id')}",
        f"  dataset:      {lineage.get('dataset')}",
        f"  feature code: {lineage.get('feature_code_hash')}",
        f"  train code:   {lineage.get('training_code_hash')}",
        f"  git commit:   {lineage.get('git_commit') or 'not a git checkout'}",
        f"  environment:  {lineage.get('environment')}",
    ]
    for entry in release.get("releases", [])[:1]:
        approvals = ", ".join(str(a.get("actor")) for a in entry.get("approvals", []))
        lines.append(
            f"  released:     to {entry.get('alias')} on request {entry.get('request')} by "
            f"{entry.get('requested_by')}, approved by {approvals or '-'}"
        )
    lines.append("  (all of it: keel explain PREDICTION_ID --json)")
    return "\n".join(lines)
