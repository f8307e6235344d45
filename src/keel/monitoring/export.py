"""Prometheus alerting rules and a Grafana dashboard for what `keel serve` exposes on `/metrics`.

`keel export prometheus-rules` turns each alert rule of keel.yaml into a Prometheus rule on
the series the monitoring collector exposes (`keel.monitoring.prometheus`), so Alertmanager
pages the same people keel names, and adds rules on serving health: server errors, refused
requests, p99 latency, no traffic, model load failures, and monitoring itself going quiet.

`keel export grafana` writes a dashboard (Grafana schema 39) over the same series, with its
Prometheus datasource left as the `${DS_PROMETHEUS}` input that Grafana asks for on import; the
dashboard is a JSON document shipped beside this module (`templates/grafana.json`).

Both are plain documents (dicts) built from the project's spec; the CLI writes them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from importlib import resources
from typing import Any, Final, Protocol

import yaml

from keel.domain.monitoring import SIGNALS
from keel.monitoring.prometheus import SERIES, series_for, subject_label

__all__ = [
    "AlertRuleLike",
    "ServingLimits",
    "alert_rules",
    "grafana_dashboard",
    "prometheus_rules",
    "promql_duration",
    "render_rules",
]


class AlertRuleLike(Protocol):
    """What the export reads of an alert rule of keel.yaml (`monitoring.alerts`)."""

    @property
    def name(self) -> str: ...
    @property
    def signal(self) -> str: ...
    @property
    def threshold(self) -> float: ...
    @property
    def direction(self) -> str: ...  # "above" | "below"
    @property
    def severity(self) -> str: ...
    @property
    def windows(self) -> int: ...
    @property
    def owner(self) -> str | None: ...


@dataclass(frozen=True)
class ServingLimits:
    """Where the serving-health rules fire."""

    server_error_ratio: float = 0.01  # 5xx share of requests over 5 minutes
    refused_ratio: float = 0.25  # 4xx share: callers sending what the contract refuses
    latency_p99_seconds: float = 1.0
    silence: timedelta = timedelta(hours=1)  # a served model without one prediction


_STAGES: Final = ("data", "training", "release", "monitoring")
_RATE: Final = "5m"


def alert_rules(spec: Any) -> list[Any]:
    """The project's alert rules: `monitoring.alerts` of keel.yaml, or keel's defaults."""
    from keel.monitoring.alerts import effective_rules

    return list(effective_rules(spec))


def promql_duration(duration: timedelta) -> str:
    """A Prometheus duration: `1d12h`, `90s`, `250ms`."""
    ms = round(duration.total_seconds() * 1000)
    if ms <= 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        amount, ms = divmod(ms, size)
        if amount:
            parts.append(f"{amount}{unit}")
    if ms:
        parts.append(f"{ms}ms")
    return "".join(parts)


def _number(value: float) -> str:
    text = repr(float(value))
    return text.removesuffix(".0") if text.endswith(".0") else text


def _quote(value: str) -> str:
    """A PromQL string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _glob_regex(pattern: str) -> str:
    """A keel.yaml subject glob (`inputs.*`, `outputs.?`) as an RE2 regex (Prometheus anchors
    label regexes at both ends)."""
    out = []
    for char in pattern:
        if char == "*":
            out.append(".*")
        elif char == "?":
            out.append(".")
        else:
            out.append(re.escape(char))
    return "".join(out)


def _alert_name(rule_name: str, taken: set[str]) -> str:
    """`feature-drift` -> `KeelFeatureDrift` (alert names are metric names), unique."""
    words = [w for w in re.split(r"[^A-Za-z0-9]+", rule_name) if w]
    base = "Keel" + "".join(w[:1].upper() + w[1:] for w in words)
    name, n = base, 2
    while name in taken:
        name, n = f"{base}{n}", n + 1
    taken.add(name)
    return name


