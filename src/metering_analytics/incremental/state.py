"""gold.incremental_state: what each incremental stage consumed on its last complete run.

One row per (stage, source table): the source's Delta version read, with the hash of the settings the
results depend on and the report clock of that run. A stage clears its rows before it changes any table
and writes them again once every table is written, so a run that stopped half-way leaves no state and
the next run rebuilds in full.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import LongType, StringType, StructField, StructType, TimestampType

from metering_analytics.io.lakehouse import Lakehouse

STATE_TABLE = "incremental_state"
STATE_SCHEMA = StructType(
    [
        StructField("stage", StringType(), False),
        StructField("source", StringType(), False),  # <layer>.<table>
        StructField("version", LongType(), True),  # null: the source did not exist
        StructField("settings_hash", StringType(), False),
        StructField("as_of", TimestampType(), False),
        StructField("recorded_at", TimestampType(), False),
    ]
)


@dataclass(frozen=True)
class StageState:
    versions: Mapping[str, int | None]
    settings_hash: str
    as_of: datetime


def settings_hash(*settings: Any) -> str:
    """A stable hash of dataclass settings (their `source` file name left out) and plain values."""
    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value) if f.name != "source"}
        if isinstance(value, Mapping):
            return {str(k): plain(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value if isinstance(value, (int, float, str, bool, type(None))) else str(value)
    text = json.dumps([plain(s) for s in settings], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def load_state(spark: SparkSession, lakehouse: Lakehouse, stage: str) -> StageState | None:
    if not lakehouse.exists(spark, "gold", STATE_TABLE):
        return None
    rows = lakehouse.read(spark, "gold", STATE_TABLE).where(F.col("stage") == stage).collect()
    if not rows or len({(r["settings_hash"], r["as_of"]) for r in rows}) != 1:
        return None
    return StageState({r["source"]: r["version"] for r in rows}, rows[0]["settings_hash"], rows[0]["as_of"])


def clear_state(spark: SparkSession, lakehouse: Lakehouse, stage: str) -> None:
    if lakehouse.exists(spark, "gold", STATE_TABLE):
        lakehouse.delta_table(spark, "gold", STATE_TABLE).delete(F.col("stage") == stage)


def save_state(spark: SparkSession, lakehouse: Lakehouse, stage: str, versions: Mapping[str, int | None],
               hash_: str, as_of: datetime) -> None:
    """Replace the stage's rows in one commit."""
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    rows = spark.createDataFrame(
        [(stage, source, version, hash_, as_of, now) for source, version in sorted(versions.items())], STATE_SCHEMA)
    lakehouse.ensure_table(spark, "gold", STATE_TABLE, STATE_SCHEMA)
    writer = rows.write.format("delta").mode("overwrite").option("replaceWhere", f"stage = '{stage}'")
    lakehouse._save(writer, "gold", STATE_TABLE)
