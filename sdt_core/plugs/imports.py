"""Objects named by import path, `package.module:name` or `package.module`, as the command line takes them.

The current directory is importable, as it is for `python -m`: a plug, data plug or analysis
next to the user's data needs no installing.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
from pathlib import Path
from typing import Any

#: `package.module`, optionally `:attribute.path`.
_IMPORT_PATH = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*(:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*)?$")


def is_import_path(text: str) -> bool:
    """Whether `text` has the form of an import path, `package.module[:name]` (a plain name has it too)."""
    return bool(_IMPORT_PATH.match(text))


def importable(path: str) -> bool:
    """Whether import path `path` names a module that can be found (it is not imported).

    A plain name (no dot, no colon) counts only as a module of the current directory or
    PYTHONPATH, so that a mistyped plug name is not taken for some installed module.
    """
    if not is_import_path(path):
        return False
    importable_cwd()
    try:
        spec = importlib.util.find_spec(path.partition(":")[0])
    except (ImportError, ValueError):
        return False
    if spec is None:
        return False
    if "." in path or ":" in path:
        return True
    roots = [Path.cwd(), *(Path(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p)]
    where = Path(spec.origin or next(iter(spec.submodule_search_locations or ()), "/")).resolve()
    installed = "site-packages" in where.parts or "dist-packages" in where.parts
    return not installed and any(where.is_relative_to(root.resolve()) for root in roots)


def importable_cwd() -> None:
    """Put the current directory on `sys.path`, once."""
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))


def import_object(path: str) -> Any:
    """The module `package.module`, or the attribute `name` of `package.module:name`."""
    importable_cwd()
    module_name, _, attribute = path.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attribute.split(".") if attribute else ():
        obj = getattr(obj, part)
    return obj
