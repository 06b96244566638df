"""Write docs/reference.md from the docstrings of sdt-core's public names; `--check`: fail if it is stale.

The public names are `sdt_core.__all__`, `sdt_core.testing.__all__`, the hooks of
`sdt_core.plugs.hookspecs` and `sdt_core.cli`'s `cli` and `main`. Every one of them must be placed
in a section below, so a name added to `__all__` cannot be missed.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import inspect
import re
import sys
from pathlib import Path
from typing import Any

PAGE = Path(__file__).with_name("reference.md")

#: (section title, introduction, module, names): the page, in order.
SECTIONS: list[tuple[str, str, str, list[str]]] = [
    (
        "Hooks",
        "A plug is a module (or class) of functions marked `@hookimpl`, named by an entry point in the "
        "group `sdt_core.plugs`. Each hook is called by name with the arguments shown; a hook may take "
        "fewer of them.",
        "sdt_core.plugs.hookspecs",
        [
            "plug_settings",
            "make_cluster",
            "preflight",
            "configure_dask",
            "plan_cluster",
            "cluster_logs",
            "workers_share_files",
            "clean_up",
            "adapt_cluster",
            "worker_plugins",
        ],
    ),
    ("Marking hooks", "", "sdt_core", ["hookimpl", "GROUP"]),
    (
        "Started or attached clusters",
        "`make_cluster` returns a cluster the plug started (sdt-core closes it at the end) or an "
        "`Attached` scheduler it did not start (sdt-core closes only its own client).",
        "sdt_core",
        ["Attached"],
    ),
    (
        "Settings",
        "",
        "sdt_core",
        ["Settings", "setting", "Options", "SettingInfo", "Host", "Address", "check_exposure", "worker_memory_gib"],
    ),
    (
        "Errors",
        "Every message is one line: what is wrong and how to fix it. `sdt` prints it after "
        "`sdt: error: ` and exits with the error's `exit_code`.",
        "sdt_core",
        [
            "SdtError",
            "SettingsError",
            "ClusterStartError",
            "PlugUnusableError",
            "UnknownPlugError",
            "VersionMismatchError",
        ],
    ),
    (
        "Planning",
        "What `sdt plan NAME` prints: the answer of the `plan_cluster` hook.",
        "sdt_core",
        [
            "ClusterPlan",
            "Machines",
            "Prices",
        ],
    ),
    (
        "Cost: idle shutdown, clean-up, interruption",
        "A started cluster closes itself when idle (dask config `sdt.idle-timeout`); a plug that starts "
        "its scheduler elsewhere passes the rule on. `sdt clean NAME` lists and deletes what killed starts "
        "left behind: the answer of the `clean_up` hook. `GracefulStop`, delivered by a plug's "
        "`worker_plugins` hook, retires a worker told to stop; `adapt_to_run`, called by a plug's "
        "`adapt_cluster` hook, scales its cluster by the keys a run still holds.",
        "sdt_core",
        [
            "idle_timeout",
            "idle_environment",
            "IDLE_PRELOAD",
            "Leftover",
            "GracefulStop",
            "NannyGracefulStop",
            "adapt_to_run",
        ],
    ),
    (
        "Warm workers",
        "Each worker of a cluster sdt-core starts imports what keys need (SDT, cvxpy, pandas) before "
        "its first key, through a worker plugin sdt-core registers itself; dask config "
        "`sdt.warm-workers` (`auto`, the default: for runs of SDT's own analysis and clusters started "
        "without a run; `true`; `false`) says when. A plug whose workers are forked from a server of its "
        "own has that server call `warm_up()` once, when `warm_workers()`, as the local plug's forkserver does.",
        "sdt_core",
        ["warm_workers", "warm_up"],
    ),
    ("Data plugs", "", "sdt_core", ["DataPlug", "DATA_GROUP"]),
    (
        "Using plugs",
        "",
        "sdt_core",
        [
            "get_plug",
            "ClientPlug",
            "RegisteredPlug",
            "list_plugs",
            "PlugInfo",
            "open_data",
            "list_data_plugs",
            "run",
            "RunSummary",
            "Terminal",
        ],
    ),
    (
        "Testing: `sdt_core.testing`",
        "Helpers, fixtures and pytest hooks for a plug's tests; import the fixtures and hooks in the "
        "root conftest.py of the test suite to apply them to every test.",
        "sdt_core.testing",
        [
            "no_leaks",
            "leak_check",
            "live_processes",
            "listening_ports",
            "load_key",
            "RecordingBackend",
            "SECRET",
            "MARKER",
            "free_port",
            "moto_server",
            "aws",
            "azurite",
            "azure_blob",
            "AZURITE_KEY",
            "dask_scratch",
            "pytest_runtest_makereport",
            "pytest_addoption",
            "pytest_collection_modifyitems",
            "pytest_configure",
            "pytest_unconfigure",
        ],
    ),
    (
        "The command line: `sdt_core.cli`",
        "For testing commands in-process (click's `CliRunner`); users run the `sdt` command.",
        "sdt_core.cli",
        ["cli", "main"],
    ),
]


def public_names() -> dict[str, set[str]]:
    """Every public name, by module."""
    import sdt_core
    import sdt_core.testing
    from sdt_core.plugs import hookspecs

    return {
        "sdt_core": set(sdt_core.__all__),
        "sdt_core.testing": set(sdt_core.testing.__all__),
        "sdt_core.plugs.hookspecs": {n for n, f in vars(hookspecs).items() if hasattr(f, "sdt_core_spec")},
        "sdt_core.cli": {"cli", "main"},
    }


def render() -> str:
    """The reference page."""
    placed: dict[str, set[str]] = {}
    lines = [
        "# Reference",
        "",
        "Everything a plug may import from sdt-core, generated from the docstrings by",
        "`python docs/reference.py` (the test suite fails when this page is stale). Anything",
        "not listed here is private and may change. The walk-throughs: [Writing a cluster",
        "plug](cluster-plug.md), [Writing a data plug](data-plug.md).",
        "",
    ]
    for title, intro, module_name, names in SECTIONS:
        module = importlib.import_module(module_name)
        lines += [f"## {title}", ""] + ([intro, ""] if intro else [])
        for name in names:
            placed.setdefault(module_name, set()).add(name)
            lines += _entry(module, name)
    for module_name, names in public_names().items():
        missing = names - placed.get(module_name, set())
        if missing:
            raise SystemExit(f"public names of {module_name} not placed in a section of docs/reference.py: {missing}")
    return "\n".join(lines).rstrip() + "\n"


def _entry(module: Any, name: str) -> list[str]:
    obj = getattr(module, name)
    if type(obj).__name__ == "FixtureFunctionDefinition":
        return [f"### `{name}` (pytest fixture)", "", *_doc(obj), ""]
    if isinstance(obj, type):
        return _class(obj)
    if inspect.isfunction(obj):
        return [f"### `{name}{_signature(obj)}`", "", *_doc(obj), ""]
    if type(obj).__module__.startswith("click"):
        return [f"### `{name}` (click {type(obj).__name__.lower()})", "", *_doc_lines(obj.help), ""]
    comment = _comment(_defining_module(name), name)  # a value, or an object such as a decorator
    if not comment:
        raise SystemExit(f"{module.__name__}.{name} needs a `#:` comment above its assignment")
    shown = f"{name} = {obj!r}" if isinstance(obj, (str, int, float)) else name
    return [f"### `{shown}`", "", *comment, ""]


def _defining_module(name: str) -> Any:
    """The sdt-core module whose source assigns `name` at the top level."""
    for module_name in sorted(m for m in sys.modules if m.startswith("sdt_core")):
        try:
            source = inspect.getsource(sys.modules[module_name])
        except (OSError, TypeError):
            continue
        if re.search(rf"^{re.escape(name)} = ", source, re.M):
            return sys.modules[module_name]
    raise SystemExit(f"no sdt-core module assigns {name}")


def _comment(where: Any, name: str) -> list[str]:
    """The `#:` comment lines right above the assignment of `name` in `where`'s source, or its `# ...` tail."""
    try:
        source = inspect.getsource(where).splitlines()
    except (OSError, TypeError):
        return []
    pattern = re.compile(rf"^\s*{re.escape(name)}\s*[:=]")
    for index, line in enumerate(source):
        if pattern.match(line):
            comment = []
            for above in reversed(source[:index]):
                if not above.strip().startswith("#:"):
                    break
                comment.insert(0, above.strip()[2:].strip())
            tail = re.search(r"\s#\s*(?!type:|noqa|fmt:)(.+)$", line)
            if not comment and tail:
                comment = [tail.group(1).strip()]
            return [" ".join(comment)] if comment else []
    return []


