"""Manifest versions of lake tables: Parquet folders, Delta tables, S3, on SQLite and PostgreSQL.

Real flights rows are written as Parquet parts (and Delta logs written by hand, as Delta's
protocol describes them); nothing is copied into keel's store, and reading back checks every
file first.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import yaml

from keel.data.snapshot import PARQUET_MEDIA_TYPE, load_manifest, load_profile, load_table
from keel.errors import ConfigError, Conflict, DataError
from keel.project import Project
from tests.cli.conftest import Keel
from tests.data.conftest import OLD_MTIME_NS, set_mtime
from tests.fixtures.s3 import S3Server

ENV = {"KEEL_USER": "ana"}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def env(request: pytest.FixtureRequest) -> dict[str, str]:
    """The project's settings: the default SQLite store, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return dict(ENV)
    return {**ENV, "KEEL_DB_URL": request.getfixturevalue("fresh_postgres_url")}


@pytest.fixture
def project(tmp_path: Path, env: dict[str, str]) -> Iterator[Project]:
    Project.init(tmp_path / "project", env=env).close()
    with Project.open(tmp_path / "project", env=env) as opened:
        yield opened


@pytest.fixture(scope="module")
def parts(flights_table: pa.Table) -> list[pa.Table]:
    """Four slices of the real flights table, one per Parquet file."""
    columns = ["year", "month", "day", "carrier", "flight", "origin", "distance", "time_hour"]
    table = flights_table.select(columns)
    # As Parquet stores it (it has no second-resolution timestamps), so tables compare equal.
    time_hour = table.schema.get_field_index("time_hour")
    table = table.set_column(
        time_hour, "time_hour", table.column(time_hour).cast(pa.timestamp("ms", "UTC"))
    )
    return [table.slice(i * 2_000, 2_000) for i in range(4)]


_WRITES = itertools.count()


def write_part(path: Path, table: pa.Table) -> Path:
    """Write a Parquet part dated in the past (so the stat cache trusts it), each write at
    its own time, as files written at different moments are."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, str(path))
    set_mtime(path, OLD_MTIME_NS + next(_WRITES) * 1_000_000_000)
    return path


def parquet_objects(project: Project) -> int:
    """Parquet copies recorded in keel's store."""
    return sum(
        1
        for digest in project.metadata.artifacts.referenced()
        if project.metadata.artifacts.get(digest).media_type == PARQUET_MEDIA_TYPE
    )


# --- a local folder of Parquet files ----------------------------------------------------------


def test_a_parquet_folder_is_recorded_without_a_copy_and_read_back(
    project: Project, tmp_path: Path, parts: list[pa.Table]
) -> None:
    lake = tmp_path / "lake"
    for i, part in enumerate(parts[:3]):
        write_part(lake / f"part-{i}.parquet", part)
    (lake / "_SUCCESS").write_bytes(b"")

    first = project.snapshot(str(lake), manifest=True)
    assert first.reused is False and first.files_read == 3
    version = first.version
    assert version.parquet is None and version.manifest is not None
    assert (version.rows, version.format, version.source) == (6_000, "parquet", str(lake))
    assert first.manifest is not None
    assert first.manifest.summary() == {
        "location": str(lake),
        "table": "parquet",
        "files": 3,
        "bytes": sum((lake / f"part-{i}.parquet").stat().st_size for i in range(3)),
        "delta_version": None,
    }
    assert [f.identity.split(":")[0] for f in first.manifest.files] == ["blake3"] * 3
    assert parquet_objects(project) == 0

    again = project.snapshot(str(lake), manifest=True)
    assert again.reused is True and again.files_read == 0
    assert again.version.id == version.id
    # Another spelling of the same folder is the same location, so the same version.
    respelled = project.snapshot(f"{tmp_path}/elsewhere/../lake/", manifest=True)
    assert respelled.version.id == version.id
    assert project.metadata.datasets.count() == 1
    assert load_manifest(project, version) == first.manifest

    table = load_table(project, version.id)
    assert table.equals(pa.concat_tables(parts[:3]))


