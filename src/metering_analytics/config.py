"""Pipeline settings from conf/pipeline.yml, validated on load with errors that name the bad entry."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from metering_analytics.io.lakehouse import LAYERS, Lakehouse

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG = PROJECT_ROOT / "conf" / "pipeline.yml"


class ConfigError(ValueError):
    """A configuration file is missing, unreadable or has a bad entry; the message names it."""


@dataclass(frozen=True)
class SourceConfig:
    capture_path: str
    capture_path_patterns: tuple[str, ...]
    snapshot_path: str | None = None
    max_files_per_trigger: int = 1000


@dataclass(frozen=True)
class PipelineConfig:
    source: SourceConfig
    lakehouse: Lakehouse
    price_catalog: str
    base_dir: Path = field(default=PROJECT_ROOT)

    def with_overrides(self, *, capture_path: str | None = None, lakehouse_root: str | None = None,
                       snapshot_path: str | None = None) -> "PipelineConfig":
        source = self.source
        if capture_path is not None or snapshot_path is not None:
            source = SourceConfig(
                capture_path=str(Path(capture_path).resolve()) if capture_path else source.capture_path,
                capture_path_patterns=source.capture_path_patterns,
                snapshot_path=str(Path(snapshot_path).resolve()) if snapshot_path else source.snapshot_path,
                max_files_per_trigger=source.max_files_per_trigger,
            )
        lakehouse = self.lakehouse
        if lakehouse_root is not None:
            lakehouse = Lakehouse(root=str(Path(lakehouse_root).resolve()), catalog=lakehouse.catalog,
                                  schemas=dict(lakehouse.schemas))
        return PipelineConfig(source=source, lakehouse=lakehouse, price_catalog=self.price_catalog,
                              base_dir=self.base_dir)


def read_yaml(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"configuration file not found: {path}")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc


def _require(mapping: Any, key: str, where: str) -> Any:
    if not isinstance(mapping, dict) or key not in mapping or mapping[key] in (None, ""):
        raise ConfigError(f"{where}: missing required entry '{key}'")
    return mapping[key]


def _resolve(base: Path, value: str | None) -> str | None:
    if value is None:
        return None
    p = Path(value)
    return str(p if p.is_absolute() or "://" in value else (base / p).resolve())


def load_config(path: str | Path | None = None) -> PipelineConfig:
    path = Path(path) if path else DEFAULT_CONFIG
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    base = path.resolve().parent.parent  # conf/ lives in the project root
    src = _require(raw, "source", str(path))
    patterns = tuple(_require(src, "capture_path_patterns", f"{path}: source"))
    for i, pattern in enumerate(patterns):
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise ConfigError(f"{path}: source.capture_path_patterns[{i}] is not a valid regex: {exc}") from exc
        if compiled.groups < 2:
            raise ConfigError(
                f"{path}: source.capture_path_patterns[{i}] needs two groups (event hub, partition id)")
    max_files = src.get("max_files_per_trigger", 1000)
    if not isinstance(max_files, int) or max_files < 1:
        raise ConfigError(f"{path}: source.max_files_per_trigger must be a positive integer, got {max_files!r}")
    source = SourceConfig(
        capture_path=_resolve(base, _require(src, "capture_path", f"{path}: source")),
        capture_path_patterns=patterns,
        snapshot_path=_resolve(base, src.get("snapshot_path")),
        max_files_per_trigger=max_files,
    )
    lh = _require(raw, "lakehouse", str(path))
    schemas = dict(lh.get("schemas") or {})
    unknown = set(schemas) - set(LAYERS)
    if unknown:
        raise ConfigError(f"{path}: lakehouse.schemas has unknown layers {sorted(unknown)}; expected {LAYERS}")
    lakehouse = Lakehouse(
        root=_resolve(base, lh.get("root")),
        catalog=lh.get("catalog"),
        schemas={layer: schemas.get(layer, layer) for layer in LAYERS},
    )
    return PipelineConfig(
        source=source,
        lakehouse=lakehouse,
        price_catalog=_resolve(base, _require(raw, "price_catalog", str(path))),
        base_dir=base,
    )
