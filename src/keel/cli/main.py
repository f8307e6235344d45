"""`keel`: the entry point. Parses, runs one command, maps errors to exit codes."""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

import click

from keel.cli.context import CliContext
from keel.cli.errors import EXIT_INTERNAL, EXIT_USAGE, exit_code_for
from keel.cli.output import json_stdout
from keel.errors import ConfigError, DependencyMissing, KeelError, UserCodeError, error_code
from keel.version import __version__

__all__ = ["COMMANDS", "cli", "main"]

#: Command name -> "module:attribute". Imported only when the command runs (or for --help),
#: so `keel --version` and a small command never pay for pyarrow or SQLAlchemy.
COMMANDS = {
    "init": "keel.cli.commands.init:init",
    "status": "keel.cli.commands.status:status",
    "data": "keel.cli.commands.data:data",
    "contract": "keel.cli.commands.contract:contract",
    "train": "keel.cli.commands.train:train_command",
    "artifacts": "keel.cli.commands.artifacts:artifacts",
    "db": "keel.cli.commands.db:db",
    "runs": "keel.cli.commands.runs:runs",
    "models": "keel.cli.commands.models:models",
    "lineage": "keel.cli.commands.lineage:lineage",
    "reproduce": "keel.cli.commands.reproduce:reproduce_command",
    "promote": "keel.cli.commands.release:promote_command",
    "approve": "keel.cli.commands.release:approve_command",
    "reject": "keel.cli.commands.release:reject_command",
    "rollback": "keel.cli.commands.release:rollback_command",
    "requests": "keel.cli.commands.release:requests",
    "audit-log": "keel.cli.commands.release:audit_log",
    "serve": "keel.cli.commands.serve:serve",
    "ui": "keel.cli.commands.ui:ui",
    "users": "keel.cli.commands.users:users",
    "tokens": "keel.cli.commands.tokens:tokens",
    "webhooks": "keel.cli.commands.webhooks:webhooks",
    "predict-batch": "keel.cli.commands.predict_batch:predict_batch",
    "explain": "keel.cli.commands.explain:explain",
    "predictions": "keel.cli.commands.predictions:predictions",
    "feedback": "keel.cli.commands.feedback:feedback",
    "drift": "keel.cli.commands.drift:drift",
    "export": "keel.cli.commands.export:export",
    "monitor": "keel.cli.commands.monitor:monitor",
    "alerts": "keel.cli.commands.monitor:alerts",
    "retrain": "keel.cli.commands.retrain:retrain",
    "watch": "keel.cli.commands.retrain:watch",
    "canary": "keel.cli.commands.canary:canary",
    "demo": "keel.cli.commands.demo:demo",
    "skew": "keel.cli.commands.skew:skew",
    "ci": "keel.cli.commands.ci:ci",
    "smoke-test": "keel.cli.commands.ci:smoke_test",
    "contract-test": "keel.cli.commands.ci:contract_test",
    "deploy": "keel.cli.commands.deploy:deploy",
    "env": "keel.cli.commands.deploy:env",
    "owners": "keel.cli.commands.audit:owners",
    "audit": "keel.cli.commands.audit:audit",
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, _, attribute = target.partition(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{target} is not a click command")  # a wiring bug in keel
        return command


@click.group(
    cls=_LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--project",
    "-C",
    "project_path",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The project folder (default: KEEL_PROJECT, or the nearest keel.yaml upwards).",
)
@click.version_option(__version__, "--version", prog_name="keel")
@click.pass_context
def cli(ctx: click.Context, project_path: Path | None) -> None:
    """keel: contracts, versioned data, gated releases, serving, monitoring and retraining
    for machine-learning models, in one tool."""
    ctx.obj = CliContext(project_path=project_path)


def _report(error: KeelError, *, as_json: bool) -> None:
    if as_json:
        document: dict[str, object] = {
            "ok": False,
            "error": {"code": error_code(error).code, "message": error.message, "hint": error.hint},
        }
        if isinstance(error, ConfigError) and error.problems:
            document["error"] = {
                **document["error"],  # type: ignore[dict-item]
                # `field` as the HTTP API and the server name it; `key`, the same, kept for
                # scripts written before the two agreed.
                "problems": [
                    {"field": key, "key": key, "rule": rule} for key, rule in error.problems
                ],
            }
        if isinstance(error, UserCodeError):
            document["error"] = {
                **document["error"],  # type: ignore[dict-item]
                "entry_point": error.entry_point,
                "file": error.file,
                "line": error.line,
                "exception": error.exception,
                "expected": error.expected,
                "extra": error.extra,
            }
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
        return
    click.secho(f"error: {error.message}", fg="red", err=True)
    if error.hint:
        click.echo(f"hint: {error.hint}", err=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code (the console script exits with it)."""
    args = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in args
    try:
        if as_json:
            # The document goes to stdout and everything else (a print in the project's own
            # code, a library's chatter) to stderr, so a script can parse what it reads.
            token = json_stdout.set(sys.stdout)
            try:
                with contextlib.redirect_stdout(sys.stderr):
                    result = cli.main(args=args, prog_name="keel", standalone_mode=False)
            finally:
                json_stdout.reset(token)
        else:
            result = cli.main(args=args, prog_name="keel", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        if as_json:
            _report(ConfigError(exc.format_message()), as_json=True)
        else:
            exc.show()
        return exc.exit_code if exc.exit_code else EXIT_USAGE
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except KeelError as exc:
        _report(exc, as_json=as_json)
        return exit_code_for(exc)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no traceback for users
        if os.environ.get("KEEL_DEBUG", "").lower() in {"1", "true", "yes", "on"}:
            traceback.print_exc()
        missing = _missing_extra(exc)
        if missing is not None:
            _report(missing, as_json=as_json)
            return exit_code_for(missing)
        internal = KeelError(
            f"internal error: {type(exc).__name__}: {exc}",
            hint="this is a bug in keel; rerun with KEEL_DEBUG=1 for the traceback and report it",
        )
        _report(internal, as_json=as_json)
        return EXIT_INTERNAL
    return result if isinstance(result, int) else 0


def _missing_extra(exc: Exception) -> DependencyMissing | None:
    """A library a keel extra installs (scikit-learn, skops, ...) that keel itself needed and
    could not import: not a bug, but `pip install keelml` without that extra."""
    from keel.code.usercode import EXTRA_FOR_MODULE

    if not isinstance(exc, ModuleNotFoundError) or not exc.name:
        return None
    package = exc.name.partition(".")[0]
    extra = EXTRA_FOR_MODULE.get(package)
    if extra is None:
        return None
    return DependencyMissing(
        {"sklearn": "scikit-learn"}.get(package, package), extra, "This command"
    )


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
