"""One config system: dataclasses, validated in ``__post_init__``, fed from YAML and from the CLI.

Every stage defines a ``@dataclass`` subclass of :class:`Config` (``koroberta/<stage>/config.py``). The same class

* is built from a YAML section (``Config.from_dict``: unknown keys and wrong types are errors that name the file
  and key — a typo must never silently fall back to a default),
* generates its CLI options (``add_arguments``: ``--vocab-size 32000``; booleans are ``--flag/--no-flag``, never
  ``type=bool``),
* takes ``--set SECTION.KEY=VALUE`` overrides of a whole config file (``apply_overrides`` on the loaded mapping,
  before any dataclass is built, so they pass the same validation; ``resolve_config`` names the override in an
  error), and prints back as annotated YAML (``annotated_yaml``: ``koroberta config show``),
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
                # a nested config's error keeps the key inside it (train.lr, not just train): a --set override
                # is blamed by that path
                nested = dataclasses.is_dataclass(_unwrap_optional(hints[f.name])[0])
                inner = getattr(e, "paths", ()) if nested else ()
                raise with_fields(e, (f.name,), paths=tuple(f"{f.name}.{p}" for p in inner) or None) from None
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
            e = ConfigError(f"{source}: unknown key(s) {', '.join(unknown)} in section "
                            f"'{cls._section()}'; valid keys: {', '.join(sorted(names))}", fix=fix)
            e.paths = tuple(unknown)  # type: ignore[attr-defined]
            raise e

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


def with_fields(e: ConfigError, fields: typing.Sequence[str],
                paths: typing.Sequence[str] | None = None) -> ConfigError:
    """``e`` tagged with the config fields it is about (``e.fields``), for :meth:`Config.from_args` to blame, and
    with their dotted key paths from the outermost config (``e.paths``, default: ``fields``), for
    :func:`resolve_config` to blame a ``--set`` override."""
    e.fields = tuple(fields)  # type: ignore[attr-defined]
    e.paths = tuple(paths) if paths is not None else e.fields  # type: ignore[attr-defined]
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


# -- command-line overrides of a whole config file (`--set train.lr=3e-4`) -------------------------------------------
_SET_FORM = ("write it as SECTION.KEY=VALUE, e.g. --set train.lr=3e-4 (a top-level key has no section: "
             "--set workdir=runs/x)")


@dataclasses.dataclass(frozen=True)
class Override:
    """One command-line override of a config file: the key path (``("train", "lr")``), the value, and the words the
    user typed (``--set train.lr=3e-4``, ``--workers 4``), which every error about it names."""

    key: tuple[str, ...]
    value: Any
    shown: str

    @property
    def dotted(self) -> str:
        return ".".join(self.key)


def parse_override(item: str) -> Override:
    """``SECTION.KEY=VALUE`` (``--set``'s argument) -> :class:`Override`. The key is split on dots; the value, all
    after the first ``=``, is read as YAML (``yaml.safe_load``) exactly as the same text in the file would be:
    ``3e-4``, ``[0.9, 0.98]``, ``{valid_fraction: 0.01}``, ``null``; an empty value is null, as ``key:`` is."""
    import shlex

    import yaml

    shown = f"--set {shlex.quote(item)}"
    key, sep, text = item.partition("=")
    parts = tuple(p.strip() for p in key.split("."))
    if not sep:
        raise ConfigError(f"{shown}: no '=' in it; an override is KEY=VALUE", fix=_SET_FORM)
    if not key.strip():
        raise ConfigError(f"{shown}: the key before '=' is empty", fix=_SET_FORM)
    if not all(parts):
        raise ConfigError(f"{shown}: the key {key.strip()!r} has an empty part between dots", fix=_SET_FORM)
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as e:
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{shown}: the value {text!r} is not valid YAML ({problem})",
                          fix="give a YAML value: 3e-4, text, [0.9, 0.98] for a list, {key: value} for a mapping; "
                              "quote the whole item for the shell ('--set KEY=VALUE')") from None
    return Override(parts, value, shown)


def apply_overrides(data: Mapping[str, Any], overrides: typing.Iterable[str | Override], *,
                    file: str | Path | None = None) -> dict[str, Any]:
    """A copy of the loaded YAML mapping ``data`` with ``overrides`` (``--set`` strings or :class:`Override`) applied
    in order, so a later override of the same key wins. They act on the mapping, before any dataclass is built: the
    result goes through the very same validation as the file.

    A missing (or null) section on the way is created; a mapping value merges into a mapping already there (keys it
    does not name keep the file's values: ``--set 'corpus={valid_fraction: 0.01}'`` does not reset the rest of the
    section to the defaults); any other value replaces. A key path through something that is not a mapping (``--set
    workers.x=1`` while the file says ``workers: 0``) is a one-line error naming the override and ``file``."""
    import copy

    out = copy.deepcopy(dict(data))
    for o in overrides:
        o = parse_override(o) if isinstance(o, str) else o
        node = out
        for i, part in enumerate(o.key[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif isinstance(child, Mapping):
                child = node[part] = dict(child)
            else:
                at = ".".join(o.key[: i + 1])
                if _lookup(data, at) != child:
                    where = " (set by an earlier override)"
                else:
                    where = f" in {file}" if file is not None else ""
                raise ConfigError(f"{o.shown}: {at} is {child!r}{where}, not a section with keys",
                                  fix=f"set {at} itself (--set {at}=VALUE), or name a key inside a section")
            node = child
        last, value = o.key[-1], copy.deepcopy(o.value)
        node[last] = _merged(node[last], value) if isinstance(value, Mapping) and isinstance(
            node.get(last), Mapping) else value
    return out


def _merged(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merged(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else v
    return out


def resolve_config(cls: type[C], data: Mapping[str, Any], overrides: typing.Sequence[str | Override] = (), *,
                   file: str | Path) -> C:
    """``cls`` built from a whole config file's mapping ``data`` (read from ``file``) with command-line
    ``overrides`` applied (:func:`apply_overrides`).

    An invalid value is reported where it came from, with the wording of the check: the override that set it
    (``--set train.lr=-1: train: lr=-1.0 must be > 0 — fix: correct --set train.lr=-1 ...``), else the file
    (``FILE: train: ...``). Blamed are the overrides whose key is, contains or lies inside a key the failed check
    is about (``e.paths``); when the check names none, the overrides without which the error changes -- and only
    when the file alone is valid."""
    ovs = [parse_override(o) if isinstance(o, str) else o for o in overrides]
    merged = apply_overrides(data, ovs, file=file)
    try:
        return cls.from_dict(merged, source="top level")
    except ConfigError as e:
        raise _located(cls, e, data, ovs, file) from None


def _located(cls: type[Config], e: ConfigError, data: Mapping[str, Any], ovs: list[Override],
             file: str | Path) -> ConfigError:
    """The one-line error for ``e``, raised by the config of ``data`` (from ``file``) with ``ovs`` applied."""
    effective = list({o.dotted: o for o in ovs}.values())  # a later override of the same key replaced the earlier
    paths = getattr(e, "paths", ())

    def overlaps(key: str, path: str) -> bool:
        return key == path or path.startswith(key + ".") or key.startswith(path + ".")

    culprits = [o for o in effective if any(overlaps(o.dotted, p) for p in paths)]
    if not culprits and effective:
        culprits = _override_culprits(cls, data, effective, str(e))
    has_fix = "— fix:" in str(e)
    if not culprits:
        if has_fix or not paths:
            return ConfigError(f"{file}: {e}", fix=None if has_fix else f"correct {file}")
        p = paths[0]
        verb = "correct" if _lookup(data, p) is not _ABSENT else "set"
        return ConfigError(f"{file}: {e}", fix=f"{verb} {p} in {file}, or override it with --set {p}=VALUE")
    shown = ", ".join(o.shown for o in culprits)
    if has_fix:
        return ConfigError(f"{shown}: {e}")
    others = [p for p in paths if not any(overlaps(o.dotted, p) for o in culprits)]
    if others:
        also = " / ".join(f"{p} ({'its value in ' + str(file) if _lookup(data, p) is not _ABSENT else 'the default'}"
                          f" does not fit: --set {p}=VALUE)" for p in others)
        return ConfigError(f"{shown}: {e}", fix=f"correct {' / '.join(o.shown for o in culprits)}, or change {also}")
    instead = " / ".join("the value in " + str(file) if _lookup(data, o.dotted) is not _ABSENT else "the default"
                         for o in culprits)
    it = "it" if len(culprits) == 1 else "them"
    return ConfigError(f"{shown}: {e}",
                       fix=f"correct {' / '.join(o.shown for o in culprits)} (or leave {it} out to use {instead})")


def _override_culprits(cls: type[Config], data: Mapping[str, Any], effective: list[Override],
                       error: str) -> list[Override]:
    """The overrides that make a check naming no overridden key fail with ``error``: [] when the file alone fails
    the same way; else those whose removal changes the error, else each that fails on top of the file alone."""
    def fails(ovs: list[Override]) -> str | None:
        try:
            cls.from_dict(apply_overrides(data, ovs), source="top level")
        except ConfigError as err:
            return str(err)
        return None

    if fails([]) == error:
        return []
    changed = [o for o in effective if fails([x for x in effective if x is not o]) != error]
    return changed or [o for o in effective if fails([o]) is not None] or effective


_ABSENT = object()


def _lookup(data: Mapping[str, Any], dotted: str) -> Any:
    """The value at a dotted key path of a loaded YAML mapping, or ``_ABSENT``."""
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return _ABSENT
        node = node[part]
    return node


# -- the resolved config as YAML, every field annotated ----------------------------------------------------------------
IDENTITY_CLASS, RUNTIME_CLASS = "identity", "run-time"
LATER_DEFAULT_CLASS = "identity (left out of the identity at this value)"


def field_class(cls: type[Config], name: str, value: Any) -> str:
    """How field ``name`` of ``cls`` at ``value`` counts: identity, run-time, or a LATER_IDENTITY field at the
    value that leaves it out of the identity (so a change of it still reruns the stage)."""
    if name in cls.RUNTIME:
        return RUNTIME_CLASS
    return LATER_DEFAULT_CLASS if cls.at_later_default(name, value) else IDENTITY_CLASS


def field_classes(cfg: Config, prefix: str = "") -> dict[str, str]:
    """``{dotted key: class}`` for every leaf field of ``cfg`` (nested configs by their fields)."""
    out: dict[str, str] = {}
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if isinstance(v, Config):
            out.update(field_classes(v, f"{prefix}{f.name}."))
        else:
            out[prefix + f.name] = field_class(type(cfg), f.name, v)
    return out


def yaml_value(value: Any) -> str:
    """``value`` as one line of YAML flow syntax that reads back as the same value (strings YAML would take for
    something else are quoted: ``'yes'``, ``'1.0'``)."""
    import yaml

    def plain(v: Any) -> Any:  # safe_dump has no tuples, Paths
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, Mapping):
            return {str(k): plain(x) for k, x in v.items()}
        return str(v) if isinstance(v, Path) else v

    text = yaml.safe_dump([plain(value)], default_flow_style=True, allow_unicode=True, width=2**31 - 1,
                          sort_keys=False).strip()
    return text[1:-1]  # the one item of the list: a list is how safe_dump writes a bare scalar without `...`


def annotated_yaml(cfg: Config, *, header: typing.Sequence[str] = (),
                   section_note: typing.Callable[[str, Config], str | None] | None = None) -> str:
    """``cfg`` (all fields, defaults included) as YAML that :func:`load_yaml` + ``from_dict`` take back as the same
    config, each field with its class (:func:`field_class`) as a trailing comment. ``header`` lines become leading
    comments; ``section_note(name, section)`` a comment line above each top-level section (a nested config)."""
    rows: list[tuple[str, str | None]] = [(f"# {h}" if h else "#", None) for h in header]

    def walk(c: Config, indent: str) -> None:
        for f in dataclasses.fields(c):
            v = getattr(c, f.name)
            if isinstance(v, Config):
                note = section_note(f.name, v) if section_note is not None and not indent else None
                if not indent:
                    rows.append(("", None))
                if note:
                    rows.append((f"{indent}# {note}", None))
                rows.append((f"{indent}{f.name}:", None if not indent else field_class(type(c), f.name, v)))
                walk(v, indent + "  ")
            else:
                rows.append((f"{indent}{f.name}: {yaml_value(v)}", field_class(type(c), f.name, v)))

    walk(cfg, "")
    width = min(max((len(t) for t, c in rows if c), default=0), 56)
    return "\n".join(f"{t.ljust(width)}  # {c}" if c else t for t, c in rows) + "\n"
