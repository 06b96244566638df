"""Putting substitutions in place, and choosing for each key which implementation runs.

A target is `module:name` (a function of that module) or `module:name.attr` (an attribute
of an object the module imported, e.g. `gfosd.problem:cvx.quad_form`: cvxpy's `quad_form`
as gfosd's problem module sees it). The second kind is put in place as a view of the
object with that one attribute swapped, so cvxpy itself, and every other module using it,
is untouched; a method of a class the module defines (e.g.
`...loss_factor_analysis:LossFactorAnalysis.make_problem`) is swapped on the class itself.
Targets are swapped when their module is first imported (a post-import hook), so a process
that never imports SDT never pays for importing it.
"""

from __future__ import annotations

import contextvars
import functools
import importlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

#: A replacement returns this to let SDT's original run for this call (e.g. a solver it
#: does not cover); the call then counts as exact.
NOT_APPLICABLE: Any = object()


@dataclass(frozen=True)
class Substitution:
    """One named swap: `target` runs `replacement(original, *args, **kwargs)` in fast mode."""

    name: str
    target: str  # "module:function" or "module:object.attribute"
    replacement: str  # "module:function"
    proven_on: tuple[str, ...]  # SDT versions on which fast and exact results were proven equal
    summary: str

    def record(self) -> dict[str, Any]:
        """What run.json says about it."""
        return {"name": self.name, "replaces": self.target, "with": self.replacement, "proven_on": list(self.proven_on)}


class FastPathFailed(Exception):
    """A replacement raised; the runner reruns the key exactly."""


@dataclass
class KeyMode:
    """The mode of the key running in this context, and what its fast path did."""

    fast: bool
    active: frozenset[str] = frozenset()  # the substitutions this key may use
    used: set[str] = field(default_factory=set)
    failure: str | None = None  # "name: ExceptionType: message" of the first replacement that raised

    @property
    def label(self) -> str:
        return "fast" if self.fast else "exact"


_CURRENT: contextvars.ContextVar[KeyMode | None] = contextvars.ContextVar("sdt_key_mode", default=None)
_LOCK = threading.Lock()
_HOOKED: dict[str, str] = {}  # target -> the substitution whose post-import hook swaps it here
_SWAPPED: set[str] = set()  # substitutions whose hook is registered in this process


@contextmanager
def key_mode(fast: bool, substitutions: tuple[Substitution, ...] = ()) -> Iterator[KeyMode]:
    """Run the block (one key) in fast mode with `substitutions` (and no other), or exactly."""
    if fast:
        install(substitutions)
    mode = KeyMode(
        fast=fast and bool(substitutions), active=frozenset(s.name for s in substitutions) if fast else frozenset()
    )
    token = _CURRENT.set(mode)
    try:
        yield mode
    finally:
        _CURRENT.reset(token)


def install(substitutions: tuple[Substitution, ...]) -> None:
    """Swap each target when its module is imported (at once if it already is); idempotent.

    A target has one substitution: another one claiming it is a ValueError.
    """
    import wrapt

    with _LOCK:
        for sub in substitutions:
            claimed = _HOOKED.setdefault(sub.target, sub.name)
            if claimed != sub.name:
                raise ValueError(f"substitution {sub.name}: {sub.target} is already replaced by {claimed}")
            if sub.name in _SWAPPED:
                continue
            _SWAPPED.add(sub.name)  # from here on its hook is registered; it swaps on import
            module_name = sub.target.partition(":")[0]
            wrapt.register_post_import_hook(functools.partial(_swap, sub), module_name)


def _swap(sub: Substitution, module: ModuleType) -> None:
    name, _, attribute = sub.target.partition(":")[2].partition(".")
    replacement = _load(sub.replacement)
    if attribute:
        holder = getattr(module, name)
        original = getattr(holder, attribute)
        if isinstance(holder, type) and holder.__module__ == module.__name__:
            setattr(holder, attribute, _dispatcher(sub, original, replacement))
        else:
            setattr(module, name, _View(holder, {attribute: _dispatcher(sub, original, replacement)}))
    else:
        original = getattr(module, name)
        setattr(module, name, _dispatcher(sub, original, replacement))


def _load(spec: str) -> Callable[..., Any]:
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


def _dispatcher(sub: Substitution, original: Callable[..., Any], fast: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def dispatch(*args: Any, **kwargs: Any) -> Any:
        mode = _CURRENT.get()
        if mode is None or not mode.fast or mode.failure or sub.name not in mode.active:
            return original(*args, **kwargs)
        try:
            result = fast(original, *args, **kwargs)
        except Exception as exc:
            mode.failure = f"{sub.name}: {type(exc).__name__}: {exc}"
            raise FastPathFailed(mode.failure) from exc
        if result is NOT_APPLICABLE:
            return original(*args, **kwargs)
        mode.used.add(sub.name)
        return result

    dispatch.__sdt_substitution__ = sub.name  # type: ignore[attr-defined]
    return dispatch


class _View:
    """An object seen through a view that swaps some of its attributes."""

    def __init__(self, wrapped: Any, swapped: dict[str, Any]) -> None:
        self.__wrapped = wrapped
        self.__dict__.update(swapped)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__wrapped, name)

    def __repr__(self) -> str:
        return f"<view of {self.__wrapped!r} with {', '.join(k for k in vars(self) if not k.startswith('_'))} swapped>"