def _owner(owner: str | None, owners: Mapping[str, str | None]) -> str:
    """A stage (`monitoring`) resolves to the person keel.yaml names for it."""
    if not owner:
        return owners.get("monitoring") or "monitoring"
    if owner in _STAGES:
        return owners.get(owner) or owner
    return owner


def _for(rule: Any, window: timedelta) -> timedelta:
    explicit = getattr(rule, "for_", None)
    if isinstance(explicit, timedelta):
        return explicit
    # The series holds the newest window's value: N consecutive windows over the threshold
    # means it stayed over for N - 1 window lengths after the first.
    windows = max(1, int(getattr(rule, "windows", 1) or 1))
    return window * (windows - 1)


def _rule_expr(rule: Any) -> tuple[str, str]:
    """The PromQL of a keel.yaml rule, and the words for its subject in annotations.

    With a threshold, the signal's series is compared with it; without one the signal's own
    verdict decides, as in keel: the series is kept where `keel_signal_breached` is 1, so
    `$value` is still the signal's value.
    """
    series, matchers = series_for(rule.signal)
    label = subject_label(rule.signal)
    pattern = getattr(rule, "subject", None)
    selectors = [f"{key}={_quote(value)}" for key, value in matchers.items()]
    model = getattr(rule, "model", None)
    if model:
        selectors.append(f"model={_quote(model)}")
    if label is not None and pattern and pattern != "*":
        if any(c in pattern for c in "*?["):
            selectors.append(f"{label}=~{_quote(_glob_regex(pattern))}")
        else:
            selectors.append(f"{label}={_quote(pattern)}")
    selector = series + ("{" + ", ".join(selectors) + "}" if selectors else "")
    if rule.threshold is not None:
        op = "<" if rule.direction == "below" else ">"
        expr = f"{selector} {op} {_number(rule.threshold)}"
    else:
        versioned = SERIES[rule.signal].versioned if rule.signal in SERIES else True
        keys = ["model", *(["version"] if versioned else []), *([label] if label else [])]
        verdict = f"keel_signal_breached{{signal={_quote(rule.signal)}}} == 1"
        if label is not None and label != "subject":
            verdict = f'label_replace({verdict}, "{label}", "$1", "subject", "(.*)")'
        expr = f"{selector} and on ({', '.join(keys)}) ({verdict})"
    subject = f" {{{{ $labels.{label} }}}}" if label is not None else ""
    if label == "feature":
        subject = " of feature" + subject
    return expr, subject


def _monitoring_rule(
    rule: Any, name: str, owners: Mapping[str, str | None], window: timedelta
) -> dict[str, Any]:
    expr, subject = _rule_expr(rule)
    meaning = re.sub(r"\s*\(.*\)$", "", SIGNALS.get(rule.signal, rule.signal))
    meaning = meaning.removeprefix("the ")
    direction = "below" if rule.direction == "below" else "above"
    document: dict[str, Any] = {"alert": name, "expr": expr}
    hold = _for(rule, window)
    if hold > timedelta(0):
        document["for"] = promql_duration(hold)
    document["labels"] = {
        "severity": str(rule.severity),
        "owner": _owner(rule.owner, owners),
        "rule": rule.name,
        "signal": rule.signal,
        "source": "keel",
    }
    # Ages read as durations; drift statistics, shares and metrics as plain numbers
    # (humanize would write a drift of 0.3 as "300m").
    value = (
        "{{ $value | humanizeDuration }}"
        if rule.signal.endswith("_age")
        else '{{ $value | printf "%.3g" }}'
    )
    if rule.threshold is not None:
        threshold = (
            promql_duration(timedelta(seconds=rule.threshold))
            if rule.signal.endswith("_age")
            else _number(rule.threshold)
        )
        limit = f"{direction} {threshold}"
        verdict = f"{direction} the rule's threshold {threshold}"
    else:
        limit = "past its limit"
        verdict = "past the signal's own limit (the test's threshold or keel's tolerance)"
    document["annotations"] = {
        "summary": (f"{{{{ $labels.model }}}}: {rule.signal}{subject} is {value} ({limit})"),
        "description": (
            f"keel alert rule {rule.name}: the {meaning} ({rule.signal}{subject}) of model "
            f"{{{{ $labels.model }}}} is {value} in the newest monitored "
            f"window, {verdict}. `keel monitor --report FILE.html` shows the windows behind it."
        ),
    }
    return document


