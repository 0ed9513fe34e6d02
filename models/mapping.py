"""Building frozen config dataclasses from YAML mappings, with unknown keys refused by name."""

from collections.abc import Mapping
from dataclasses import fields
from typing import Any, TypeVar

from models.errors import ModelError

T = TypeVar("T")


def dataclass_from_mapping(cls: type[T], values: Mapping[str, Any] | None, what: str, code: str) -> T:
    """``cls(**values)`` with YAML lists turned into tuples; an unknown key is a :class:`ModelError`."""
    values = dict(values or {})
    unknown = sorted(set(values) - {f.name for f in fields(cls)})  # type: ignore[arg-type]
    if unknown:
        raise ModelError(f"{what}: unknown keys {', '.join(unknown)}", code=code)
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})
