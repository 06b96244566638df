"""Plug settings: declared once, with type, default and help; validated before anything starts.

A plug declares its settings as a subclass of `Settings` (it becomes a keyword-only dataclass):

    class LocalSettings(Settings):
        passthrough = ("distributed:LocalCluster",)
        processes: bool = setting(True, "Run workers in their own processes.")

From that one declaration sdt-core derives validation (`validate`), the CLI options of
`sdt up NAME`, the table of `sdt info NAME` and the record in `list_plugs()`.

Keyword arguments that are not declared settings pass through to the plug's backend when
they are parameters of one of the callables named in `passthrough` (imported only then);
anything else is an unknown setting.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import importlib
import inspect
import math
import re
import types
import typing
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

from sdt_core.errors import SettingsError
from sdt_core.plugs.passthrough import check_passthrough

MASK = "***"
_SECRET_NAME = re.compile(r"secret|token|password|passwd|credential|private|access_key", re.I)
#: The password of a URL's user info, `scheme://USER:PASSWORD@host`, with or without its scheme.
_PASSWORD = re.compile(r"""(?P<user>[^\s/:@'"]*):[^\s/@'"]+@""")


def mask_credentials(text: str) -> str:
    """`text` with the password of every URL's user info masked: `s3://KEY:SECRET@bucket` becomes
    `s3://KEY:***@bucket`. Whatever plug parses a data URL, sdt-core passes what it reports of
    data locations through here: error lines, reprs, run.json, result rows and logs."""
    return _PASSWORD.sub(lambda found: f"{found['user']}:{MASK}@", text)


def setting(
    default: Any,
    help: str,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    choices: tuple[Any, ...] | None = None,
    secret: bool = False,
) -> Any:
    """Declare one setting of a plug: its default, a one-line help and its bounds.

    `secret=True` keeps the value (or, for a mapping, its values) out of every repr,
    message and report.
    """
    metadata = {"help": help, "ge": ge, "gt": gt, "le": le, "choices": choices, "secret": secret}
    if isinstance(default, (dict, list, set)):
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class SettingInfo:
    """What `list_plugs()` and `sdt info` tell about one setting."""

    name: str
    type: str
    default: Any
    help: str
    secret: bool = False


@dataclasses.dataclass(kw_only=True, repr=False)
class Options:
    """Base of declared options (a plug's settings, a data plug's options): no options yet.

    Subclasses become keyword-only dataclasses; declare each option with `setting()`.
    """

    #: "module:attribute" of backend callables whose keyword parameters pass through
    #: (in `extra`); any other undeclared keyword is an error.
    passthrough: ClassVar[tuple[str, ...]] = ()
    #: Backend parameters the plug sets itself, mapped to the setting that sets them:
    #: giving one is an error that names that setting.
    reserved: ClassVar[dict[str, str]] = {}
    #: What messages call the plug ("plug", "data plug").
    noun: ClassVar[str] = "plug"
    #: What messages call one of its options ("setting", "option").
    option_noun: ClassVar[str] = "setting"

    # Filled in by `validate`, not options themselves.
    #: The pass-through keyword arguments for the backend (see `passthrough`).
    extra: dict[str, Any] = dataclasses.field(default_factory=dict, metadata={"internal": True})
    #: The names the user gave (arguments or dask config), as opposed to declared defaults.
    given: frozenset[str] = dataclasses.field(default=frozenset(), metadata={"internal": True})

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        dataclasses.dataclass(cls, kw_only=True, repr=False)

    @classmethod
    def override(cls, name: str, default: Any) -> Any:
        """Redeclare an inherited setting with another default (its help and bounds stay)."""
        inherited = cls.__dataclass_fields__[name]  # type: ignore[attr-defined]
        return setting(default, **inherited.metadata)

    def check(self) -> None:
        """Checks across settings, run after each value was validated; raise `SettingsError`.

        May also adjust a default that does not fit the others (see `given`).
        """

    @classmethod
    def describe(cls) -> tuple[SettingInfo, ...]:
        """The declared settings: name, type, default, help."""
        hints = typing.get_type_hints(cls)
        return tuple(
            SettingInfo(
                name=f.name,
                type=type_name(hints[f.name]),
                default=_default_of(f),
                help=f.metadata["help"],
                secret=f.metadata["secret"],
            )
            for f in _declared_fields(cls)
        )

    def backend_kwargs(self) -> dict[str, Any]:
        """Every declared setting but workers, threads and memory, plus the pass-through ones.

        For a backend whose parameters these settings are named after.
        """
        own = {f.name: getattr(self, f.name) for f in _declared_fields(type(self)) if f.name not in _BASE}
        return own | self.extra

    def public_dict(self) -> dict[str, Any]:
        """The settings and pass-through values, with every secret masked."""
        values = {f.name: _masked(f, getattr(self, f.name, None)) for f in _declared_fields(type(self))}
        for key, value in getattr(self, "extra", {}).items():
            values[key] = MASK if _SECRET_NAME.search(key) else value
        return values

    def __repr__(self) -> str:
        body = ", ".join(f"{k}={v!r}" for k, v in self.public_dict().items())
        return f"{type(self).__name__}({body})"


class Settings(Options):
    """Base of every plug's settings: `workers`, `threads` and `memory` (GiB per worker)."""

    workers: int = setting(2, "Number of workers.", ge=1)
    threads: int = setting(2, "Threads per worker.", ge=1)
    memory: float = setting(6.0, "Memory per worker in GiB (the README's 'GB').", gt=0)


_BASE = ("workers", "threads", "memory")


def _declared_fields(cls: type) -> list[dataclasses.Field[Any]]:
    return [f for f in dataclasses.fields(cls) if not f.metadata.get("internal")]


def _default_of(f: dataclasses.Field[Any]) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def _masked(f: dataclasses.Field[Any], value: Any) -> Any:
    if not f.metadata.get("secret") or value is None:
        return value
    if isinstance(value, Mapping):
        return {k: MASK for k in value}
    return MASK


def type_name(tp: Any) -> str:
    """A short readable name for a settings annotation, e.g. `dict[str, str] | None`."""
    if tp is type(None):
        return "None"
    if isinstance(tp, type) and not typing.get_args(tp):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def _check_type(tp: Any, value: Any) -> tuple[bool, Any]:
    """Whether `value` is of the declared type; and the value as stored (ints become floats)."""
    if tp is Any:
        return True, value
    if _is_union(tp):
        for arg in typing.get_args(tp):
            ok, converted = _check_type(arg, value)
            if ok:
                return True, converted
        return False, value
    if tp is type(None):
        return value is None, value
    if tp is bool:
        return isinstance(value, bool), value
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        return ok, float(value) if ok else value
    if hasattr(tp, "sdt_check"):  # sdt_core.plugs.setting_types
        try:
            return True, tp.sdt_check(value)
        except (TypeError, ValueError):
            return False, value
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            return False, value
        key_t, val_t = args or (Any, Any)
        ok = all(_check_type(key_t, k)[0] and _check_type(val_t, v)[0] for k, v in value.items())
        return ok, dict(value)
    if origin in (list, tuple) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False, value
        item_t = args[0] if args else Any
        return all(_check_type(item_t, v)[0] for v in value), list(value)
    return isinstance(value, tp), value


#: Integers beyond are typos, and overflow the C libraries under the backends.
MAX_INT = 2**31 - 1
_EXPECTED = {bool: "True or False", int: "an integer", float: "a finite number", str: "a string"}


def _expected(tp: Any) -> str:
    if _is_union(tp):
        return " or ".join(_expected(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "None"
    if typing.get_origin(tp) is dict:
        return "a mapping of {} to {}".format(*map(type_name, typing.get_args(tp)))
    if typing.get_origin(tp) is list:
        return f"a list of {type_name(typing.get_args(tp)[0])}"
    if hasattr(tp, "expected"):  # sdt_core.plugs.setting_types
        return str(tp.expected)
    return _EXPECTED.get(tp, f"of type {type_name(tp)}")


def _shown(value: Any, secret: bool) -> str:
    if secret:
        return f"a {type(value).__name__}"
    if isinstance(value, str):
        return f"the string {value!r}"
    return f"{value!r} ({type(value).__name__})"


def _check_field(plug: str, noun: str, f: dataclasses.Field[Any], tp: Any, value: Any, source: str) -> Any:
    meta = f.metadata
    where = f"{noun} '{plug}': {f.name}" + (f" (from {source})" if source else "")
    ok, value = _check_type(tp, value)
    if not ok:
        raise SettingsError(f"{where} must be {_expected(tp)}, got {_shown(value, meta['secret'])}")
    if value is None:
        return value
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
        raise SettingsError(f"{where} must be at most {MAX_INT:,}, got {value}")
    if meta["choices"] is not None and value not in meta["choices"]:
        choices = ", ".join(map(repr, meta["choices"]))
        raise SettingsError(f"{where} must be one of {choices}, got {value!r}")
    for bound, test, word in (
        ("ge", float.__ge__, ">="),
        ("gt", float.__gt__, ">"),
        ("le", float.__le__, "<="),
    ):
        limit = meta[bound]
        if limit is not None and not test(float(value), float(limit)):
            raise SettingsError(f"{where} must be {word} {limit:g}, got {value!r}")
    return value


def backend_parameters(cls: type[Options]) -> set[str]:
    """Keyword parameters of the plug's pass-through backends (imports the backends)."""
    names: set[str] = set()
    for target in cls.passthrough:
        module, _, attr = target.partition(":")
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
        for p in inspect.signature(obj).parameters.values():
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
                names.add(p.name)
    return names


def _unknown(plug: str, cls: type[Options], key: str) -> SettingsError:
    import difflib

    declared = [f.name for f in _declared_fields(cls)]
    hint = difflib.get_close_matches(key, declared, n=1)
    msg = f"{cls.noun} '{plug}' has no {cls.option_noun} '{key}'; "
    if hint:
        msg += f"did you mean '{hint[0]}'? "
    msg += f"{cls.option_noun}s of {cls.noun} '{plug}': {', '.join(declared) or 'none'}"
    if cls.passthrough:
        msg += f", or a keyword of {', '.join(t.replace(':', '.') for t in cls.passthrough)}"
    return SettingsError(msg + f" (see `sdt info {plug}`)")


OptionsT = TypeVar("OptionsT", bound=Options)


def validate(
    plug: str,
    cls: type[OptionsT],
    values: Mapping[str, Any],
    config: Mapping[str, Any] | None = None,
) -> OptionsT:
    """Settings of `plug` from `values` (the caller's) over `config` (dask config `sdt.<plug>`).

    Raises `SettingsError` with one line naming what is wrong and how to fix it.
    """
    fields = {f.name: f for f in _declared_fields(cls)}
    hints = typing.get_type_hints(cls)
    chosen: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    unknown: list[str] = []
    for source, mapping in (("dask config sdt." + plug, config or {}), ("", values)):
        for key, value in mapping.items():
            key = key.replace("-", "_")
            if key in fields:
                if source and isinstance(value, str) and not _check_type(hints[key], value)[0]:
                    value = parse_text(hints[key], value)  # an environment variable, typed as on the command line
                chosen[key] = _check_field(plug, cls.noun, fields[key], hints[key], value, source)
            elif key in cls.reserved:
                raise SettingsError(
                    f"{cls.noun} '{plug}': {key} is set from the {cls.option_noun} '{cls.reserved[key]}'; "
                    f"give {cls.reserved[key]}=... instead"
                )
            elif source:  # unknown keys in dask config are not ours to judge
                continue
            else:
                extra[key] = value
                unknown.append(key)
    if unknown:
        accepted = backend_parameters(cls) if cls.passthrough else set()
        for key in unknown:
            if key not in accepted:
                raise _unknown(plug, cls, key)
            check_passthrough(plug, cls.noun, key, extra[key])
    settings = cls(**chosen, extra=extra, given=frozenset(chosen) | frozenset(extra))
    settings.check()
    return settings


NONE_WORDS = ("none", "null")


def parse_text(tp: Any, text: str) -> Any:
    """A setting's value from command-line text as a user types it, by its declared type.

    Lists are `a,b,c` and mappings `k=v,k2=v2` (either may also be JSON); `none` is None
    only where the type allows None; booleans are true/false, yes/no, on/off or 1/0. Text
    that does not parse comes back unchanged, so that validation names what was expected.
    Without a type (`tp` None: a backend keyword), a Python literal, else the text.
    """
    if tp is None or tp is Any:
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError, TypeError, RecursionError, MemoryError):  # nested too deep, too
            return text
    if _is_union(tp):
        args = typing.get_args(tp)
        if type(None) in args and text.strip().lower() in NONE_WORDS:
            return None
        for arg in (a for a in args if a is not type(None)):
            value = parse_text(arg, text)
            if _check_type(arg, value)[0]:
                return value
        return text
    if tp is bool:
        return _BOOL_WORDS.get(text.strip().lower(), text)
    if tp in (int, float):
        try:
            return tp(text)
        except ValueError:
            return text
    origin, args = typing.get_origin(tp) or tp, typing.get_args(tp)
    if origin in (list, tuple):
        return _parse_list(args[0] if args else None, text)
    if origin in (dict, Mapping):
        return _parse_mapping(args[1] if args else None, text)
    return text


_BOOL_WORDS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}


def _parse_list(item_tp: Any, text: str) -> Any:
    if text.lstrip().startswith("["):
        return _json(text)
    items = [item.strip() for item in text.split(",")] if text.strip() else []
    return [parse_text(item_tp, item) for item in items]


def _parse_mapping(value_tp: Any, text: str) -> Any:
    if text.lstrip().startswith("{"):
        return _json(text)
    mapping = {}
    for item in (i.strip() for i in text.split(",") if i.strip()):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            return text
        mapping[key.strip()] = parse_text(value_tp, value.strip())
    return mapping


def _json(text: str) -> Any:
    import json

    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError):  # nested deeper than Python recurses: not a value
        return text


