"""JSON helpers shared by the frozen config dataclasses."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

from interplab.errors import ConfigError

T = TypeVar("T")


def dataclass_from_json(cls: type[T], data: Mapping[str, Any]) -> T:
    """Build the dataclass ``cls`` from ``data``; unknown keys raise ConfigError naming the
    valid ones (the constructor's own validation reports bad values)."""
    fields = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - fields)
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} keys {unknown}; valid keys: {sorted(fields)}")
    return cls(**data)