def test_changing_one_file_makes_a_new_version(
    project: Project, tmp_path: Path, parts: list[pa.Table]
) -> None:
    lake = tmp_path / "lake"
    for i, part in enumerate(parts[:3]):
        write_part(lake / f"part-{i}.parquet", part)
    first = project.snapshot(str(lake), manifest=True).version
    write_part(lake / "part-1.parquet", parts[3])
    second = project.snapshot(str(lake), manifest=True)
    assert second.reused is False and second.version.id != first.id
    assert load_table(project, second.version.id).equals(
        pa.concat_tables([parts[0], parts[3], parts[2]])
    )
    # Adding a file is a new version too; the first version still reads as long as its
    # files are what it recorded: put part 1 back.
    write_part(lake / "part-1.parquet", parts[1])
    assert project.snapshot(str(lake), manifest=True).version.id == first.id
    write_part(lake / "part-3.parquet", parts[3])
    assert project.snapshot(str(lake), manifest=True).version.id not in (
        first.id,
        second.version.id,
    )


def test_a_file_changed_after_the_snapshot_refuses_the_load_naming_it(
    project: Project, tmp_path: Path, parts: list[pa.Table]
) -> None:
    lake = tmp_path / "lake"
    for i, part in enumerate(parts[:3]):
        write_part(lake / f"part-{i}.parquet", part)
    version = project.snapshot(str(lake), manifest=True).version

    write_part(lake / "part-2.parquet", parts[3])  # same schema, other rows
    with pytest.raises(DataError) as changed:
        load_table(project, version.id)
    message = str(changed.value)
    assert f"dataset {version.short}" in message
    assert f"{lake}/part-2.parquet changed" in message
    assert "since the snapshot; nothing was read" in message
    assert "keel data snapshot --manifest" in (changed.value.hint or "")

    # The same size with other bytes is caught by the digest.
    data = bytearray((lake / "part-0.parquet").read_bytes())
    data[len(data) // 2] ^= 0xFF
    write_part(lake / "part-2.parquet", parts[2])
    (lake / "part-0.parquet").write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"part-0\.parquet changed content: blake3:"):
        load_table(project, version.id)

    (lake / "part-0.parquet").unlink()
    with pytest.raises(DataError, match=r"part-0\.parquet is missing since the snapshot"):
        load_table(project, version.id)


