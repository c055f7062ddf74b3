"""One config system: dataclasses, validated in ``__post_init__``, fed from YAML and from the CLI.

Every stage defines a ``@dataclass`` subclass of :class:`Config` (``koroberta/<stage>/config.py``). The same class

* is built from a YAML section (``Config.from_dict``: unknown keys and wrong types are errors that name the file
  and key — a typo must never silently fall back to a default),
* generates its CLI options (``add_arguments``: ``--vocab-size 32000``; booleans are ``--flag/--no-flag``, never
  ``type=bool``),
* is serialised into every manifest (``to_dict``), and
* classifies every field as **identity** or **run-time** (``IDENTITY`` / ``RUNTIME`` class tuples, one place per
  stage): identity fields can change the stage's output bytes and key its completion marker (``identity()``);
  run-time fields (workers, threads, log intervals, launcher, ...) cannot, so changing one never reruns a stage.
  A field counts as run-time only when that is measured or follows from the code (e.g. a byte-identical-output
  test); when in doubt it is identity. ``tests/test_identity.py`` fails for any field left unclassified.

Field help text and choices live in ``field(metadata=...)`` via :func:`option`.

Why our own ~200 lines and not OmegaConf structured configs or pydantic (both installed): the dataclasses and their
``validate`` stay the single source of truth either way, so a library would only replace the coercion and the CLI
generation. OmegaConf 2.3 comes pinned by fairseq/hydra (our configs would move with fairseq's pins), converts
strings into int fields on merge (``"10"`` -> 10), and reports errors over several lines (``full_key: ...
object_type=...``); pydantic
would turn every config into a second class hierarchy whose multi-line ``ValidationError`` must be re-worded anyway.
What users need here -- one line naming the YAML file or the ``--option`` and the key, lossless conversions only,
``--flag/--no-flag`` booleans generated from the same fields -- is what this module does, and
``tests/test_config.py`` pins it.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import fnmatch
import os
import re
import types
import typing
from pathlib import Path
from typing import Any, Mapping, TypeVar

from koroberta.errors import ConfigError

C = TypeVar("C", bound="Config")
#: a plain decimal number, optionally with an exponent: what a float field accepts as a string (not nan/inf/1_000)
_DECIMAL = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


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
        if isinstance(value, str) and _DECIMAL.fullmatch(value.strip()):
            # YAML 1.1 (PyYAML) reads `lr: 1e-3` / `5E-4` (no dot, or no exponent sign) as a *string*; the number it
            # spells parses exactly, so take it rather than refuse what everyone writes in a config
            return float(value)
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
    """Base class. Subclasses override :meth:`validate` and call ``self.require`` for their checks, and list every
    field in exactly one of ``IDENTITY`` / ``RUNTIME``."""

    IDENTITY = ()  # type: tuple[str, ...]  (unannotated: class attributes, not dataclass fields)
    RUNTIME = ()  # type: tuple[str, ...]
    #: identity fields added after outputs of the stage existed, with the value that reproduces how the stage worked
    #: before them: at that value the field is left out of the identity, so a run completed before the field existed
    #: stays complete (the field is still in the manifest's config for people)
    LATER_IDENTITY = {}  # type: dict[str, Any]

    @classmethod
    def at_later_default(cls, name: str, value: Any) -> bool:
        return name in cls.LATER_IDENTITY and value == cls.LATER_IDENTITY[name]

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            try:
                setattr(self, f.name, _coerce(value, hints[f.name], f"{type(self).__name__}.{f.name}"))
            except ConfigError as e:
                raise with_fields(e, (f.name,)) from None
            choices = f.metadata.get("choices")
            if choices and getattr(self, f.name) not in choices and getattr(self, f.name) is not None:
                raise with_fields(ConfigError(f"{self._section()}.{f.name}={getattr(self, f.name)!r} is not one of "
                                               f"{', '.join(map(str, choices))}"), (f.name,))
        self.validate()

    # -- validation helpers -------------------------------------------------------------------------------------------
    def validate(self) -> None:
        """Cross-field checks. Raise :class:`ConfigError` via :meth:`require`."""

    @classmethod
    def _section(cls) -> str:
        return getattr(cls, "SECTION", cls.__name__)

    def require(self, ok: bool, message: str, fields: typing.Sequence[str] | None = None) -> None:
        """Raise a :class:`ConfigError` with ``message`` unless ``ok``. ``fields`` are the fields the check is about
        (default: the field names the message spells out, ``max_*_rows`` matching as a pattern); :meth:`from_args`
        blames exactly those -- the option on the command line or the key in the YAML file that set them -- never
        an unrelated option that happened to be given with them."""
        if not ok:
            raise with_fields(ConfigError(f"{self._section()}: {message}"),
                               tuple(fields) if fields is not None else self._fields_named_in(message))

    @classmethod
    def _fields_named_in(cls, message: str) -> tuple[str, ...]:
        words = set(re.findall(r"[A-Za-z_*]+", message))
        return tuple(f.name for f in dataclasses.fields(cls)
                     if f.name in words or any("*" in w and fnmatch.fnmatchcase(f.name, w) for w in words))

    # -- (de)serialisation --------------------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls: type[C], data: Mapping[str, Any] | None, *, source: str = "config") -> C:
        data = dict(data or {})
        cls.check_keys(data, source)
        return cls(**data)

    @classmethod
    def check_keys(cls, data: Mapping[str, Any], source: object) -> None:
        """Refuse keys that are not fields (a typo must never fall back to the default), naming ``source``."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            close = difflib.get_close_matches(unknown[0], sorted(names), n=1)
            fix = f"rename {unknown[0]} to {close[0]}" if close else "remove it (the valid keys are listed)"
            raise ConfigError(f"{source}: unknown key(s) {', '.join(unknown)} in section "
                              f"'{cls._section()}'; valid keys: {', '.join(sorted(names))}", fix=fix)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = v.to_dict() if isinstance(v, Config) else v
        return out

    def replace(self: C, **changes: Any) -> C:
        return dataclasses.replace(self, **changes)

    # -- identity -----------------------------------------------------------------------------------------------------
    @classmethod
    def classification_problems(cls) -> list[str]:
        """Fields listed in neither or both of IDENTITY/RUNTIME, and listed names that are not fields."""
        names = [f.name for f in dataclasses.fields(cls)]
        ident, run = set(cls.IDENTITY), set(cls.RUNTIME)
        out = [f"{cls.__name__}.{n}: not classified as identity or run-time" for n in names
               if n not in ident and n not in run]
        out += [f"{cls.__name__}.{n}: classified as both identity and run-time" for n in sorted(ident & run)]
        out += [f"{cls.__name__}.{n}: classified but not a field" for n in sorted((ident | run) - set(names))]
        return out

    def identity(self) -> dict[str, Any]:
        """The values that decide this stage's output bytes: the IDENTITY fields (nested configs by their own
        identity) plus :meth:`derived_identity`. Completion markers key on this, never on run-time fields."""
        problems = self.classification_problems()
        if problems:  # a programming error, caught by tests/test_identity.py before it can reach a user
            raise TypeError("; ".join(problems))
        out: dict[str, Any] = {}
        for name in self.IDENTITY:
            v = getattr(self, name)
            if self.at_later_default(name, v):
                continue
            out[name] = v.identity() if isinstance(v, Config) else v
        out.update(self.derived_identity())
        return out

    def derived_identity(self) -> dict[str, Any]:
        """Identity values computed from run-time fields (e.g. training's effective batch)."""
        return {}

    # -- CLI ----------------------------------------------------------------------------------------------------------
    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser, *, exclude: typing.Collection[str] = (),
                      only: typing.Collection[str] | None = None) -> None:
        """Add one ``--option`` per CLI-visible field (``only``: just these, for a subcommand that uses a few).
        Defaults are left as ``None`` so that an unset option keeps the value from ``--config`` (or the dataclass
        default)."""
        hints = typing.get_type_hints(cls)
        group = parser.add_argument_group(f"{cls._section()} options")
        for f in dataclasses.fields(cls):
            if not f.metadata.get("cli", True) or f.name in exclude or (only is not None and f.name not in only):
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
        return cls.from_args(args, base=cls.section_of(load_yaml(config), config) if config else None,
                             source=config)

    @classmethod
    def from_args(cls: type[C], args: argparse.Namespace, base: C | Mapping[str, Any] | None = None, *,
                  source: str | Path | None = None) -> C:
        """Config = dataclass defaults <- ``base`` (YAML section, read from the file ``source``) <- options given on
        the command line.

        A bad value is reported where it came from: an unknown key or bad value of the YAML section names the file
        ``source``; a command-line option that fails validation names the option (``--lr``), not the file.
        """
        data = base.to_dict() if isinstance(base, Config) else dict(base or {})
        where = str(source) if source is not None else "config"
        cls.check_keys(data, where)
        given = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls)
                 if f.metadata.get("cli", True) and getattr(args, f.name, None) is not None}
        try:
            return cls.from_dict({**data, **given}, source=where)
        except ConfigError as e:
            culprits = _cli_culprits(cls, data, given, e) if given else []
            if culprits:
                raise _cli_error(cls, e, data, given, culprits, source) from None
            if source is None:
                raise
            fix = None if "— fix:" in str(e) else f"correct the `{cls._section()}:` section of {source}"
            raise ConfigError(f"{source}: {e}", fix=fix) from None