def _class(cls: type) -> list[str]:
    bases = [b.__name__ for b in cls.__bases__ if b is not object]
    heading = f"### class `{cls.__name__}`" + (f"({', '.join(bases)})" if bases else "")
    lines = [heading, "", *_doc(cls), ""]
    if "__init__" in vars(cls) and not dataclasses.is_dataclass(cls):
        lines += [f"- `{cls.__name__}{_signature(cls.__init__, skip_self=True)}`", ""]
    lines += _fields(cls)
    lines += _class_attributes(cls)
    for attr, value in vars(cls).items():
        if attr.startswith("_"):
            continue
        function = value.__func__ if isinstance(value, (classmethod, staticmethod)) else value
        if isinstance(value, property):
            lines += [f"- property `{attr}`" + _inline_doc(inspect.getdoc(getattr(cls, attr))), ""]
        elif inspect.isfunction(function):
            prefix = "classmethod " if isinstance(value, classmethod) else ""
            doc = _inline_doc(inspect.getdoc(getattr(cls, attr)))
            lines += [f"- {prefix}`{attr}{_signature(function, skip_self=True)}`" + doc, ""]
    return lines


def _fields(cls: type) -> list[str]:
    """Declared settings (a table) or dataclass fields (a list) defined on `cls` itself."""
    if not dataclasses.is_dataclass(cls):
        return []
    written = inspect.get_annotations(cls)
    own = [f for f in dataclasses.fields(cls) if f.name in written]
    if not own:
        return []
    settings = [f for f in own if "help" in f.metadata]
    lines: list[str] = []
    if settings:
        lines += ["| setting | type | default | help |", "| --- | --- | --- | --- |"]
        for f in settings:
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            help_text = f.metadata["help"] + (" Secret." if f.metadata.get("secret") else "")
            lines.append(f"| `{f.name}` | `{written[f.name]}` | `{default!r}` | {help_text} |")
        lines.append("")
    for f in own:
        if "help" in f.metadata:
            continue
        comment = _comment(cls, f.name)
        lines.append(f"- field `{f.name}: {written[f.name]}`" + (f": {comment[0]}" if comment else ""))
    return lines + ([""] if lines and lines[-1] else [])