def test_a_glob_of_parquet_files_and_csv_refused(
    project: Project, tmp_path: Path, parts: list[pa.Table]
) -> None:
    lake = tmp_path / "lake"
    write_part(lake / "2013-01" / "a.parquet", parts[0])
    write_part(lake / "2013-02" / "a.parquet", parts[1])
    write_part(lake / "2014-01" / "a.parquet", parts[2])
    result = project.snapshot(str(lake / "2013-*" / "*.parquet"), manifest=True)
    assert result.manifest is not None
    assert [f.path for f in result.manifest.files] == ["2013-01/a.parquet", "2013-02/a.parquet"]
    assert load_table(project, result.version.id).num_rows == 4_000

    csv = tmp_path / "flights.csv"
    csv.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(DataError, match="a manifest covers Parquet files"):
        project.snapshot(str(csv), manifest=True)
    # CSV beside Parquet: a copy would read it, so a manifest refuses rather than skip it.
    (lake / "2013-03").mkdir()
    (lake / "2013-03" / "b.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"2013-03/b\.csv is CSV"):
        project.snapshot(str(lake), manifest=True)
    assert project.metadata.datasets.count() == 1


def test_a_failure_while_profiling_or_recording_leaves_no_version(
    project: Project, tmp_path: Path, parts: list[pa.Table], monkeypatch: pytest.MonkeyPatch
) -> None:
    import keel.data.manifest

    lake = tmp_path / "lake"
    write_part(lake / "part-0.parquet", parts[0])

    def broken(table: pa.Table) -> None:
        raise MemoryError("out of memory while profiling")

    monkeypatch.setattr(keel.data.manifest, "profile_table", broken)
    with pytest.raises(MemoryError):
        project.snapshot(str(lake), manifest=True)
    monkeypatch.undo()
    assert project.metadata.datasets.count() == 0

    def broken_add(version: object) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(project.metadata.datasets, "add", broken_add)
    with pytest.raises(RuntimeError, match="went away"):
        project.snapshot(str(lake), manifest=True)
    monkeypatch.undo()
    assert project.metadata.datasets.count() == 0
    # The manifest and the profile were stored, and nothing holds them: gc reclaims them.
    assert project.metadata.artifacts.count() == 2
    assert project.metadata.artifacts.referenced() == set()
    assert project.snapshot(str(lake), manifest=True).reused is False
    assert len(project.metadata.artifacts.referenced()) == 2


def test_a_file_changing_during_the_snapshot_is_a_conflict(
    project: Project, tmp_path: Path, parts: list[pa.Table], monkeypatch: pytest.MonkeyPatch
) -> None:
    import keel.data.manifest

    lake = tmp_path / "lake"
    single = write_part(lake / "part-0.parquet", parts[0])
    read_manifest = keel.data.manifest.read_manifest

    def read_then_rewrite(*args: object) -> object:
        read = read_manifest(*args)  # type: ignore[arg-type]
        write_part(single, parts[1])
        return read

    monkeypatch.setattr(keel.data.manifest, "read_manifest", read_then_rewrite)
    with pytest.raises(Conflict, match="files changed while they were being snapshotted"):
        project.snapshot(str(single), manifest=True)  # one file: its folder is the location
    monkeypatch.undo()
    assert project.metadata.datasets.count() == 0
    result = project.snapshot(str(single), manifest=True)
    assert result.manifest is not None
    assert (result.manifest.location, [f.path for f in result.manifest.files]) == (
        str(lake),
        ["part-0.parquet"],
    )
    assert load_table(project, result.version.id).equals(parts[1])


def test_a_table_above_the_exact_bound_is_profiled_file_by_file_from_sketches(
    tmp_path: Path, flights_table: pa.Table, monkeypatch: pytest.MonkeyPatch
) -> None:
    import keel.data.manifest

    columns = ["month", "carrier", "tailnum", "distance", "dep_delay", "air_time", "time_hour"]
    table = flights_table.select(columns)
    table = table.set_column(6, "time_hour", table.column(6).cast(pa.timestamp("ms", "UTC")))
    lake = tmp_path / "lake"
    months = [table.filter(pc.equal(table.column("month"), month)) for month in range(1, 13)]
    for month, rows in enumerate(months, start=1):
        write_part(lake / f"month={month:02d}.parquet", rows)
    table = pa.concat_tables(months)  # in the files' order
    results = {}
    for bound in ("exact", "streamed"):
        if bound == "streamed":
            monkeypatch.setattr(keel.data.manifest, "EXACT_PROFILE_BYTES", 0)
        Project.init(tmp_path / bound, env=ENV).close()
        with Project.open(tmp_path / bound, env=ENV) as project:
            result = project.snapshot(str(lake), manifest=True)
            results[bound] = (result.version, load_profile(project, result.version))
            assert load_table(project, result.version.id).equals(table)
    (exact, whole), (streamed, sketched) = results["exact"], results["streamed"]
    # The same version either way: the id, the schema, the time range are the data's.
    assert streamed.id == exact.id
    assert (streamed.rows, streamed.columns, streamed.time_range) == (
        exact.rows,
        exact.columns,
        exact.time_range,
    )
    assert sketched.rows == whole.rows == 336_776
    for name in ("month", "distance", "dep_delay", "air_time"):
        one, other = whole.column(name), sketched.column(name)
        assert (other.count, other.nulls, other.type) == (one.count, one.nulls, one.type)
        assert one.numeric is not None and other.numeric is not None
        assert (other.numeric.min, other.numeric.max) == (one.numeric.min, one.numeric.max)
        assert other.numeric.mean == pytest.approx(one.numeric.mean, rel=1e-9)
        assert other.numeric.std == pytest.approx(one.numeric.std, rel=1e-9)
        assert sum(other.numeric.histogram.counts) == one.numeric.count
        assert len(other.numeric.histogram.edges) == len(one.numeric.histogram.edges)
        for key, value in one.numeric.quantiles.items():
            # Within the number sketch's relative accuracy (0.5%) or one unit of the data.
            assert other.numeric.quantiles[key] == pytest.approx(value, rel=0.01, abs=1.0)
    # Month has 12 values: one bin per month, exact counts.
    assert sketched.column("month").numeric.histogram == whole.column("month").numeric.histogram  # type: ignore[union-attr]
    assert sketched.column("carrier").categorical == whole.column("carrier").categorical
    tails = sketched.column("tailnum").categorical
    assert tails is not None and whole.column("tailnum").categorical is not None
    assert tails.distinct <= whole.column("tailnum").categorical.distinct  # a lower bound
    assert sketched.column("time_hour").temporal == whole.column("time_hour").temporal


def test_files_whose_types_widen_are_combined_alike_exact_or_streamed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import keel.data.manifest

    lake = tmp_path / "lake"
    write_part(lake / "a.parquet", pa.table({"x": pa.array([1, 2], pa.int64()), "y": ["a", "b"]}))
    write_part(lake / "b.parquet", pa.table({"x": pa.array([2.5, None]), "y": ["c", None]}))
    write_part(lake / "c.parquet", pa.table({"x": pa.array([7], pa.int32()), "y": ["d"]}))
    Project.init(tmp_path / "project", env=ENV).close()
    with Project.open(tmp_path / "project", env=ENV) as project:
        monkeypatch.setattr(keel.data.manifest, "EXACT_PROFILE_BYTES", 0)
        version = project.snapshot(str(lake), manifest=True).version
        assert version.columns == (("x", "double"), ("y", "string"))
        profile = load_profile(project, version)
        assert (profile.column("x").count, profile.column("x").nulls) == (4, 1)
        assert profile.column("x").numeric is not None
        assert profile.column("x").numeric.mean == pytest.approx(12.5 / 4)
        assert load_table(project, version.id).column("x").to_pylist() == [1, 2, 2.5, None, 7]

        write_part(lake / "d.parquet", pa.table({"x": ["eight"], "y": ["e"]}))
        with pytest.raises(DataError, match=r"d\.parquet: column 'x' is string here but double"):
            project.snapshot(str(lake), manifest=True)
        assert project.metadata.datasets.count() == 1


def test_copy_stays_the_default(project: Project, tmp_path: Path, parts: list[pa.Table]) -> None:
    lake = tmp_path / "lake"
    write_part(lake / "part-0.parquet", parts[0])
    copied = project.snapshot(str(lake))
    assert copied.version.parquet is not None and copied.version.manifest is None
    assert copied.manifest is None
    listed = project.snapshot(str(lake), manifest=True)
    assert listed.version.id != copied.version.id  # a pointer is not a copy
    assert project.metadata.datasets.count() == 2


def test_a_delta_version_or_a_sql_source_without_a_manifest_is_refused(
    project: Project, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match="a Delta table version is read only into a manifest"):
        project.snapshot(str(tmp_path), delta_version=1)
    lake = tmp_path / "plain"
    lake.mkdir()
    pq.write_table(pa.table({"a": [1]}), str(lake / "a.parquet"))
    with pytest.raises(DataError, match="not a Delta table"):
        project.snapshot(str(lake), manifest=True, delta_version=0)
    assert project.metadata.datasets.count() == 0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"source": {"query": "SELECT 1 AS a", "url": "sqlite:///rows.db"}},
            "a SQL source cannot be snapshotted as a manifest",
        ),
        ({"source": "lake", "format": "csv"}, "data.format is csv, and a manifest version"),
    ],
)
def test_sources_a_manifest_cannot_cover_are_config_errors_naming_the_setting(
    tmp_path: Path, data: dict[str, object], message: str
) -> None:
    folder = tmp_path / "project"
    Project.init(folder, env=ENV).close()
    spec = folder / "keel.yaml"
    extra = yaml.safe_dump({"data": {**data, "snapshot": "manifest"}})
    spec.write_text(spec.read_text(encoding="utf-8") + "\n" + extra, encoding="utf-8")
    with Project.open(folder, env=ENV) as project:
        with pytest.raises(ConfigError, match=message) as refused:
            project.snapshot()
        assert [field for field, _ in refused.value.problems] == ["data.snapshot"]
        assert project.metadata.datasets.count() == 0


