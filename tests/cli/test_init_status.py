"""`keel init` and `keel status`: a project from nothing, and clear errors for broken specs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest

from keel.cli.main import cli
from tests.cli.conftest import Keel


def test_init_then_status_json_in_an_empty_folder(keel: Keel, tmp_path: Path) -> None:
    created = keel("init", "--json")
    assert created.code == 0, created.err
    assert created.json()["project"]["dir"] == str(tmp_path.resolve())
    assert (tmp_path / "keel.yaml").is_file()
    assert ".keel/" in (tmp_path / ".gitignore").read_text()

    status = keel("status", "--json")
    assert status.code == 0, status.out + status.err
    report = status.json()
    assert report["ok"] is True
    assert report["user"] == "ana"
    assert report["stores"]["metadata"]["backend"] == "sqlite"
    assert report["stores"]["metadata"]["ok"] is True
    assert report["stores"]["artifacts"]["backend"] == "local"
    assert report["stores"]["artifacts"]["ok"] is True
    assert report["schema"]["revision"] == report["schema"]["head"]
    assert (tmp_path / ".keel" / "keel.db").is_file()


def test_init_into_a_named_folder_and_human_status(keel: Keel, tmp_path: Path) -> None:
    assert keel("init", "My Model").code == 0
    status = keel("--project", tmp_path / "My Model", "status")
    assert status.code == 0
    assert "my-model" in status.out
    assert "metadata" in status.out and "artifacts" in status.out


def test_init_refuses_to_overwrite(keel: Keel, tmp_path: Path) -> None:
    assert keel("init").code == 0
    spec = tmp_path / "keel.yaml"
    spec.write_text(spec.read_text() + "# my edits\n")
    again = keel("init")
    assert again.code == 4
    assert "already exists" in again.err and "--force" in again.err
    assert spec.read_text().endswith("# my edits\n")  # nothing changed
    assert keel("init", "--force").code == 0
    assert not spec.read_text().endswith("# my edits\n")


def test_init_with_invalid_name_changes_nothing(keel: Keel, tmp_path: Path) -> None:
    result = keel("init", "--name", "Not Valid!", "--json")
    assert result.code == 2
    problem = result.json()["error"]["problems"][0]
    assert (problem["field"], problem["key"]) == ("name", "name")  # the API's name, and the old
    assert not (tmp_path / "keel.yaml").exists()


@pytest.mark.parametrize(
    ("spec", "key", "rule"),
    [
        ("name: x\nrelease:\n  gates: 12\n", "release.gates", "expected a list, got 12"),
        ("name: x\nmonitoring:\n  windw: 1d\n", "monitoring.windw", "did you mean 'window'?"),
        ("name: x\nname: y\n", "(top level)", "duplicate key 'name'"),
        ("name: x\n  broken: [\n", "(top level)", "not valid YAML"),
    ],
)
def test_broken_spec_names_the_key_path(
    keel: Keel, tmp_path: Path, spec: str, key: str, rule: str
) -> None:
    (tmp_path / "keel.yaml").write_text(spec)
    text = keel("status")
    assert text.code == 2
    assert rule in text.err
    assert "Traceback" not in text.err + text.out
    as_json = keel("status", "--json")
    assert as_json.code == 2
    error = as_json.json()["error"]
    assert error["code"] == "config_error"
    assert any(p["key"] == key and rule in p["rule"] for p in error["problems"])
    assert not (tmp_path / ".keel").exists()  # a broken spec opens no store


def test_no_project_says_how_to_make_one(keel: Keel) -> None:
    result = keel("status")
    assert result.code == 2
    assert "no keel.yaml" in result.err
    assert "keel init" in result.err


def test_unknown_keel_variable_is_warned(keel: Keel, monkeypatch: pytest.MonkeyPatch) -> None:
    assert keel("init").code == 0
    monkeypatch.setenv("KEEL_DB_ULR", "sqlite:///elsewhere.db")
    report = keel("status", "--json").json()
    assert any("KEEL_DB_ULR" in warning for warning in report["warnings"])


def test_unreachable_database_is_reported_not_raised(
    keel: Keel, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert keel("init").code == 0
    monkeypatch.setenv("KEEL_DB_URL", "postgresql://keel:s3cret@127.0.0.1:1/keel")
    result = keel("status", "--json")
    assert result.code == 1
    report = result.json()
    assert report["ok"] is False
    assert report["stores"]["metadata"]["ok"] is False
    assert "127.0.0.1" in report["stores"]["metadata"]["detail"]
    assert "s3cret" not in result.out
    assert report["stores"]["artifacts"]["ok"] is True


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    found: list[tuple[str, click.Command]] = []
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        assert command is not None, name
        if isinstance(command, click.Group):
            found.extend(_commands(command, f"{prefix}{name} "))
        else:
            found.append((f"{prefix}{name}", command))
    return found


@pytest.mark.parametrize(("name", "command"), _commands(cli))
def test_every_command_has_json(name: str, command: click.Command) -> None:
    assert "--json" in [opt for param in command.params for opt in getattr(param, "opts", [])], name


def test_console_script_and_module_entry_point(tmp_path: Path) -> None:
    keel_bin = Path(sys.executable).with_name("keel")
    version = subprocess.run([keel_bin, "--version"], capture_output=True, text=True, check=True)
    assert "keel" in version.stdout
    missing = subprocess.run(
        [sys.executable, "-m", "keel", "status"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "KEEL_USER": "ana"},
    )
    assert missing.returncode == 2
    assert "no keel.yaml" in missing.stderr
    assert "Traceback" not in missing.stderr
