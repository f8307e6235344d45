"""Where keel's data work runs: in this process, or on Apache Spark: `engine:`."""

from __future__ import annotations

import re
from typing import Final, Literal

from pydantic import Field, field_validator

from keel.spec._base import _Section

__all__ = ["SPARK_MASTER_FORMS", "EngineSpec", "check_spark_master"]

#: The master URLs Spark accepts, in the words of an error message.
SPARK_MASTER_FORMS: Final = "local, local[N], local[*], spark://HOST:PORT, yarn or k8s://URL"
_MASTER = re.compile(
    r"^(local(\[(\*|[1-9]\d*)(,[1-9]\d*)?\])?"
    r"|local-cluster\[[1-9]\d*,[1-9]\d*,[1-9]\d*\]"
    r"|spark://[^\s/]+(,[^\s/]+)*"
    r"|yarn"
    r"|k8s://\S+)$"
)


def check_spark_master(value: str) -> str:
    """`value` if Spark takes it as a master URL, else `ValueError` saying which forms do."""
    if not _MASTER.match(value):
        raise ValueError(f"expected {SPARK_MASTER_FORMS}, got {value!r}")
    return value


class EngineSpec(_Section):
    """The engine of the data work (`keel drift`; docs/scale.md). `local` reads the data into
    this process with Arrow; `spark` runs it on Apache Spark (the `spark` extra): each
    partition sketched where it lives, the sketches merged on the driver. `--engine` on a
    command overrides `kind`."""

    kind: Literal["local", "spark"] = "local"
    #: The Spark master: `local[2]`, `spark://host:7077`, `yarn`, `k8s://...`. Unset: the
    #: master `spark-submit` (or the notebook's session) was given, else `local[*]`.
    master: str | None = None
    #: Spark settings for the session keel creates (`spark.executor.memory: 4g`,
    #: `spark.hadoop.fs.s3a.endpoint: ...`); every key starts with `spark.`.
    conf: dict[str, str | int | float | bool] = Field(default_factory=dict)

    @field_validator("master")
    @classmethod
    def _known_master(cls, value: str | None) -> str | None:
        return None if value is None else check_spark_master(value)

    @field_validator("conf")
    @classmethod
    def _spark_keys(
        cls, value: dict[str, str | int | float | bool]
    ) -> dict[str, str | int | float | bool]:
        for key in value:
            if not key.startswith("spark.") or key == "spark.":
                raise ValueError(
                    f"{key!r}: Spark settings start with 'spark.' (Hadoop's too, as "
                    "spark.hadoop.NAME)"
                )
            if key == "spark.master":
                raise ValueError("'spark.master': set engine.master instead")
        return value

    def spark_conf(self) -> dict[str, str]:
        """`conf` as Spark takes it: every value a string (`true`, not `True`)."""
        return {
            key: str(value).lower() if isinstance(value, bool) else str(value)
            for key, value in self.conf.items()
        }