# --- Delta tables -------------------------------------------------------------------------


SCHEMA = {
    "type": "struct",
    "fields": [
        {"name": n, "type": t, "nullable": True, "metadata": {}}
        for n, t in [
            ("year", "long"),
            ("month", "long"),
            ("day", "long"),
            ("carrier", "string"),
            ("flight", "long"),
            ("origin", "string"),
            ("distance", "long"),
            ("time_hour", "timestamp"),
        ]
    ],
}


class DeltaWriter:
    """Writes a Delta table the way Delta's protocol describes: Parquet parts and a log of
    JSON commits (`add`, `remove`, `protocol`, `metaData`), and optionally a checkpoint."""

    def __init__(self, root: Path, partition_by: str | None = None) -> None:
        self.root = root
        self.partition_by = partition_by
        self.version = -1
        self.live: dict[str, dict[str, object]] = {}
        (root / "_delta_log").mkdir(parents=True)

    def commit(self, add: dict[str, pa.Table] | None = None, remove: tuple[str, ...] = ()) -> int:
        self.version += 1
        actions: list[dict[str, object]] = []
        if self.version == 0:
            fields = SCHEMA["fields"]
            if self.partition_by:
                column = {"name": self.partition_by, "type": "string", "nullable": True}
                fields = [*fields, {**column, "metadata": {}}]
            actions += [
                {"protocol": {"minReaderVersion": 1, "minWriterVersion": 2}},
                {
                    "metaData": {
                        "id": "f0c4a5e2-flights",
                        "format": {"provider": "parquet", "options": {}},
                        "schemaString": json.dumps({"type": "struct", "fields": fields}),
                        "partitionColumns": [self.partition_by] if self.partition_by else [],
                        "configuration": {},
                        "createdTime": 1_700_000_000_000,
                    }
                },
            ]
        for name, table in (add or {}).items():
            partition: dict[str, str] = {}
            if self.partition_by:
                value = name.split("=", 1)[1].split("/", 1)[0]
                partition = {self.partition_by: value}
            write_part(self.root / name, table)
            action = {
                "path": name.replace(" ", "%20"),
                "partitionValues": partition,
                "size": (self.root / name).stat().st_size,
                "modificationTime": 1_700_000_000_000,
                "dataChange": True,
            }
            self.live[name] = action
            actions.append({"add": action})
        for name in remove:
            self.live.pop(name)
            actions.append({"remove": {"path": name, "dataChange": True}})
        actions.append({"commitInfo": {"operation": "WRITE"}})
        log = self.root / "_delta_log" / f"{self.version:020d}.json"
        log.write_text("\n".join(json.dumps(a) for a in actions) + "\n", encoding="utf-8")
        return self.version

    def checkpoint(self) -> None:
        """The state at the current version as a checkpoint Parquet file (one row per action)."""
        first = json.loads(
            (self.root / "_delta_log" / f"{0:020d}.json").read_text(encoding="utf-8").split("\n")[1]
        )["metaData"]
        rows: list[dict[str, object]] = [
            {"protocol": {"minReaderVersion": 1, "minWriterVersion": 2}},
            {"metaData": {**first, "configuration": []}},
        ]
        for action in self.live.values():
            values = action["partitionValues"]
            assert isinstance(values, dict)
            rows.append({"add": {**action, "partitionValues": list(values.items())}})
        table = pa.Table.from_pylist(
            [{k: row.get(k) for k in ("protocol", "metaData", "add")} for row in rows],
            schema=pa.schema(
                [
                    (
                        "protocol",
                        pa.struct(
                            [("minReaderVersion", pa.int32()), ("minWriterVersion", pa.int32())]
                        ),
                    ),
                    (
                        "metaData",
                        pa.struct(
                            [
                                ("id", pa.string()),
                                ("schemaString", pa.string()),
                                ("partitionColumns", pa.list_(pa.string())),
                                ("configuration", pa.map_(pa.string(), pa.string())),
                            ]
                        ),
                    ),
                    (
                        "add",
                        pa.struct(
                            [
                                ("path", pa.string()),
                                ("partitionValues", pa.map_(pa.string(), pa.string())),
                                ("size", pa.int64()),
                                ("modificationTime", pa.int64()),
                                ("dataChange", pa.bool_()),
                            ]
                        ),
                    ),
                ]
            ),
        )
        pq.write_table(
            table, str(self.root / "_delta_log" / f"{self.version:020d}.checkpoint.parquet")
        )


