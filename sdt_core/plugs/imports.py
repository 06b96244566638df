"""Objects named by import path, `package.module:name` or `package.module`, as the command line takes them.

A plug, data plug or analysis beside the user's data needs no installing: the current
directory is searched for what the command line names (`--plug`, `--data`, `--analysis`),
and for nothing else. It is searched last, and only while that import runs: a module there
never shadows an installed one or the standard library (one named like one is refused), and
running sdt in a folder of someone else's files imports none of them unless asked. What is
imported from there is pickled by value, so workers need neither a copy of it nor the
directory on their path.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sdt_core.errors import SdtError

#: `package.module`, optionally `:attribute.path`.
_IMPORT_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*(:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*)?$")


def is_import_path(text: str) -> bool:
    """Whether `text` has the form of an import path, `package.module[:name]` (a plain name has it too)."""
    return bool(_IMPORT_PATH.match(text))


def importable(path: str) -> bool:
    """Whether import path `path` names a module that can be found (a package's parent is imported).

    A plain name (no dot, no colon) counts only as a module of the current directory or
    PYTHONPATH, so that a mistyped plug name is not taken for some installed module.
    """
    if not is_import_path(path):
        return False
    try:
        with cwd_searched_last():
            spec = importlib.util.find_spec(path.partition(":")[0])
    except (ImportError, ValueError):
        return False
    if spec is None:
        return False
    if "." in path or ":" in path:
        return True
    roots = [Path.cwd(), *(Path(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p)]
    installed = "site-packages" in _origin(spec).parts or "dist-packages" in _origin(spec).parts
    return not installed and any(_origin(spec).is_relative_to(root.resolve()) for root in roots)


def _origin(spec: Any) -> Path:
    return Path(spec.origin or next(iter(spec.submodule_search_locations or ()), "/")).resolve()


@contextlib.contextmanager
def cwd_searched_last() -> Iterator[None]:
    """The current directory at the end of `sys.path` for the block (unless it is on it already)."""
    cwd = str(Path.cwd())
    added = cwd not in sys.path
    if added:
        sys.path.append(cwd)
    try:
        yield
    finally:
        if added:
            with contextlib.suppress(ValueError):
                sys.path.remove(cwd)


def import_module(name: str) -> Any:
    """Module `name`, searched for in the current directory last (see the module's docstring).

    Raises `SdtError` when a module or package of the current directory has the name of an
    installed module, which is imported instead of it; other import errors propagate.
    """
    _refuse_shadowing(name.partition(".")[0])
    before = set(sys.modules)
    with cwd_searched_last():
        module = importlib.import_module(name)
    _pickle_by_value([sys.modules[n] for n in set(sys.modules) - before if n in sys.modules])
    return module


def import_object(path: str) -> Any:
    """The module `package.module`, or the attribute `name` of `package.module:name`."""
    module_name, _, attribute = path.partition(":")
    obj: Any = import_module(module_name)
    for part in attribute.split(".") if attribute else ():
        obj = getattr(obj, part)
    return obj


def _refuse_shadowing(top: str) -> None:
    """A module `top` of the current directory that an installed module of that name hides: refused."""
    cwd = Path.cwd()
    here = [p for p in (cwd / f"{top}.py", cwd / top / "__init__.py") if p.is_file()]
    if not here:
        return
    installed = top in sys.builtin_module_names or top in sys.stdlib_module_names
    if not installed:
        spec = importlib.util.find_spec(top) if top not in sys.modules else sys.modules[top].__spec__
        installed = spec is not None and not _origin(spec).is_relative_to(cwd.resolve())
    if installed:
        raise SdtError(
            f"{here[0].relative_to(cwd)} in the current directory has the name of an installed module "
            f"({top}), which Python imports instead; rename it"
        )


def _pickle_by_value(modules: list[Any]) -> None:
    """Modules loaded from the current directory travel to workers with the functions pickled from them."""
    cwd = Path.cwd().resolve()
    tops = {m.__name__.partition(".")[0] for m in modules if _in_folder(m, cwd)}
    if not tops:
        return
    from importlib.metadata import packages_distributions

    import cloudpickle

    tops -= set(packages_distributions())  # a distribution's own source folder, installed editable

    for top in tops:
        if top in sys.modules:
            cloudpickle.register_pickle_by_value(sys.modules[top])


def _in_folder(module: Any, folder: Path) -> bool:
    """Whether `module` is a module or package of `folder` itself (found there by its name)."""
    file = getattr(module, "__file__", None)
    if not isinstance(file, str) or not Path(file).resolve().is_relative_to(folder):
        return False
    top = module.__name__.partition(".")[0]
    return Path(file).resolve().relative_to(folder).parts[0] in (f"{top}.py", top)
