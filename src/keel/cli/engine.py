"""`--engine` and `--spark-master`, as every command with work Spark can do takes them."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from keel.spec import EngineSpec

__all__ = ["asked_engine", "chosen_engine", "engine_options"]

F = TypeVar("F", bound=Callable[..., Any])


def _master(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    from keel.spec import check_spark_master

    try:
        return check_spark_master(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def engine_options(spark_does: str) -> Callable[[F], F]:
    """The two options; `spark_does` says what `--engine spark` does for this command."""

    def decorate(command: F) -> F:
        command = click.option(
            "--spark-master",
            callback=_master,
            metavar="URL",
            help="The Spark master for --engine spark (local[2], spark://HOST:7077, yarn); "
            "default: keel.yaml's engine.master, else spark-submit's, else local[*].",
        )(command)
        return click.option(
            "--engine",
            type=click.Choice(["local", "spark"]),
            default=None,
            help=f"Where the work runs: local (this process) or spark ({spark_does}; the spark "
            "extra). Default: keel.yaml's engine.kind, else local.",
        )(command)

    return decorate


def chosen_engine(base: EngineSpec, engine: str | None, spark_master: str | None) -> EngineSpec:
    """keel.yaml's engine section (`base`) with the options' overrides."""
    chosen = base
    if engine is not None:
        chosen = chosen.model_copy(update={"kind": engine})
    if spark_master is not None:
        if chosen.kind != "spark":
            raise click.BadParameter(
                "needs --engine spark (or engine.kind: spark in keel.yaml)",
                param_hint="--spark-master",
            )
        chosen = chosen.model_copy(update={"master": spark_master})
    return chosen


def asked_engine(
    base: EngineSpec, engine: str | None, spark_master: str | None
) -> EngineSpec | None:
    """`chosen_engine` when either option is given, else None: the verb then applies
    keel.yaml's engine by its own rules (to files and manifests; a dataset version or a
    copy stays in this process)."""
    if engine is None and spark_master is None:
        return None
    return chosen_engine(base, engine, spark_master)