def test_delta_a_new_commit_is_a_new_version_and_an_older_version_reads_its_files(
    project: Project, tmp_path: Path, parts: list[pa.Table]
) -> None:
    delta = DeltaWriter(tmp_path / "flights_delta")
    delta.commit(add={"part-0.parquet": parts[0], "part-1.parquet": parts[1]})
    first = project.snapshot(str(delta.root), manifest=True)
    assert first.manifest is not None
    assert (first.version.format, first.manifest.table, first.manifest.delta_version) == (
        "delta",
        "delta",
        0,
    )
    assert project.snapshot(str(delta.root), manifest=True).reused is True

    # The log names files as URIs: a space is written %20.
    delta.commit(add={"part 2.parquet": parts[2]}, remove=("part-0.parquet",))
    second = project.snapshot(str(delta.root), manifest=True)
    assert second.reused is False and second.version.id != first.version.id
    assert second.manifest is not None and second.manifest.delta_version == 1
    assert [f.path for f in second.manifest.files] == ["part 2.parquet", "part-1.parquet"]
    assert load_table(project, second.version.id).equals(pa.concat_tables([parts[2], parts[1]]))
    # The files removed from the table stay on disk (until VACUUM): version 0 still reads.
    older = project.snapshot(str(delta.root), manifest=True, delta_version=0)
    assert older.reused is True and older.version.id == first.version.id
    assert load_table(project, first.version.id).equals(pa.concat_tables(parts[0:2]))

    with pytest.raises(DataError, match="Delta table version 7 does not exist"):
        project.snapshot(str(delta.root), manifest=True, delta_version=7)


