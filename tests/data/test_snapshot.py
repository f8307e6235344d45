"""Snapshots of real flights data: versions by content, the stat cache, sources of every kind."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

import keel.data.statcache
from keel.artifacts.hashing import hash_file
from keel.data.read import ReadResult
from keel.data.snapshot import dataset_id, load_profile, load_table, snapshot
from keel.domain.digest import Digest
from keel.errors import ConfigError, Conflict, DataError
from keel.project import Project
from tests.data.conftest import (
    FLIGHTS,
    OLD_MTIME_NS,
    WEATHER,
    copy_real,
    make_project,
    set_mtime,
    write_sample,
)

JAN_1 = datetime(2013, 1, 1, 10, tzinfo=UTC)


class HashSpy:
    """Counts the files the stat cache hashes (i.e. reads)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.paths: list[Path] = []
        monkeypatch.setattr(keel.data.statcache, "hash_file", self)

    def __call__(self, path: Path) -> Digest:
        self.paths.append(path)
        return hash_file(path)


def test_the_same_file_twice_is_one_version_and_is_not_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = copy_real(FLIGHTS, tmp_path / "project" / "data" / FLIGHTS.name)
    spec = {"source": f"data/{FLIGHTS.name}", "timestamp": "time_hour"}
    spy = HashSpy(monkeypatch)
    with make_project(tmp_path / "project", spec) as project:
        first = project.snapshot()
        assert (first.reused, first.files_read, len(spy.paths)) == (False, 1, 1)
        second = project.snapshot()
        assert (second.reused, second.files_read, len(spy.paths)) == (True, 0, 1)
        assert second.version == first.version
        assert project.metadata.datasets.count() == 1

        version = first.version
        assert version.rows == 336_776
        assert len(version.columns) == 19
        assert ("time_hour", "timestamp[ms, tz=UTC]") in version.columns  # as Parquet stores it
        assert version.format == "csv"
        assert version.source == str(data)
        assert version.created_by == "ana"
        assert version.time_range is not None
        assert version.time_range.column == "time_hour"
        assert version.time_range.start == JAN_1
        assert version.time_range.end == datetime(2014, 1, 1, 4, tzinfo=UTC)
        [file] = version.files
        assert (file.path, file.size, file.digest) == (
            FLIGHTS.name,
            data.stat().st_size,
            hash_file(data),
        )
        assert version.id == dataset_id(
            format="auto", timestamp="time_hour", files=[(FLIGHTS.name, hash_file(data))]
        )

        profile = load_profile(project, version)
        distance = profile.column("distance").numeric
        assert distance is not None
        assert (distance.min, distance.max) == (17, 4983)
        assert sum(distance.histogram.counts) == 336_776
        assert profile.column("arr_delay").nulls == 9_430
        carrier = profile.column("carrier").categorical
        assert carrier is not None
        assert carrier.distinct == 16
        assert carrier.top[0] == ("UA", 58_665)
        assert profile.column("time_hour").temporal is not None

        table = load_table(project, "latest")
        assert table.num_rows == 336_776
        assert table.schema.field("time_hour").type == pa.timestamp("ms", tz="UTC")
        assert [(f.name, str(f.type)) for f in table.schema] == list(version.columns)
        assert (
            pc.sum(table.column("distance")).as_py()
            == pc.sum(project.load_dataset(version.id).column("distance")).as_py()
        )
        holder = f"dataset:{version.id.hex}"
        assert project.metadata.artifacts.holders(version.parquet) == [holder]
        assert project.metadata.artifacts.holders(version.profile) == [holder]


@pytest.fixture
def sample(flights_table: pa.Table, project: Project) -> Path:
    """2,000 real flights as CSV, inside the project folder."""
    return write_sample(
        flights_table.slice(0, 2_000), project.settings.project_dir / "data" / "flights.csv"
    )