def _health(
    alert: str,
    expr: str,
    hold: str | None,
    severity: str,
    owner: str,
    summary: str,
    description: str,
) -> dict[str, Any]:
    document: dict[str, Any] = {"alert": alert, "expr": expr}
    if hold:
        document["for"] = hold
    document["labels"] = {"severity": severity, "owner": owner, "source": "keel"}
    document["annotations"] = {"summary": summary, "description": description}
    return document


def _serving_rules(
    owners: Mapping[str, str | None], window: timedelta, limits: ServingLimits, *, age: bool
) -> list[dict[str, Any]]:
    def rate(series: str, by: str = "model") -> str:
        return f"sum by ({by}) (rate({series}[{_RATE}]))"

    errors = "keel_request_errors_total"
    # Answered plus refused; a model refusing every request has no keel_requests_total series
    # (and one never refusing none of errors), hence the `or ... * 0` on each side.
    answered, refused = rate("keel_requests_total"), rate(errors)
    total = f"({answered} or {refused} * 0) + ({refused} or {answered} * 0)"
    release = _owner("release", owners)
    monitoring = _owner("monitoring", owners)
    data = _owner("data", owners)
    model = "{{ $labels.model }}"
    value = "{{ $value | humanizePercentage }}"
    silence = promql_duration(limits.silence)
    stale = 2 * window.total_seconds() + 3600
    rules = [
        _health(
            "KeelServerErrors",
            f"{rate(errors + '{status=~' + _quote('5..') + '}')} / ({total})"
            f" > {_number(limits.server_error_ratio)}",
            "5m",
            "critical",
            release,
            f"{model}: {value} of requests fail with a server error",
            "keel serve answered more than "
            f"{_number(limits.server_error_ratio * 100)}% of {model}'s requests with a 5xx "
            "status over 5 minutes. Its log and `keel status` say why.",
        ),
        _health(
            "KeelRequestsRefused",
            f"{rate(errors + '{status=~' + _quote('4..') + '}')} / ({total})"
            f" > {_number(limits.refused_ratio)}",
            "15m",
            "warning",
            data,
            f"{model}: {value} of requests refused",
            "More than "
            f"{_number(limits.refused_ratio * 100)}% of {model}'s requests were refused "
            "(4xx): callers send inputs the inference contract does not accept. The `rule` "
            "label of keel_request_errors_total names what they break.",
        ),
        _health(
            "KeelSlowPredictions",
            "histogram_quantile(0.99, "
            f"{rate('keel_request_seconds_bucket', 'model, le')})"
            f" > {_number(limits.latency_p99_seconds)}",
            "10m",
            "warning",
            release,
            f"{model}: p99 latency is {{{{ $value | humanizeDuration }}}}",
            f"The 99th percentile of {model}'s request latency stayed above "
            f"{_number(limits.latency_p99_seconds)} s for 10 minutes.",
        ),
        _health(
            "KeelNoPredictions",
            'sum by (model) (keel_model_served{slot="production"}) > 0 unless on (model) '
            f"{rate('keel_predictions_total')} > 0",
            silence,
            "warning",
            monitoring,
            f"{model} is served but made no prediction for {silence}",
            f"keel serve serves {model} in production and answered no prediction for "
            f"{silence}: callers stopped calling, or cannot reach it.",
        ),
        _health(
            "KeelPredictionLogStale",
            f"keel_prediction_age_seconds > {_number(limits.silence.total_seconds())}",
            None,
            "warning",
            monitoring,
            f"{model}: newest logged prediction is {{{{ $value | humanizeDuration }}}} old",
            f"When `keel monitor` last ran, the newest prediction logged for {model} "
            f"was older than {silence}: nothing is being predicted, or logged.",
        ),
        _health(
            "KeelModelLoadFailed",
            "increase(keel_model_load_failures_total[15m]) > 0",
            None,
            "warning",
            release,
            f"{model} v{{{{ $labels.version }}}} failed to load",
            f"keel serve could not load or warm version {{{{ $labels.version }}}} of {model}; "
            "the previous version kept serving.",
        ),
        _health(
            "KeelMonitoringStoreDown",
            "keel_monitoring_up == 0",
            "10m",
            "warning",
            monitoring,
            "keel cannot read monitoring results from its metadata store",
            "The /metrics scrape of keel serve could not read the metadata store for 10 "
            "minutes: drift, performance and alert series are missing.",
        ),
        _health(
            "KeelMonitorNotRunning",
            f"time() - keel_monitor_last_run_timestamp_seconds > {_number(stale)}",
            None,
            "warning",
            monitoring,
            f"keel monitor has not run for {model} in {{{{ $value | humanizeDuration }}}}",
            f"No monitored window was recorded for {model} for more than two windows "
            f"({promql_duration(window)} each): drift and performance alerts cannot fire. "
            "Is `keel monitor` still scheduled?",
        ),
    ]
    # keel.yaml's own prediction_age rule (monitoring.freshness.predictions) supersedes it.
    return [r for r in rules if age or r["alert"] != "KeelPredictionLogStale"]