def _class_attributes(cls: type) -> list[str]:
    """Class variables with a `#:` comment, defined on `cls` itself."""
    lines = []
    for attr, value in vars(cls).items():
        if attr.startswith("_") or callable(value) or isinstance(value, (property, classmethod, staticmethod)):
            continue
        if dataclasses.is_dataclass(cls) and attr in {f.name for f in dataclasses.fields(cls)}:
            continue
        comment = _comment(cls, attr)
        if comment:
            lines.append(f"- class attribute `{attr} = {value!r}`: {comment[0]}")
    return lines + ([""] if lines else [])


class _Shown(str):
    """An annotation as written in the source: shown without quotes."""

    def __repr__(self) -> str:
        return str(self)


def _signature(function: Any, skip_self: bool = False) -> str:
    """`(a: int, /, b: str = 'x', *, c=None) -> T`, annotations shown as written."""
    signature = inspect.signature(function)
    params = list(signature.parameters.values())
    if skip_self and params and params[0].name in ("self", "cls"):
        params = params[1:]
    shown = signature.replace(
        parameters=[p.replace(annotation=_written(p.annotation)) for p in params],
        return_annotation=_written(signature.return_annotation),
    )
    return str(shown)


def _written(annotation: Any) -> Any:
    if annotation is inspect.Signature.empty:
        return annotation
    return _Shown(annotation if isinstance(annotation, str) else inspect.formatannotation(annotation))


def _doc_lines(doc: str | None) -> list[str]:
    return inspect.cleandoc(doc).splitlines() if doc else []


def _doc(obj: Any) -> list[str]:
    return _doc_lines(obj.__doc__)


def _inline_doc(doc: str | None) -> str:
    """A member's docstring after its signature, its lines indented under the list item."""
    lines = _doc_lines(doc)
    if not lines:
        return ""
    return ": " + "\n  ".join(line if line else "" for line in lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="Exit 1 if docs/reference.md is not up to date.")
    args = parser.parse_args(argv)
    page = render()
    if args.check:
        if not PAGE.exists() or PAGE.read_text() != page:
            print(f"{PAGE} is stale: run `python docs/reference.py`", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(page)
    print(f"wrote {PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