def test_delta_read_through_a_checkpoint_and_partition_values(
    project: Project, tmp_path: Path, parts: list[pa.Table]
) -> None:
    delta = DeltaWriter(tmp_path / "by_origin", partition_by="airport")
    delta.commit(add={"airport=EWR/a.parquet": parts[0], "airport=JFK/b.parquet": parts[1]})
    delta.commit(add={"airport=LGA/c.parquet": parts[2]})
    delta.checkpoint()
    delta.commit(add={"airport=JFK/d.parquet": parts[3]}, remove=("airport=EWR/a.parquet",))
    # Log cleanup removed the commits the checkpoint covers.
    for old in (0, 1):
        (delta.root / "_delta_log" / f"{old:020d}.json").unlink()

    newest = project.snapshot(str(delta.root), manifest=True)
    assert newest.manifest is not None and newest.manifest.delta_version == 2
    assert [f.path for f in newest.manifest.files] == [
        "airport=JFK/b.parquet",
        "airport=JFK/d.parquet",
        "airport=LGA/c.parquet",
    ]
    table = load_table(project, newest.version.id)
    assert table.column_names[-1] == "airport"
    assert table.num_rows == 6_000
    assert table.column("airport").to_pylist() == ["JFK"] * 4_000 + ["LGA"] * 2_000

    at_checkpoint = project.snapshot(str(delta.root), manifest=True, delta_version=1)
    assert at_checkpoint.manifest is not None
    assert len(at_checkpoint.manifest.files) == 3
    with pytest.raises(DataError, match="commit 0 is missing, so version 0 cannot be read"):
        project.snapshot(str(delta.root), manifest=True, delta_version=0)


def test_delta_features_keel_cannot_read_are_refused(project: Project, tmp_path: Path) -> None:
    delta = DeltaWriter(tmp_path / "dv")
    delta.commit(add={"a.parquet": pa.table({"year": [2013]})})
    log = delta.root / "_delta_log" / f"{1:020d}.json"
    dv = {"storageType": "u", "pathOrInlineDv": "ab^-aqEH.-t@S}K{vb[*k^", "cardinality": 1}
    log.write_text(
        json.dumps(
            {"add": {"path": "a.parquet", "size": 1, "partitionValues": {}, "deletionVector": dv}}
        )
        + "\n",
        encoding="utf-8",
    )
    with pytest.raises(DataError, match="has a deletion vector"):
        project.snapshot(str(delta.root), manifest=True)
    log.write_text(
        json.dumps(
            {
                "protocol": {
                    "minReaderVersion": 3,
                    "minWriterVersion": 7,
                    "readerFeatures": ["v2Checkpoint"],
                }
            }
        )
        + "\n",
        encoding="utf-8",
    )
    with pytest.raises(DataError, match="reader feature v2Checkpoint"):
        project.snapshot(str(delta.root), manifest=True)
    assert project.metadata.datasets.count() == 0