def text_format(tp: Any) -> str:
    """How a value of type `tp` is typed on the command line, e.g. "a list: a,b,c or JSON"."""
    if _is_union(tp):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        formats = " or ".join(dict.fromkeys(text_format(a) for a in args))
        return formats + (", or none" if len(args) < len(typing.get_args(tp)) else "")
    origin = typing.get_origin(tp) or tp
    if origin in (list, tuple):
        return "a list: a,b,c or JSON"
    if origin in (dict, Mapping):
        return "a mapping: k=v,k2=v2 or JSON"
    return _FORMATS.get(tp, "text")


def metavar(tp: Any) -> str:
    """The placeholder of a value of type `tp` in command-line help, e.g. `A,B,...`."""
    args = [a for a in typing.get_args(tp) if a is not type(None)] if _is_union(tp) else [tp]
    if len(args) != 1:
        return "VALUE"
    origin = typing.get_origin(args[0]) or args[0]
    if origin in (list, tuple):
        return "A,B,..."
    if origin in (dict, Mapping):
        return "K=V,..."
    return _METAVARS.get(args[0], "TEXT")


_FORMATS = {bool: "true or false", int: "an integer", float: "a number", str: "text"}
_METAVARS = {bool: "BOOLEAN", int: "INTEGER", float: "NUMBER", str: "TEXT"}