def prometheus_rules(
    rules: Iterable[Any],
    *,
    owners: Mapping[str, str | None] | None = None,
    window: timedelta = timedelta(days=1),
    limits: ServingLimits | None = None,
) -> dict[str, Any]:
    """A Prometheus rule file (`groups:`) for keel.yaml's alert rules and serving health.

    `rules` are alert rules of keel.yaml (read by attribute: name, signal, threshold,
    direction, severity, windows, owner, and optional subject glob, for_ and model);
    `owners` maps stages (data, training, release, monitoring) to the people named in
    keel.yaml's `owners:`; `window` is how often the monitor records a window.
    """
    owners = dict(owners or {})
    taken: set[str] = set()
    rules = list(rules)
    monitoring = [_monitoring_rule(r, _alert_name(r.name, taken), owners, window) for r in rules]
    age = not any(r.signal == "prediction_age" for r in rules)
    groups: list[dict[str, Any]] = []
    if monitoring:
        groups.append({"name": "keel-monitoring", "rules": monitoring})
    groups.append(
        {
            "name": "keel-serving",
            "rules": _serving_rules(owners, window, limits or ServingLimits(), age=age),
        }
    )
    return {"groups": groups}


def render_rules(document: Mapping[str, Any]) -> str:
    header = (
        "# Prometheus alerting rules generated by `keel export prometheus-rules` from keel.yaml.\n"
        "# Regenerate after changing monitoring.alerts or owners rather than editing by hand.\n"
    )
    return header + yaml.safe_dump(dict(document), sort_keys=False, width=10_000)


# --- Grafana --------------------------------------------------------------------------------

#: The dashboard as Grafana itself exports one (edit it in Grafana, export it, save it here):
#: its datasource is the `${DS_PROMETHEUS}` input Grafana asks for on import, and `model` a
#: template variable, so one document fits every project.
_DASHBOARD: Final = "templates/grafana.json"


def grafana_dashboard(*, title: str = "keel: serving and monitoring") -> dict[str, Any]:
    """A Grafana dashboard over keel's series; `model` is a template variable (all by default)."""
    text = resources.files("keel.monitoring").joinpath(_DASHBOARD).read_text(encoding="utf-8")
    document: dict[str, Any] = json.loads(text)
    document["title"] = title
    return document