def test_touching_a_file_rehashes_it_but_gives_the_same_version(
    project: Project, sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = snapshot(project, str(sample))
    spy = HashSpy(monkeypatch)
    set_mtime(sample, OLD_MTIME_NS + 60 * 1_000_000_000)
    touched = snapshot(project, str(sample))
    assert (touched.reused, touched.files_read, spy.paths) == (True, 1, [sample])
    assert touched.version == first.version
    again = snapshot(project, str(sample))
    assert (again.reused, again.files_read, len(spy.paths)) == (True, 0, 1)


def test_changed_content_is_a_new_version(
    project: Project, sample: Path, flights_table: pa.Table
) -> None:
    first = snapshot(project, str(sample))
    write_sample(flights_table.slice(1, 2_000), sample)  # same mtime, other bytes and size
    second = snapshot(project, str(sample))
    assert (second.reused, second.files_read) == (False, 1)
    assert second.version.id != first.version.id
    assert project.metadata.datasets.count() == 2
    assert [v.id for v in project.metadata.datasets.list()] == [
        second.version.id,
        first.version.id,
    ]


def test_the_same_content_elsewhere_is_the_same_version(
    project: Project, sample: Path, tmp_path: Path
) -> None:
    first = snapshot(project, str(sample))
    moved = copy_real(sample, tmp_path / "elsewhere" / sample.name)
    second = snapshot(project, str(moved))
    assert (second.reused, second.files_read) == (True, 1)
    assert second.version == first.version


def test_a_file_written_just_now_is_hashed_again_next_time(
    project: Project, sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Written within the racy window, the same size and mtime could still hide a change.
    set_mtime(sample, int((datetime.now(UTC) - timedelta(seconds=0.5)).timestamp() * 1e9))
    first = snapshot(project, str(sample))
    second = snapshot(project, str(sample))
    assert (second.reused, second.files_read) == (True, 1)
    assert second.version == first.version


def test_a_relative_source_is_taken_from_the_current_folder(
    project: Project, sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(sample.parent)
    result = snapshot(project, sample.name)
    assert result.version.source == str(sample)


def test_folder_and_glob_sources(project: Project, flights_table: pa.Table) -> None:
    root = project.settings.project_dir / "lake"
    january = flights_table.filter(pc.equal(flights_table.column("month"), 1)).slice(0, 1_500)
    february = flights_table.filter(pc.equal(flights_table.column("month"), 2)).slice(0, 1_000)
    write_sample(january, root / "flights" / "month=1" / "part-0.csv")
    write_sample(february, root / "flights" / "month=2" / "part-0.csv")
    (root / "flights" / "_SUCCESS").write_text("")
    copy_real(WEATHER, root / "weather" / WEATHER.name)

    folder = snapshot(project, str(root / "flights"))
    assert folder.version.rows == 2_500
    assert [f.path for f in folder.version.files] == ["month=1/part-0.csv", "month=2/part-0.csv"]
    assert folder.files_read == 2

    pattern = snapshot(project, str(root / "flights" / "month=*" / "*.csv"))
    # Names are relative to the glob's fixed folder, so folder and glob agree on content.
    assert pattern.version.id == folder.version.id
    assert (pattern.reused, pattern.files_read) == (True, 0)

    weather = snapshot(project, str(root / "*" / "*weather*.csv.gz"))
    assert weather.version.rows == 26_115
    assert [f.path for f in weather.version.files] == [f"weather/{WEATHER.name}"]

    with pytest.raises(DataError, match="columns differ"):
        snapshot(project, str(root))
    assert project.metadata.datasets.count() == 2


def test_the_spec_source_is_relative_to_the_project(
    tmp_path: Path, flights_table: pa.Table
) -> None:
    folder = tmp_path / "project"
    write_sample(flights_table.slice(0, 500), folder / "data" / "part.csv")
    spec = {"source": "data/*.csv", "format": "csv", "timestamp": "time_hour"}
    with make_project(folder, spec) as project:
        result = project.snapshot()
    assert result.version.rows == 500
    assert result.version.source == str(folder / "data" / "*.csv")
    assert [f.path for f in result.version.files] == ["part.csv"]
    assert result.version.time_range is not None
    assert result.version.time_range.start == JAN_1


def test_no_data_section_and_no_source_is_a_config_error(project: Project) -> None:
    with pytest.raises(ConfigError) as caught:
        project.snapshot()
    assert "no data section" in caught.value.message
    assert caught.value.hint is not None
    assert "keel data snapshot" in caught.value.hint


@pytest.mark.parametrize(
    ("column", "message"),
    [
        ("departed", r"timestamp column 'departed' \(data.timestamp in keel.yaml\) is not in"),
        ("dest", "'dest' holds text that is not ISO-8601"),
        ("distance", "'distance' holds int64, expected timestamps or dates"),
    ],
)
def test_timestamp_problems_are_data_errors(
    tmp_path: Path, flights_table: pa.Table, column: str, message: str
) -> None:
    folder = tmp_path / "project"
    write_sample(flights_table.slice(0, 100), folder / "flights.csv")
    with make_project(folder, {"source": "flights.csv", "timestamp": column}) as project:
        with pytest.raises(DataError, match=message):
            project.snapshot()
        assert project.metadata.datasets.count() == 0
        assert project.metadata.artifacts.count() == 0


def test_a_failure_part_way_leaves_no_version_and_only_unheld_objects(
    project: Project, sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_add(version: object) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(project.metadata.datasets, "add", broken_add)
    with pytest.raises(RuntimeError, match="went away"):
        snapshot(project, str(sample))
    monkeypatch.undo()
    assert project.metadata.datasets.count() == 0
    assert project.metadata.artifacts.count() == 2  # the Parquet file and the profile
    assert project.metadata.artifacts.referenced() == set()
    report = project.gc(grace=timedelta(0))
    assert len(report.deleted) == 2
    assert not list((project.settings.state_dir / "tmp").iterdir())
    # Nothing stale is left behind: the next snapshot records the version.
    result = snapshot(project, str(sample))
    assert result.reused is False
    assert project.metadata.datasets.count() == 1


def test_a_file_changing_during_the_snapshot_is_a_conflict(
    project: Project, sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import keel.data.snapshot as module

    real = module.read_data

    def read_then_change(source: str, **options: object) -> ReadResult:
        read = real(source, **options)  # type: ignore[arg-type]
        with sample.open("ab") as handle:
            handle.write(b"2013,1,1,1,1,1,1,1,1,UA,1,N1,EWR,IAH,1,1,1,1,2013-01-01 10:00:00Z\n")
        return read

    monkeypatch.setattr(module, "read_data", read_then_change)
    with pytest.raises(Conflict, match="changed while"):
        snapshot(project, str(sample))
    assert project.metadata.datasets.count() == 0
