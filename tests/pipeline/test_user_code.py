"""The project's own code fails: keel names the entry point, the file and line, the exception
and what it expected, and exits 9, wherever it called that code (train, smoke test, batch
scoring, serving); it never calls the user's mistake a bug in keel."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from keel.cli.errors import EXIT_USER_CODE
from keel.project import Project
from tests.fixtures.cli import Keel, Result

SPEC = """\
name: toy
data:
  source: raw.parquet
  target: label
features: {entry_point: "features:build"}
training:
  entry_point: "train:train"
  params: {C: 1.0}
  split: {method: random, seed: 3}
metrics: [roc_auc]
"""

FEATURES = """\
import pandas as pd


def build(raw: pd.DataFrame) -> pd.DataFrame:
    if (raw["x1"] < -1000).any():
        raise ValueError("x1 below -1000 cannot be scaled")
    return raw[["x1", "x2"]] * 2.0
"""

TRAIN = """\
from sklearn.linear_model import LogisticRegression


def train(ctx, features, target):
    c = float(ctx.params["C"])
    if c <= 0:
        raise ValueError(f"bad hyperparameter C={c:g}")
    return LogisticRegression(C=c).fit(features, target)
"""


def _raw(rows: int = 400) -> pa.Table:
    rng = np.random.default_rng(5)
    x1, x2 = rng.normal(size=rows), rng.normal(size=rows)
    label = (x1 + 0.5 * x2 + rng.normal(scale=0.5, size=rows) > 0).astype("int64")
    return pa.table({"x1": x1, "x2": x2, "label": label})


@pytest.fixture
def toy(keel: Keel, tmp_path: Path) -> Path:
    assert keel("init").code == 0
    (tmp_path / "keel.yaml").write_text(SPEC)
    (tmp_path / "features.py").write_text(FEATURES)
    (tmp_path / "train.py").write_text(TRAIN)
    pq.write_table(_raw(), tmp_path / "raw.parquet")
    return tmp_path


def _line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def _user_error(result: Result) -> dict[str, Any]:
    assert result.code == EXIT_USER_CODE == 9, result.out + result.err
    error: dict[str, Any] = result.json()["error"]
    assert error["code"] == "user_code_error"
    assert "bug in keel" not in json.dumps(error)
    return error


def test_an_exception_in_train_names_the_entry_point_file_and_line(keel: Keel, toy: Path) -> None:
    (toy / "keel.yaml").write_text(SPEC.replace("C: 1.0", "C: -1"))
    error = _user_error(keel("train", "--json"))
    assert error["entry_point"] == "train:train"
    assert error["file"] == "train.py"
    assert error["line"] == _line_of(toy / "train.py", "raise ValueError")
    assert error["exception"] == "ValueError"
    assert "bad hyperparameter C=-1" in error["message"]

    text = keel("train")
    assert text.code == 9
    assert "train:train failed in train.py, line 7: ValueError: bad hyperparameter C=-1" in text.err
    assert "internal error" not in text.err and "bug in keel" not in text.err


@pytest.mark.parametrize(
    ("body", "got"),
    [
        ("    return raw[['x1', 'x2']].to_numpy()\n", "returned numpy.ndarray"),
        ("    raw.copy()\n", "returned None"),
        ("    return raw.iloc[:10]\n", "returned 10 rows for 400 raw rows"),
        ("    return raw.sort_values('x1')[['x1']]\n", "reordered"),
    ],
)
def test_features_returning_what_keel_cannot_use_says_what_it_expected(
    keel: Keel, toy: Path, body: str, got: str
) -> None:
    (toy / "features.py").write_text(f"import pandas as pd\n\n\ndef build(raw):\n{body}")
    error = _user_error(keel("train", "--json"))
    assert error["entry_point"] == "features:build"
    assert (error["file"], error["line"]) == ("features.py", 4)
    assert got in error["message"]
    assert (
        "features.build must return a pandas DataFrame with one row per raw row"
        in (error["message"])
    )


@pytest.mark.parametrize(
    ("body", "got"),
    [("    return None\n", "returned None"), ("    return {'C': 1}\n", "returned dict")],
)
def test_train_returning_no_model_says_so(keel: Keel, toy: Path, body: str, got: str) -> None:
    (toy / "train.py").write_text(f"def train(ctx, features, target):\n{body}")
    error = _user_error(keel("train", "--json"))
    assert error["entry_point"] == "train:train"
    assert (error["file"], error["line"]) == ("train.py", 1)
    assert got in error["message"] and "scikit-learn estimator" in error["message"]


def test_a_syntax_error_in_the_feature_code_is_the_users(keel: Keel, toy: Path) -> None:
    (toy / "features.py").write_text("import pandas as pd\n\ndef build(raw:\n    return raw\n")
    error = _user_error(keel("train", "--json"))
    assert (error["entry_point"], error["file"], error["line"]) == (
        "features:build",
        "features.py",
        3,
    )
    assert error["exception"] == "SyntaxError"


def test_an_import_failing_in_the_feature_code_is_the_users(keel: Keel, toy: Path) -> None:
    (toy / "helpers.py").write_text("SCALE = 1 / 0\n")
    (toy / "features.py").write_text("import helpers\n\n\ndef build(raw):\n    return raw\n")
    error = _user_error(keel("train", "--json"))
    assert (error["entry_point"], error["file"], error["line"]) == (
        "features:build",
        "helpers.py",
        1,
    )
    assert error["exception"] == "ZeroDivisionError"


def test_a_missing_library_names_the_keel_extra_that_installs_it(
    keel: Keel, toy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As on a fresh `pip install keelml`: scikit-learn cannot be imported.
    for name in [m for m in sys.modules if m == "sklearn" or m.startswith("sklearn.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "sklearn", None)
    (toy / "train.py").write_text(
        "def train(ctx, features, target):\n"
        "    from sklearn.linear_model import LogisticRegression\n"
        "    return LogisticRegression().fit(features, target)\n"
    )
    result = keel("train", "--json")
    error = _user_error(result)
    assert (error["entry_point"], error["file"], error["line"]) == ("train:train", "train.py", 2)
    assert error["extra"] == "sklearn"
    assert "pip install 'keelml[sklearn]'" in error["hint"]
    text = keel("train")
    assert "hint: install keel's sklearn extra: pip install 'keelml[sklearn]'" in text.err


def test_the_smoke_test_reports_the_users_error(keel: Keel, toy: Path) -> None:
    (toy / "features.py").write_text("def build(raw):\n    return raw[['x1', 'x2']].to_numpy()\n")
    result = keel("smoke-test", "--rows", "300", "--json")
    assert result.code != 0
    document = json.dumps(result.json())
    assert "features:build (features.py, line 1) returned numpy.ndarray" in document


def _trained_toy(keel: Keel, toy: Path) -> None:
    assert (trained := keel("train")).code == 0, trained.err
    with Project.open(toy, env={"KEEL_USER": "ana"}) as project:
        project.metadata.releases.move_alias(
            "toy", "production", 1, expected_holder=None, actor="ana", reason="test"
        )


def test_feature_code_failing_in_batch_scoring_is_the_users(keel: Keel, toy: Path) -> None:
    _trained_toy(keel, toy)
    bad = _raw(20).drop_columns(["label"])
    bad = bad.set_column(0, "x1", pa.array([-5000.0] * 20))
    pq.write_table(bad, toy / "bad.parquet")
    result = keel(
        "predict-batch", "bad.parquet", "out.parquet", "--model", "toy@production", "--json"
    )
    error = _user_error(result)
    assert error["entry_point"] == "features:build"
    # The packaged copy of the code: the same file name and line as in the project.
    assert (error["file"], error["line"]) == ("features.py", 6)
    assert "x1 below -1000 cannot be scaled" in error["message"]
    assert not (toy / "out.parquet").exists()


def test_feature_code_failing_while_serving_names_the_file_and_line(keel: Keel, toy: Path) -> None:
    from keel.predlog.writer import open_prediction_log
    from keel.web.server import run_in_thread

    _trained_toy(keel, toy)
    from keel.server import create_app

    with Project.open(toy, env={"KEEL_USER": "ana"}) as project:
        app, _ = create_app(project, log=open_prediction_log(project))
        with run_in_thread(app) as url:
            good = _post(url, {"x1": 0.5, "x2": -0.1})
            assert good[0] == 200, good
            status, body = _post(url, {"x1": -5000.0, "x2": 0.0})
    # The request was valid for the contract: the model refused it, a 422 naming the model,
    # the version and the exception (its traceback is in the server's log, not the answer).
    assert status == 422
    message = body["error"]
    assert "toy@1 could not score this request" in message
    assert "features:build failed in features.py, line 6 (ValueError: x1 below -1000" in message
    assert (body["model"], body["version"]) == ("toy", 1)
    assert body["exception"]["type"] == "ValueError"
    assert "Traceback" not in json.dumps(body)


def _post(url: str, row: dict[str, float]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(  # noqa: S310 - loopback
        url + "/predict",
        data=json.dumps({"instances": [row]}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as failed:
        return failed.code, json.loads(failed.read())


def test_keel_needing_a_library_of_an_extra_names_the_extra(
    keel: Keel, toy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `pip install keelml` has no scikit-learn: keel's own scoring needs the extra.
    def without_sklearn(*args: object, **kwargs: object) -> None:
        raise ModuleNotFoundError("No module named 'sklearn'", name="sklearn")

    monkeypatch.setattr("keel.pipeline.train.train", without_sklearn)
    result = keel("train", "--json")
    assert result.code == 7, result.out
    error = result.json()["error"]
    assert error["code"] == "dependency_missing"
    assert "needs the Python package 'scikit-learn'" in error["message"]
    assert error["hint"] == "pip install 'keelml[sklearn]'"
    assert "bug in keel" not in result.out


def test_an_examples_prepare_failing_is_the_users(keel: Keel, tmp_path: Path) -> None:
    from keel.errors import UserCodeError
    from keel.examples import prepare_months

    assert keel("init", "--example", "flights", "flights").code == 0
    folder = tmp_path / "flights"
    features = folder / "features.py"
    # The user edits the copied feature code, and breaks prepare.
    features.write_text(
        features.read_text().replace(
            "def prepare(",
            "def prepare(*args, **kwargs):\n    raise KeyError('dep_time')\n\n\ndef _old_prepare(",
            1,
        )
    )
    with pytest.raises(UserCodeError) as raised:
        prepare_months(folder, ["2013-08"])
    error = raised.value
    assert (error.entry_point, error.file, error.exception) == (
        "features:prepare",
        "features.py",
        "KeyError",
    )
    assert error.line == _line_of(features, "raise KeyError('dep_time')")


def test_a_print_in_the_users_code_never_breaks_the_json_document(keel: Keel, toy: Path) -> None:
    # Feature and training code print as they like; a script reading `--json` still gets
    # one document on stdout, and the prints land on stderr.
    (toy / "features.py").write_text(
        FEATURES.replace("    return raw", "    print('building features')\n    return raw")
    )
    (toy / "train.py").write_text(
        TRAIN.replace("    return Log", "    print('fitting')\n    return Log")
    )
    result = keel("train", "--json")
    assert result.code == 0, result.err
    assert result.json()["model"]["name"] == "toy"
    assert "building features" in result.err and "fitting" in result.err
    assert "building features" not in result.out