def with_fields(e: ConfigError, fields: typing.Sequence[str]) -> ConfigError:
    """``e`` tagged with the config fields it is about (``e.fields``), for :meth:`Config.from_args` to blame."""
    e.fields = tuple(fields)  # type: ignore[attr-defined]
    return e


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _cli_error(cls: type[Config], e: ConfigError, data: Mapping[str, Any], given: Mapping[str, Any],
               culprits: list[str], source: str | Path | None) -> ConfigError:
    """The one-line error for command-line options ``culprits`` that make the config invalid. A check that involves
    other fields too (``warmup_updates < max_update``) says where each of those came from -- the YAML file or the
    default -- and the fix offers changing either side."""
    defaults = {f.name: f.default if f.default is not dataclasses.MISSING else (
        f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        for f in dataclasses.fields(cls)}
    others = [f for f in getattr(e, "fields", ()) if f not in culprits and f in defaults]
    opts = ", ".join(f"{_flag(k)} {_shown(given[k])}" for k in culprits)
    where = [f"{f}={data[f]!r} from {source}" if f in data else f"{f}={defaults[f]!r} is the default" for f in others]
    msg = f"command-line option{'s' if len(culprits) > 1 else ''} {opts}: {e}" + (
        f" ({'; '.join(where)})" if where else "")
    if "— fix:" in str(e):
        return ConfigError(msg)
    flags = " / ".join(_flag(k) for k in culprits)
    if len(culprits) == 1 and not others:
        k = culprits[0]
        if source is None:
            instead = "the default"
        elif k in data:
            instead = f"the value in {source}"
        else:  # the file does not set it: say what leaving the option out really gives
            instead = f"the value in {source}, or the default {defaults[k]!r} as it sets none"
        fix = f"correct {flags} on the command line (or leave it out to use {instead})"
    else:
        also = [f"change {f} in the `{cls._section()}:` section of {source}" if f in data else
                (f"pass {_flag(f)} too" if _is_cli(cls, f) else f"set {f} in the `{cls._section()}:` section")
                + f" (the default {defaults[f]!r} does not fit)" * (f not in data) for f in others]
        fix = f"correct {flags} on the command line" + (f", or {' / '.join(also)}" if also else "")
    return ConfigError(msg, fix=fix)


def _shown(value: Any) -> str:
    """A command-line value as it was typed: ``--adam-betas 0.9 0.98``, not ``[0.9, 0.98]``."""
    return " ".join(map(str, value)) if isinstance(value, (list, tuple)) else repr(value)


def _is_cli(cls: type[Config], name: str) -> bool:
    return any(f.name == name and f.metadata.get("cli", True) for f in dataclasses.fields(cls))


def _cli_culprits(cls: type[Config], data: Mapping[str, Any], given: Mapping[str, Any],
                  e: ConfigError | None = None) -> list[str]:
    """Which command-line options make the config fail with ``e``; [] when the file (or the defaults) is to blame.

    The options that set a field the failed check is about (``e.fields``, see :meth:`Config.require`): an option
    given alongside, valid or not, is never blamed for another field's check. When the check names no field that
    was given and the YAML section alone is valid (so the command line must be involved), fall back to trying: the
    options whose removal changes the error, else each option that fails on its own on top of the YAML."""
    def error(d: Mapping[str, Any]) -> str | None:
        try:
            cls.from_dict(d)
        except ConfigError as err:
            return str(err)
        return None

    fields = getattr(e, "fields", ()) if e is not None else ()
    named = [k for k in given if k in fields]
    if named:
        return named
    if error(data) is not None:
        return []
    if e is not None:
        changed = [k for k in given if error({**data, **{j: v for j, v in given.items() if j != k}}) != str(e)]
        if changed:
            return changed
    return [k for k in given if error({**data, k: given[k]}) is not None] or list(given)


def available_cpus() -> int:
    """CPUs this process may use: the affinity mask (what taskset, cgroups-aware launchers and SLURM's task
    binding give us), capped by ``SLURM_CPUS_PER_TASK`` when set -- not ``os.cpu_count()``, which on a 128-core node
    with ``--cpus-per-task=16`` would start 128 processes. The meaning of ``workers: 0``."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        n = os.cpu_count() or 1
    slurm = os.environ.get("SLURM_CPUS_PER_TASK", "")
    if slurm.isdigit() and int(slurm) > 0:
        n = min(n, int(slurm))
    return max(1, n)


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file into a dict, with errors that name the file -- and for a syntax error
    ``FILE:LINE:COLUMN`` (1-based, what editors jump to) with the problem and the fix."""
    import yaml

    p = Path(path)
    try:
        # a pipe is fine (`koroberta run <(sed s/kowiki/test/ configs/demo.yaml)`): a config is read exactly once
        if not p.is_file() and not p.is_fifo():
            if p.is_dir():
                what = "is a directory, not a YAML file"
            elif p.exists():
                what = f"is {'a socket' if p.is_socket() else 'a device'}, not a YAML file"
            else:
                what = "config file not found"
            raise ConfigError(f"{p}: {what}", fix="pass an existing YAML file, e.g. configs/demo.yaml")
        raw = p.read_bytes()
    except PermissionError as e:  # else the CLI would report it as an output location it cannot write
        raise ConfigError(f"{p}: cannot be read ({e.strerror})",
                          fix="make it (and the directories above it) readable for this user") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise ConfigError(f"not UTF-8 ({e.reason} at byte {e.start})", path=f"{p}:{line}",
                          fix="re-save the file as UTF-8") from None
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as e:
        raise _yaml_syntax_error(p, text, e) from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: invalid YAML ({str(e).splitlines()[0]})", fix="correct the syntax") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: top level must be a mapping of sections (corpus:, spm:, ...)")
    return data


