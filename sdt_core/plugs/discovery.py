"""Discovery: every entry point of the group `sdt_core.plugs` is loaded on its own.

A plug that fails to import, whose hooks do not match `hookspecs`, whose settings
cannot be described, or whose `configure_dask` raises (tried on load for another plug's
start, and at every start) is kept in `list_plugs()` with its error as status (one line;
the whole story in `detail`); the others load, and start without it. Plug modules import only sdt-core at load
time, so listing costs no backend import.

A plug that is importable but not installed is named by its import path instead,
`package.module` (a module of hooks) or `package.module:Name`; the current directory is
importable.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import logging
import threading
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import EntryPoint, PackageMetadata, entry_points
from typing import TYPE_CHECKING, Any, ClassVar

import pluggy

from sdt_core.errors import PlugUnusableError, UnknownPlugError
from sdt_core.plugs import hookspecs
from sdt_core.plugs.imports import import_object, importable
from sdt_core.plugs.settings import Options, SettingInfo, Settings, validate

if TYPE_CHECKING:
    from distributed.deploy.cluster import Cluster

    from sdt_core.plugs.leftovers import Leftover
    from sdt_core.plugs.plan import ClusterPlan

#: The entry-point group of cluster plugs: each entry point's name is a plug's name, its value a module of hooks.
GROUP = "sdt_core.plugs"
REQUIRED_HOOKS = ("plug_settings", "make_cluster")
#: The plug name a plug's `configure_dask` is tried with on load: a start that is not its own.
PROBE = "sdt-core-probe"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlugInfo:
    """One discovered plug. `status` is "ok" or, in one line, the error that makes it unusable.

    `detail` is the whole error (a traceback, pluggy's report) for `sdt plugs -v`.
    """

    name: str
    distribution: str | None
    version: str | None
    summary: str
    settings: tuple[SettingInfo, ...]
    status: str
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


RegistryT = typing.TypeVar("RegistryT", bound="EntryPointRegistry")


class EntryPointRegistry:
    """Records for every entry point of `group`; each is loaded on its own, errors kept."""

    group: str = ""
    noun: str = "plug"
    _shared: ClassVar[dict[type, EntryPointRegistry]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def shared(cls: type[RegistryT], refresh: bool = False) -> RegistryT:
        """This process's registry of this kind, loaded from the entry points on first use."""
        with cls._lock:
            if refresh or cls not in cls._shared:
                loaded = cls()
                loaded.load_entry_points()
                cls._shared[cls] = loaded
            return typing.cast(RegistryT, cls._shared[cls])

    def __init__(self) -> None:
        self.records: list[PlugInfo] = []  # every entry point, broken or taken names included
        self.plugs: dict[str, PlugInfo] = {}  # by name, the first entry point of each name
        self._options: dict[str, type[Options]] = {}

    def load_entry_points(self) -> None:
        for ep in sorted(entry_points(group=self.group), key=lambda e: e.name):
            self.add(ep)

    def add(self, ep: EntryPoint) -> PlugInfo:
        """Load one entry point; record its error instead of raising."""
        dist = ep.dist
        metadata: Mapping[str, str] | PackageMetadata = dist.metadata if dist else {}
        dist_name = metadata["Name"] if "Name" in metadata else None  # a missing key raises in importlib_metadata 8
        version = dist.version if dist else None
        summary = (metadata["Summary"] if "Summary" in metadata else None) or ""
        return self._add(ep.name, ep.load, dist_name, version, summary)

    def add_import(self, path: str) -> PlugInfo:
        """Load the plug at import path `path` (not installed); record its error instead of raising."""
        return self._add(path, lambda: import_object(path), None, None, "")

    def _add(
        self, name: str, load: typing.Callable[[], Any], dist_name: str | None, version: str | None, summary: str
    ) -> PlugInfo:
        settings: tuple[SettingInfo, ...] = ()
        taken = self.plugs.get(name)
        detail = ""
        try:
            if taken:
                raise PlugUnusableError(f"{self.noun} name '{name}' is already taken by {taken.distribution}")
            loaded = load()
            summary = _first_line(getattr(loaded, "__doc__", None)) or summary
            self._options[name] = self._accept(name, loaded)
            settings = self._options[name].describe()
            status = "ok"
        except Exception as exc:  # a broken plug must never break discovery
            status, detail = _one_line(exc), _detail(exc)
            if not taken:
                self._options.pop(name, None)
                self._forget(name)
        info = PlugInfo(name, dist_name, version, summary, settings, status, detail)
        self.records.append(info)
        self.plugs.setdefault(name, info)
        return info

    def broken(self, name: str, exc: Exception, context: str = "") -> None:
        """Mark loaded plug `name` broken by `exc` (raised `context`): listed so, never called again."""
        info = self.plugs[name]
        broken = dataclasses.replace(info, status=_one_line(exc) + context, detail=_detail(exc))
        self.records = [broken if record is info else record for record in self.records]
        self.plugs[name] = broken
        self._options.pop(name, None)
        self._forget(name)

    def _accept(self, name: str, loaded: Any) -> type[Options]:
        """Check what entry point `name` loaded; return its options class, or raise."""
        raise NotImplementedError

    def _forget(self, name: str) -> None:
        """Undo what `_accept` did for a plug that turned out broken."""

    def info(self, name: str) -> PlugInfo:
        """The record of plug `name`: an installed one, or one loaded now from its import path."""
        info = self.plugs.get(name)
        if info is not None:
            return info
        if importable(name):
            return self.add_import(name)
        installed = ", ".join(self.plugs) or "none"
        hint = difflib.get_close_matches(name, list(self.plugs), n=1)
        guess = f"did you mean '{hint[0]}'? " if hint else ""
        path = "." in name or ":" in name
        module = f" (nor a module {name.partition(':')[0]} to import from here or PYTHONPATH)" if path else ""
        raise UnknownPlugError(f"unknown {self.noun} '{name}'{module}; {guess}installed {self.noun}s: {installed}")

    def options_class(self, name: str) -> type[Options]:
        """The options class of a usable plug, or a one-line error naming the installed ones."""
        info = self.info(name)
        if not info.ok:
            source = f" ({info.distribution})" if info.distribution else ""
            raise PlugUnusableError(f"{self.noun} '{name}'{source} cannot be used: {info.status}")
        return self._options[name]


class PlugRegistry(EntryPointRegistry):
    """The cluster plugs: entry points of `sdt_core.plugs`, each a module of hooks."""

    group = GROUP

    def __init__(self) -> None:
        super().__init__()
        self.manager = pluggy.PluginManager(hookspecs.PROJECT)
        self.manager.add_hookspecs(hookspecs)

    def _forget(self, name: str) -> None:
        if self.manager.has_plugin(name):
            self.manager.unregister(name=name)

    def _accept(self, name: str, plugin: Any) -> type[Settings]:
        if isinstance(plugin, type) and callable(getattr(plugin, "init_client", None)):
            raise PlugUnusableError(
                f"{name} is a ClientPlug class, not hooks: it declares no settings; sdt run --plug and get_plug take it"
            )
        if self.manager.is_registered(plugin):
            raise PlugUnusableError(f"{name} is the installed plug '{self.manager.get_name(plugin)}': use that name")
        self._check_hooks(plugin)
        self.manager.register(plugin, name=name)  # pluggy checks the hooks too
        implemented = {caller.name for caller in self.manager.get_hookcallers(plugin) or ()}
        missing = [h for h in REQUIRED_HOOKS if h not in implemented]
        if missing:
            unmarked = " (a function of that name is not marked @sdt_core.hookimpl)"
            raise PlugUnusableError(
                f"the plug does not implement the required hook {missing[0]}"
                + (unmarked if callable(getattr(plugin, missing[0], None)) else "")
            )
        settings_cls = self.call(name, "plug_settings")
        if not (isinstance(settings_cls, type) and issubclass(settings_cls, Settings)):
            raise PlugUnusableError(f"plug_settings returned {settings_cls!r}, not a Settings class")
        if "configure_dask" in implemented:  # called for every start: it must not break another plug's
            try:
                self.call(name, "configure_dask", plug=PROBE, settings=validate(PROBE, Settings, {}))
            except Exception as exc:
                raise PlugUnusableError(f"configure_dask raised {_one_line(exc)}, for a start of another plug") from exc
        return settings_cls

    def _check_hooks(self, plugin: Any) -> None:
        """Each marked function names a hook and takes only that hook's arguments; else one line."""
        hooks = _hooks()
        for attr in dir(plugin):
            opts = self.manager.parse_hookimpl_opts(plugin, attr)
            if opts is None:
                continue
            hook = opts.get("specname") or attr
            if hook not in hooks:
                hint = difflib.get_close_matches(hook, hooks, n=1)
                guess = f"; did you mean {hint[0]}?" if hint else f" (hooks: {', '.join(hooks)})"
                raise PlugUnusableError(f"{hook} is not an sdt-core hook{guess}")
            taken = _arguments(getattr(plugin, attr))
            given = _arguments(getattr(hookspecs, hook))
            unknown = [a for a in taken if a not in given]
            if unknown:
                raise PlugUnusableError(
                    f"hook {hook}({', '.join(taken)}) takes {', '.join(unknown)}, which sdt-core does not pass: "
                    f"its arguments are ({', '.join(given)})"
                )

    def call(self, name: str, hook: str, **kwargs: Any) -> Any:
        """Call `hook` on plug `name` alone."""
        plugin = self.manager.get_plugin(name)
        others = [p for p in self.manager.get_plugins() if p is not plugin]
        return self.manager.subset_hook_caller(hook, others)(**kwargs)

    def settings_class(self, name: str) -> type[Settings]:
        return typing.cast("type[Settings]", self.options_class(name))

    def settings(self, name: str, values: Mapping[str, Any]) -> Settings:
        """Validated settings of plug `name`: `values` over dask config `sdt.<name>` over defaults."""
        cls = self.settings_class(name)
        import dask.config

        return validate(name, cls, values, dask.config.get(f"sdt.{name}", default=None) or {})

    def dask_config(self, name: str, settings: Settings) -> dict[str, Any]:
        """Merged `configure_dask` contributions for a start of `name`, less what the user set."""
        merged: dict[str, Any] = {}
        for impl in self.manager.hook.configure_dask.get_hookimpls():  # each plug on its own, in load order
            try:
                contributions = self.call(impl.plugin_name, "configure_dask", plug=name, settings=settings)
            except Exception as exc:
                if impl.plugin_name == name:
                    raise PlugUnusableError(
                        f"plug '{name}' cannot be used: configure_dask raised {_one_line(exc)}"
                    ) from exc
                self.broken(impl.plugin_name, exc, f" (configure_dask, for a start of '{name}')")
                log.warning(
                    "plug '%s' is broken, the start of '%s' goes on without it: configure_dask raised %s",
                    impl.plugin_name,
                    name,
                    _one_line(exc),
                )
                continue
            for contribution in contributions:
                merged.update(_flatten(contribution or {}))
        return {key: value for key, value in merged.items() if not _set_by_user(key)}

    def preflight(self, name: str, settings: Settings) -> None:
        self.call(name, "preflight", settings=settings)

    def make_cluster(self, name: str, settings: Settings) -> Cluster:
        return self.call(name, "make_cluster", settings=settings)

    def plan(self, name: str, settings: Settings) -> ClusterPlan | None:
        """The plug's plan for a start with `settings`, or None if it does not implement one."""
        return self.call(name, "plan_cluster", settings=settings)

    def clean_up(
        self, name: str, settings: Settings, older_than: float | None, dry_run: bool
    ) -> Sequence[Leftover] | None:
        """What earlier starts of `name` left behind, deleted unless `dry_run`; None without the hook."""
        return self.call(name, "clean_up", settings=settings, older_than=older_than, dry_run=dry_run)

    def workers_share_files(self, name: str, settings: Settings) -> bool | None:
        """Whether the plug's workers see this machine's files: True, False, or None (unknown, or no answer)."""
        answer = self.call(name, "workers_share_files", settings=settings)
        return None if answer is None else bool(answer)

    def implements(self, name: str, hook: str) -> bool:
        """Whether plug `name` implements the optional `hook`."""
        plugin = self.manager.get_plugin(name)
        return any(impl.plugin is plugin for impl in getattr(self.manager.hook, hook).get_hookimpls())

    def adapt_cluster(self, name: str, settings: Settings, cluster: Cluster, minimum: int, maximum: int) -> bool:
        answer = self.call(name, "adapt_cluster", settings=settings, cluster=cluster, minimum=minimum, maximum=maximum)
        return bool(answer)

    def worker_plugins(self, name: str, settings: Settings) -> Sequence[Any]:
        return list(self.call(name, "worker_plugins", settings=settings) or ())

    def cluster_logs(self, name: str, settings: Settings, cluster: Cluster) -> Mapping[str, str] | None:
        """The logs the plug reads itself from `cluster`, or None if it does not implement the hook."""
        return self.call(name, "cluster_logs", settings=settings, cluster=cluster)


def _one_line(exc: Exception) -> str:
    """An error in one line: its first line, and for pluggy's reports the reason (the last)."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()] or [""]
    text = f"{lines[0]}: {lines[-1]}" if isinstance(exc, pluggy.PluginValidationError) and len(lines) > 1 else lines[0]
    return f"{type(exc).__name__}: {text}".strip()


def _detail(exc: Exception) -> str:
    import traceback

    return "".join(traceback.format_exception(exc)).strip()


def _first_line(doc: str | None) -> str:
    return doc.strip().splitlines()[0].strip() if doc and doc.strip() else ""


def _hooks() -> list[str]:
    """The names of sdt-core's hooks."""
    return sorted(n for n, f in vars(hookspecs).items() if hasattr(f, hookspecs.PROJECT + "_spec"))


def _arguments(function: Any) -> list[str]:
    """The names of a hook function's arguments, as pluggy passes them (by name)."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p.name for p in parameters if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def _flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        if isinstance(value, Mapping) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _canonical(key: str) -> str:
    return key.replace("_", "-")


def _set_by_user(key: str) -> bool:
    """Whether the user's dask config sets `key`: YAML, DASK_* env, or `dask.config.set`."""
    import dask.config

    collected = {_canonical(k) for k in _flatten(dask.config.collect())}
    if _canonical(key) in collected:
        return True
    missing = object()
    defaults = dask.config.merge(*dask.config.defaults)
    current = dask.config.get(key, default=missing)
    return current is not missing and current != dask.config.get(key, default=missing, config=defaults)


def registry(refresh: bool = False) -> PlugRegistry:
    """The process's plug registry, loaded from the entry points on first use."""
    return PlugRegistry.shared(refresh)


def list_plugs(refresh: bool = False) -> list[PlugInfo]:
    """One record per installed plug, broken ones included, sorted by name."""
    return list(registry(refresh).records)
