"""One config system: dataclasses, validated in ``__post_init__``, fed from YAML and from the CLI.

Every stage defines a ``@dataclass`` subclass of :class:`Config` (``koroberta/<stage>/config.py``). The same class

* is built from a YAML section (``Config.from_dict``: unknown keys and wrong types are errors that name the file
  and key — a typo must never silently fall back to a default),
* generates its CLI options (``add_arguments``: ``--vocab-size 32000``; booleans are ``--flag/--no-flag``, never
  ``type=bool``),
* is serialised into every manifest (``to_dict``) so a completion marker is tied to the exact config.

Field help text and choices live in ``field(metadata=...)`` via :func:`option`.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import types
import typing
from pathlib import Path
from typing import Any, Mapping, TypeVar

from koroberta.errors import ConfigError

C = TypeVar("C", bound="Config")


def option(default: Any = dataclasses.MISSING, *, help: str = "", choices: typing.Sequence[Any] | None = None,
           default_factory: Any = dataclasses.MISSING, cli: bool = True) -> Any:
    """A dataclass field with CLI help/choices. ``cli=False`` keeps it out of the generated CLI options."""
    md = {"help": help, "choices": tuple(choices) if choices else None, "cli": cli}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=md)
    return dataclasses.field(default=default, metadata=md)


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0], True
    return tp, False


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check/convert one YAML value to the field type. Only lossless conversions (int -> float)."""
    inner, optional = _unwrap_optional(tp)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{where} may not be null")
    origin = typing.get_origin(inner)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a list, got {type(value).__name__} {value!r}")
        (item_tp, *_) = typing.get_args(inner) or (Any,)
        return [_coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict or inner is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a mapping, got {value!r}")
        return dict(value)
    if inner is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if inner is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        return value
    if inner is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        return float(value)
    if inner is str:
        if not isinstance(value, (str, Path)):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return str(value)
    if dataclasses.is_dataclass(inner):
        if isinstance(value, inner):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where} must be a mapping, got {value!r}")
        return inner.from_dict(value, source=where)
    return value


@dataclasses.dataclass
class Config:
    """Base class. Subclasses override :meth:`validate` and call ``self.require`` for their checks."""

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            setattr(self, f.name, _coerce(value, hints[f.name], f"{type(self).__name__}.{f.name}"))
            choices = f.metadata.get("choices")
            if choices and getattr(self, f.name) not in choices and getattr(self, f.name) is not None:
                raise ConfigError(f"{self._section()}.{f.name}={getattr(self, f.name)!r} is not one of "
                                  f"{', '.join(map(str, choices))}")
        self.validate()

    # -- validation helpers -------------------------------------------------------------------------------------------
    def validate(self) -> None:
        """Cross-field checks. Raise :class:`ConfigError` via :meth:`require`."""

    @classmethod
    def _section(cls) -> str:
        return getattr(cls, "SECTION", cls.__name__)

    def require(self, ok: bool, message: str) -> None:
        if not ok:
            raise ConfigError(f"{self._section()}: {message}")

    # -- (de)serialisation --------------------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls: type[C], data: Mapping[str, Any] | None, *, source: str = "config") -> C:
        data = dict(data or {})
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"{source}: unknown key(s) {', '.join(unknown)} in section "
                              f"'{cls._section()}'; valid keys: {', '.join(sorted(names))}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = v.to_dict() if isinstance(v, Config) else v
        return out

    def replace(self: C, **changes: Any) -> C:
        return dataclasses.replace(self, **changes)

    def sha256(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()

    # -- CLI ----------------------------------------------------------------------------------------------------------
    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser, *, exclude: typing.Collection[str] = ()) -> None:
        """Add one ``--option`` per CLI-visible field. Defaults are left as ``None`` so that an unset option keeps
        the value from ``--config`` (or the dataclass default)."""
        hints = typing.get_type_hints(cls)
        group = parser.add_argument_group(f"{cls._section()} options")
        for f in dataclasses.fields(cls):
            if not f.metadata.get("cli", True) or f.name in exclude:
                continue
            flag = "--" + f.name.replace("_", "-")
            tp, _ = _unwrap_optional(hints[f.name])
            default = f.default if f.default is not dataclasses.MISSING else (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
            help_ = f"{f.metadata.get('help', '')} (default: {default!r})"
            kw: dict[str, Any] = {"dest": f.name, "default": None, "help": help_}
            if f.metadata.get("choices"):
                kw["choices"] = f.metadata["choices"]
            if tp is bool:
                group.add_argument(flag, action=argparse.BooleanOptionalAction, **kw)
            elif typing.get_origin(tp) in (list, tuple):
                (item_tp, *_) = typing.get_args(tp) or (str,)
                group.add_argument(flag, nargs="+", type=item_tp, **kw)
            elif tp in (int, float, str):
                group.add_argument(flag, type=tp, **kw)

    @classmethod
    def section_of(cls, data: Mapping[str, Any], path: str | Path) -> dict[str, Any]:
        """This class's section of a loaded YAML file (``{}`` when absent)."""
        section = data.get(cls._section()) or {}
        if not isinstance(section, Mapping):
            raise ConfigError(f"{path}: `{cls._section()}:` must be a mapping")
        return dict(section)

    @classmethod
    def from_cli(cls: type[C], args: argparse.Namespace, config: str | Path | None) -> C:
        """Config = dataclass defaults <- the ``config`` YAML file's section <- options given on the command line."""
        return cls.from_args(args, base=cls.section_of(load_yaml(config), config) if config else None)

    @classmethod
    def from_args(cls: type[C], args: argparse.Namespace, base: C | Mapping[str, Any] | None = None) -> C:
        """Config = dataclass defaults <- ``base`` (YAML section) <- options given on the command line."""
        data = base.to_dict() if isinstance(base, Config) else dict(base or {})
        for f in dataclasses.fields(cls):
            v = getattr(args, f.name, None)
            if v is not None and f.metadata.get("cli", True):
                data[f.name] = v
        return cls.from_dict(data, source="command line")


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file into a dict, with errors that name the file."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: config file not found", fix="pass an existing YAML file, e.g. configs/demo.yaml")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: invalid YAML ({str(e).splitlines()[0]})", fix="correct the syntax") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: top level must be a mapping of sections (corpus:, spm:, ...)")
    return data