def _yaml_syntax_error(p: Path, text: str, e: Any) -> ConfigError:
    """``FILE:LINE:COL: <problem>`` for a PyYAML scanner/parser error, with a fix for the usual mistakes."""
    mark = e.problem_mark
    if mark is None:
        return ConfigError(f"{p}: invalid YAML ({e.problem or e})", fix="correct the syntax")
    line, col = mark.line + 1, mark.column + 1
    lines = text.split("\n")
    here = lines[mark.line] if mark.line < len(lines) else ""
    where = f"{p}:{line}:{col}"
    if here[mark.column: mark.column + 1] == "\t":
        # PyYAML's "found character '\t' that cannot start any token" does not say it is about the whitespace
        if not here[: mark.column].strip():
            return ConfigError("found a tab character where indentation is expected", path=where,
                               fix=f"YAML indents with spaces, not tabs: replace the tab on line {line} with spaces")
        return ConfigError("found a tab character where YAML expects a space", path=where,
                           fix=f"replace the tab on line {line}, column {col} with a space")
    problem = e.problem or "invalid YAML"
    opened = e.context_mark
    if opened is not None and e.context:
        what = e.context.replace("while ", "", 1)
        ctx = f" ({what} that starts at line {opened.line + 1}, column {opened.column + 1})"
    else:
        ctx = ""
    if "end of stream" in problem and e.context and "quoted" in e.context:
        fix = f"close the quote opened at line {opened.line + 1}" if opened is not None else "close the quote"
    elif "flow" in (e.context or ""):
        fix = (f"close the bracket opened at line {opened.line + 1}, column {opened.column + 1}"
               if opened is not None else "close the bracket")
    elif "mapping values are not allowed" in problem:
        fix = f"a value on line {line} holds ': ': quote it ('...'), or put the key on its own line"
    else:
        fix = (f"correct line {line}: the keys of one section are indented by the same number of spaces, "
               f"one `key: value` per line")
    return ConfigError(f"invalid YAML: {problem}{ctx}", path=where, fix=fix)