# --- S3 -----------------------------------------------------------------------------------


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """The standard AWS variables pointing at the test server, as a user's shell would."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint_url)
    monkeypatch.setenv("AWS_DEFAULT_REGION", s3_server.region)
    return s3_server


def upload(server: S3Server, folder: Path, url: str) -> None:
    client = server.client()
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            key = f"{prefix}/{path.relative_to(folder).as_posix()}"
            client.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())  # type: ignore[attr-defined]


@pytest.mark.s3
def test_an_s3_prefix_of_parquet_files_by_etag(
    project: Project, tmp_path: Path, parts: list[pa.Table], s3_env: S3Server
) -> None:
    local = tmp_path / "parts"
    for i, part in enumerate(parts[:3]):
        write_part(local / f"part-{i}.parquet", part)
    url = s3_env.url()
    upload(s3_env, local, url)

    first = project.snapshot(f"{url}/", manifest=True)
    assert first.manifest is not None and first.manifest.location == url
    assert [f.identity.split(":")[0] for f in first.manifest.files] == ["etag"] * 3
    assert first.files_read == 0  # nothing read to identify the objects
    assert parquet_objects(project) == 0
    assert project.snapshot(url, manifest=True).version.id == first.version.id
    assert load_table(project, first.version.id).equals(pa.concat_tables(parts[:3]))

    # The same size, other bytes: the ETag tells.
    key = f"{url.split('/', 3)[3]}/part-1.parquet"
    data = bytearray((local / "part-1.parquet").read_bytes())
    data[len(data) // 2] ^= 0xFF
    s3_env.client().put_object(Bucket=s3_env.bucket, Key=key, Body=bytes(data))  # type: ignore[attr-defined]
    with pytest.raises(DataError) as changed:
        load_table(project, first.version.id)
    assert f"{url}/part-1.parquet changed content: etag:" in str(changed.value)
    assert f"dataset {first.version.short}" in str(changed.value)

    write_part(local / "part-1.parquet", parts[3])
    upload(s3_env, local, url)
    with pytest.raises(DataError, match=r"part-1\.parquet changed size"):
        load_table(project, first.version.id)
    second = project.snapshot(url, manifest=True)
    assert second.version.id != first.version.id
    assert load_table(project, second.version.id).equals(
        pa.concat_tables([parts[0], parts[3], parts[2]])
    )

    gone = f"{url.split('/', 3)[3]}/part-0.parquet"
    s3_env.client().delete_object(Bucket=s3_env.bucket, Key=gone)  # type: ignore[attr-defined]
    with pytest.raises(DataError, match=r"part-0\.parquet is missing since the snapshot"):
        load_table(project, second.version.id)


@pytest.mark.s3
def test_a_delta_table_on_s3(
    project: Project, tmp_path: Path, parts: list[pa.Table], s3_env: S3Server
) -> None:
    delta = DeltaWriter(tmp_path / "delta")
    delta.commit(add={"part-0.parquet": parts[0]})
    delta.commit(add={"part-1.parquet": parts[1]})
    url = s3_env.url()
    upload(s3_env, delta.root, url)
    newest = project.snapshot(url, manifest=True)
    assert newest.manifest is not None and newest.manifest.delta_version == 1
    assert load_table(project, newest.version.id).equals(pa.concat_tables(parts[:2]))
    older = project.snapshot(url, manifest=True, delta_version=0)
    assert older.version.id != newest.version.id
    assert load_table(project, older.version.id).equals(parts[0])


# --- the command and keel.yaml --------------------------------------------------------------


def test_cli_manifest_json_and_the_keel_yaml_setting(
    keel: Keel, tmp_path: Path, parts: list[pa.Table]
) -> None:
    folder = tmp_path / "project"
    Project.init(folder, env=ENV).close()
    delta = DeltaWriter(folder / "lake" / "flights")
    delta.commit(add={"part-0.parquet": parts[0]})
    delta.commit(add={"part-1.parquet": parts[1]})

    options = ["--manifest", "--delta-version", "0", "--json"]
    done = keel("-C", folder, "data", "snapshot", delta.root, *options)
    assert done.code == 0, done.err
    document = done.json()
    size = (delta.root / "part-0.parquet").stat().st_size
    assert document["manifest"] == {
        "location": str(delta.root),
        "table": "delta",
        "files": 1,
        "bytes": size,
        "delta_version": 0,
    }
    assert document["version"]["parquet"] is None
    assert document["version"]["manifest"].startswith("blake3:")

    text = keel("-C", folder, "data", "snapshot", delta.root, "--manifest")
    assert text.code == 0, text.err
    assert f"manifest of {delta.root}: 2 files," in text.out
    assert "Delta table version 1" in text.out
    shown = keel("-C", folder, "data", "show", "latest")
    assert shown.code == 0, shown.err
    assert "manifest  " in shown.out and "part-1.parquet" in shown.out
    assert (
        "parquet   " not in shown.out and "files     " not in shown.out
    )  # no copy, no source files

    spec = folder / "keel.yaml"
    original = spec.read_text(encoding="utf-8")
    data = {"source": "lake/flights", "snapshot": "manifest"}
    spec.write_text(original + "\n" + yaml.safe_dump({"data": data}), encoding="utf-8")
    by_spec = keel("-C", folder, "data", "snapshot", "--json")
    assert by_spec.code == 0, by_spec.err
    assert by_spec.json()["reused"] is True
    assert by_spec.json()["manifest"]["delta_version"] == 1
    copied = keel("-C", folder, "data", "snapshot", "--copy", "--json")
    assert copied.code == 0, copied.err
    assert copied.json()["manifest"] is None

    data["snapshot"] = "mirror"
    spec.write_text(original + "\n" + yaml.safe_dump({"data": data}), encoding="utf-8")
    refused = keel("-C", folder, "data", "snapshot")
    assert refused.code == 2
    assert "data.snapshot" in refused.err and "'copy' or 'manifest'" in refused.err
    spec.write_text(original, encoding="utf-8")
    # Two Delta versions as manifests and one copy; the refused command recorded nothing.
    assert len(keel("-C", folder, "data", "list", "--json").json()["versions"]) == 3


@pytest.mark.slow  # trains the flights example: ~10 s
def test_training_reads_a_manifest_version_of_the_example_lake(keel: Keel, tmp_path: Path) -> None:
    assert keel("init", "--example", "flights", "demo").code == 0
    project = tmp_path / "demo"
    spec = project / "keel.yaml"
    document = yaml.safe_load(spec.read_text(encoding="utf-8"))
    document["data"]["snapshot"] = "manifest"
    spec.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")

    trained = keel("-C", project, "train", "--as-of", "2013-07-01T00:00:00Z", "--json")
    assert trained.code == 0, trained.out + trained.err
    assert trained.json()["model"] == {"name": "flights-delay", "version": 1}
    shown = keel("-C", project, "data", "show", "latest", "--json").json()
    assert shown["version"]["parquet"] is None
    assert shown["manifest"]["files"] == 6 and shown["manifest"]["table"] == "parquet"
    assert shown["manifest"]["location"] == str(project / "data" / "raw")
    trained_on = shown["version"]["id"]

    # A month rewritten after training: the version it trained on is refused, by name.
    january = project / "data" / "raw" / "2013-01.parquet"
    rows = pq.read_table(january)
    write_part(january, rows.slice(1))
    refused = keel("-C", project, "contract", "check", trained_on)
    assert refused.code == 2
    assert f"{january} changed size" in refused.err
    retrained = keel("-C", project, "train", "--as-of", "2013-07-01T00:00:00Z", "--json")
    assert retrained.code == 0, retrained.out + retrained.err
    assert keel("-C", project, "data", "show", "latest", "--json").json()["version"]["id"] != (
        trained_on
    )


def test_a_manifest_document_round_trips_and_refuses_paths_outside_its_table() -> None:
    from keel.domain.dataset import Manifest, ManifestFile

    manifest = Manifest(
        location="s3://lake/flights",
        table="delta",
        delta_version=3,
        partition_types=(("origin", "string"),),
        files=(
            ManifestFile("origin=JFK/b.parquet", 10, "etag:9b2c", (("origin", "JFK"),)),
            ManifestFile("origin=EWR/a.parquet", 20, "etag:51fe", (("origin", None),)),
        ),
    )
    assert [f.path for f in manifest.files] == ["origin=EWR/a.parquet", "origin=JFK/b.parquet"]
    assert Manifest.from_dict(json.loads(json.dumps(manifest.to_dict()))) == manifest
    for path in ("../other/a.parquet", "/etc/passwd", "s3://elsewhere/a.parquet"):
        with pytest.raises(ValueError, match="manifest file path"):
            ManifestFile(path, 1, "etag:1")
    with pytest.raises(ValueError, match="identity must be blake3"):
        ManifestFile("a.parquet", 1, "md5:1")
    with pytest.raises(ValueError, match="malformed dataset manifest"):
        Manifest.from_dict({**manifest.to_dict(), "files": [["a.parquet", "big", "etag:1", []]]})
