"""The `sdt` command. Usage errors print one line on stderr and exit 2."""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import json
import logging
import os
import signal
import sys
import time
import traceback
import typing
import warnings
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

import click

from sdt_core.errors import SdtError, UnknownPlugError
from sdt_core.job import signals
from sdt_core.plugs.clientplug import client_plug_class, get_plug
from sdt_core.plugs.discovery import EntryPointRegistry, list_plugs, registry
from sdt_core.plugs.imports import import_object, importable
from sdt_core.plugs.settings import (
    MASK,
    Options,
    SettingInfo,
    Settings,
    mask_credentials,
    metavar,
    parse_text,
    text_format,
)

if TYPE_CHECKING:
    from sdt_core.dataplugs import DataPlug

EXIT_USAGE = 2


def _table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    cells = [list(map(str, header))] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header) - 1)]
    return "\n".join(
        "  ".join([*(c.ljust(w) for c, w in zip(row[:-1], widths, strict=True)), row[-1]]).rstrip() for row in cells
    )


def _pairs(items: Iterable[str], option: str) -> dict[str, str]:
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.UsageError(f"{option} takes KEY=VALUE, got {item!r}")
        pairs[key.strip()] = value
    return pairs


def _keywords(items: Iterable[str], option: str) -> dict[str, Any]:
    """KEY=VALUE keywords of an SDT function, each value read as a setting's text is."""
    return {k: parse_text(None, v) for k, v in _pairs(items, option).items()}


def _settings_values(cls: type[Options], options: dict[str, Any], sets: Iterable[str]) -> dict[str, Any]:
    """Setting values from derived options and `--set KEY=VALUE`, parsed by declared type."""
    hints = typing.get_type_hints(cls)
    values = {name: text for name, text in options.items() if text is not None}  # a flag's value is a bool
    values |= {key.replace("-", "_"): text for key, text in _pairs(sets, "--set").items()}
    return {key: parse_text(hints.get(key), text) if isinstance(text, str) else text for key, text in values.items()}


def _setting_option(s: SettingInfo, tp: Any, taken: Iterable[str] = ()) -> click.Option | None:
    """The option of setting `s` (of type `tp`): a bool is a flag `--NAME/--no-NAME`, anything else
    `--NAME VALUE`; None where the name would clash with an option in `taken` (`--set` reaches it)."""
    dashed = s.name.replace("_", "-")
    if tp is bool:
        names = [f"--{dashed}", f"--no-{dashed}"]
        if set(names) & set(taken):
            return None
        help = f"{s.help} [default: {'--' if s.default else '--no-'}{dashed}]"
        return click.Option([f"--{dashed}/--no-{dashed}", s.name], default=None, help=help)
    if f"--{dashed}" in taken:
        return None
    return click.Option(
        [f"--{dashed}", s.name], metavar=metavar(tp), help=f"{s.help} [{_form(tp)}default: {_default(s)}]"
    )


def _flags(cls: type[Options]) -> list[SettingInfo]:
    """The bool settings of `cls`: flags on the command line."""
    hints = typing.get_type_hints(cls)
    return [s for s in cls.describe() if hints[s.name] is bool]


def _settings_class(name: str) -> type[Settings]:
    """The settings class of plug `name`; the base `Settings` for a ClientPlug class's import path."""
    return Settings if client_plug_class(name) else registry().settings_class(name)


#: How `sdt info` and the options' help tell the command-line form of values.
VALUE_FORMS = "lists as a,b,c and mappings as k=v,k2=v2 (or JSON); none where None is allowed."
TEXT_FORMS = f"On the command line: {VALUE_FORMS}"


class _LogFilter(logging.Filter):
    """sdt-core's and plugs' info messages; everyone's warnings."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or record.name.startswith("sdt")


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """sdt's one root handler: it writes to the `sys.stderr` of the moment (a redirect, a capture)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
        self.addFilter(_LogFilter())

    @property  # type: ignore[override]
    def stream(self) -> TextIO:  # what `RunLog` sees when it takes the terminal's handlers off
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:  # StreamHandler's own assignments: always the current one
        pass


def _configure_logging() -> None:
    """sdt's handler on the root logger, once however often `main()` runs in a process."""
    root = logging.getLogger()
    for earlier in [h for h in root.handlers if isinstance(h, _Stderr)]:
        root.removeHandler(earlier)
    root.addHandler(_Stderr())
    root.setLevel(logging.INFO)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sdt-core", prog_name="sdt")
def cli() -> None:
    """Run Solar Data Tools on a Dask cluster made by any installed plug."""
    _configure_logging()


@cli.command("plugs")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
@click.option("--data", "data_plugs", is_flag=True, help="List the data plugs (by URL scheme) instead.")
@click.option("-v", "--verbose", is_flag=True, help="Also the whole error of each broken plug.")
def plugs_command(as_json: bool, data_plugs: bool, verbose: bool) -> None:
    """List the installed plugs; a broken one with its error in one line (-v: all of it)."""
    if data_plugs:
        from sdt_core.dataplugs import list_data_plugs

        plugs = list_data_plugs()
    else:
        plugs = list_plugs()
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(p) for p in plugs], indent=2, default=repr))
        return
    rows = [
        (p.name, p.distribution or "-", p.version or "-", "ok" if p.ok else "broken", p.summary if p.ok else p.status)
        for p in plugs
    ]
    click.echo(_table(rows, ("NAME", "DISTRIBUTION", "VERSION", "STATUS", "SUMMARY OR ERROR")))
    broken = [p for p in plugs if not p.ok]
    for p in broken if verbose else ():
        click.echo(f"\n{p.name} ({p.distribution or 'not installed'}):\n{p.detail or p.status}")
    if broken and not verbose:
        command = "sdt plugs --data -v" if data_plugs else "sdt plugs -v"
        click.echo(f"\n{len(broken)} broken; `{command}` shows their errors in full.")


def _info_registry(name: str, data: bool) -> EntryPointRegistry:
    """The registry `sdt info NAME` looks in: the cluster plugs', else the data plugs'."""
    from sdt_core.dataplugs import DataPlug, data_registry

    if data or (name not in registry().plugs and name in data_registry().plugs):
        return data_registry()
    if name in registry().plugs:
        return registry()
    if importable(name):
        try:
            obj = import_object(name)
        except Exception:  # the registry says what is wrong with it
            obj = None
        return data_registry() if isinstance(obj, type) and issubclass(obj, DataPlug) else registry()
    names = [*registry().plugs, *data_registry().plugs]
    hint = difflib.get_close_matches(name, names, n=1)
    raise UnknownPlugError(
        f"unknown plug '{name}'; {f'did you mean {hint[0]!r}? ' if hint else ''}"
        f"installed plugs: {', '.join(registry().plugs) or 'none'}; "
        f"data plugs: {', '.join(data_registry().plugs) or 'none'}"
    )


@cli.command("info")
@click.argument("name")
@click.option("--data", "data", is_flag=True, help="NAME is a data plug (a URL scheme such as file, s3, sample).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
def info_command(name: str, data: bool, as_json: bool) -> None:
    """Show a plug's settings, or a data plug's options: type, default and help."""
    plugs = _info_registry(name, data)
    cls = plugs.options_class(name)
    plug = plugs.plugs[name]
    settings = plug.settings
    if as_json:
        shown = [dataclasses.asdict(s) | {"default": MASK if s.secret and s.default else s.default} for s in settings]
        record = dataclasses.asdict(plug) | {"settings": shown}
        click.echo(json.dumps(record | {"kind": cls.noun}, indent=2, default=repr))
        return
    source = f" ({plug.distribution} {plug.version})" if plug.distribution else " (not installed)"
    click.echo(f"{plug.name}: {plug.summary}{source}\n")
    click.echo(_settings_table(settings, cls.option_noun))
    if cls.passthrough:
        backends = ", ".join(t.replace(":", ".") for t in cls.passthrough)
        click.echo(f"\nOther keyword arguments (--set KEY=VALUE) pass through to {backends}.")
    else:
        click.echo("")
    if cls.noun == "data plug":
        click.echo(_data_plug_usage(name, typing.cast("type[DataPlug]", cls)))
    else:
        click.echo(
            f"Defaults may be set in dask config: sdt.{name}.<setting> in a YAML file, "
            f"or DASK_SDT__{name.upper()}__<SETTING> in the environment."
        )
    flags = [f"--{d}/--no-{d}" for d in (s.name.replace("_", "-") for s in _flags(cls))] if cls.noun == "plug" else []
    if flags:
        click.echo(f"On the command line: {', '.join(flags)} (or --set NAME=true/false); {VALUE_FORMS}")
    else:
        click.echo(TEXT_FORMS)


def _form(tp: Any) -> str:
    """How to type a value of `tp`, where its metavar (INTEGER, NUMBER, TEXT) does not say it all."""
    form = text_format(tp)
    return "" if form in ("an integer", "a number", "text") else f"{form}; "


def _default(s: SettingInfo) -> str:
    return MASK if s.secret and s.default else repr(s.default)


def _settings_table(settings: Sequence[SettingInfo], noun: str) -> str:
    rows = [(s.name, s.type, _default(s), s.help) for s in settings]
    return _table(rows, (noun.upper(), "TYPE", "DEFAULT", "HELP")) if rows else f"(no {noun}s)"


def _data_plug_usage(name: str, cls: type[DataPlug]) -> str:
    """How `sdt run` reaches data plug `name`: its URL, its location and its options."""
    from sdt_core.dataplugs import DataPlug

    own = getattr(cls.from_location, "__func__", None) is not getattr(DataPlug.from_location, "__func__", None)
    location = (cls.from_location.__doc__ or "").strip().split("\n")[0] if own else ""
    url = f"{name}://LOCATION?OPTION=VALUE" if own else f"{name}://?OPTION=VALUE"
    lines = [f"Data: sdt run {url}, or sdt run --data {name} [LOCATION] --data-option OPTION=VALUE."]
    if location:
        lines.append(f"LOCATION: {location}")
    return "\n".join(lines)


def _stop_on_signals() -> None:
    """Make SIGTERM and SIGHUP behave like Ctrl-C; a second signal while stopping is ignored."""

    def stop(signum: int, frame: object) -> NoReturn:
        for sig in signals.STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        raise KeyboardInterrupt

    for sig in signals.STOP_SIGNALS:
        signal.signal(sig, stop)


def _check(client: Any) -> str:
    futures = client.map(pow, range(100), [2] * 100, pure=False)
    total = client.submit(sum, futures).result()
    workers = len(client.scheduler_info()["workers"])
    return f"check: 100 tasks ran on {workers} workers (sum of squares {total})"


#: `--adapt`, declared once for `sdt run` and `sdt up NAME`.
ADAPT_DECLS = ("--adapt",)
ADAPT_ATTRS: dict[str, Any] = {
    "metavar": "MIN:MAX",
    "help": "Grow the cluster to MAX workers while keys wait, shrink it to MIN when idle (e.g. 1:4).",
}


def _make_plug(
    name: str,
    values: dict[str, Any],
    dask_config: tuple[str, ...],
    config: dict[str, Any] | None = None,
    adapt: str | None = None,
) -> Any:
    """The plug `name` with these settings, `--dask-config` overrides, `config` and `--adapt`; nothing is started."""
    overrides = {k: parse_text(None, v) for k, v in _pairs(dask_config, "--dask-config").items()} | (config or {})
    for option, given, what in (("--dask-config", overrides, "set dask config"), ("--adapt", adapt, "adapt")):
        if given and client_plug_class(name):
            raise SdtError(f"{option} needs a plug with hooks; {name} is a ClientPlug class: {what} in it")
    options: dict[str, Any] = {"config_overrides": overrides} if overrides else {}
    options |= {"adapt": adapt} if adapt is not None else {}
    return get_plug(name, **values, **options)


def _up(
    name: str,
    values: dict[str, Any],
    dask_config: tuple[str, ...],
    check: bool,
    idle_timeout: str | None,
    adapt: str | None,
) -> None:
    from sdt_core.plugs.duration import parse_duration
    from sdt_core.plugs.idle import IDLE_CONFIG

    config = {} if idle_timeout is None else {IDLE_CONFIG: parse_duration(idle_timeout, "--idle-timeout")}
    plug = _make_plug(name, values, dask_config, config, adapt)
    _stop_on_signals()
    ending = "Cluster closed."  # also after a start cut short: the plug removed its part
    try:
        with _warnings_in_one_line(), plug as client:
            click.echo(plug.cluster_line())
            click.echo(f"Scheduler: {client.scheduler_info()['address']}")
            if getattr(plug, "dashboard_link", ""):  # no line for a cluster without a dashboard
                click.echo(f"Dashboard: {plug.dashboard_link}")
            if not plug.owns_cluster:
                ending = f"Disconnected; the scheduler at {client.scheduler.address} is left running."
            if check:
                click.echo(_check(client))
            else:
                stops = "stops it" if plug.owns_cluster else "disconnects"
                click.echo(f"Running; Ctrl-C or SIGTERM {stops}.")
                ending = _serve(plug, client) or ending
    except KeyboardInterrupt:
        pass
    click.echo(ending, err=True)


def _serve(plug: Any, client: Any) -> str:
    """Keep the cluster up until a signal, or until it closes itself when idle: then the line to end with."""
    from sdt_core.plugs.duration import describe
    from sdt_core.plugs.idle import IdleNotice

    watched = getattr(plug, "idle_timeout", None) is not None  # a RegisteredPlug's cluster with a timeout
    notice = IdleNotice(client) if watched else None
    if notice is not None and plug.watch_idle(keeper=True):
        when = describe(plug.idle_timeout)
        click.echo(f"Idle shutdown: after {when} with no task and no other client (--idle-timeout none: never).")
    while True:
        if notice is not None and notice.event.wait(1.0):
            return f"Cluster closed: {notice.reason}."
        if notice is None:
            time.sleep(1.0)
        if client.status == "closed":
            raise SdtError(
                f"lost the connection to the scheduler at {client.scheduler.address}; the cluster was closed"
            )


@contextlib.contextmanager
def _warnings_in_one_line() -> Iterator[None]:
    """Python warnings as one line each on stderr (Dask's "Port 8787 is already in use" took four)."""

    def line(message: Warning | str, *args: Any, **kwargs: Any) -> None:
        click.echo(f"sdt up: {' '.join(str(message).split())}", err=True)

    with warnings.catch_warnings():
        warnings.showwarning = line
        yield


def _plan(name: str, values: dict[str, Any], as_json: bool, results: str | None, system_years: float) -> None:
    from sdt_core.cloud.measured import Measured, describe

    settings = registry().settings(name, values)
    measured = Measured.from_results(results) if results else None
    plan = registry().plan(name, settings)
    if plan is None:
        raise SdtError(f"plug '{name}' cannot tell what it would create: it implements no plan_cluster hook")
    if as_json:
        extra = {"measured": describe(measured)} if measured else {}
        click.echo(json.dumps(plan.to_dict() | extra, indent=2))
        return
    click.echo(str(plan))
    if measured:
        click.echo("\n".join(measured.lines(plan, settings, system_years)))


class _CleanFailed(SdtError):
    exit_code = 1  # not bad input: the cloud refused


def _clean(name: str, values: dict[str, Any], dry_run: bool, older_than: str | None) -> None:
    from sdt_core.plugs.duration import describe, parse_duration

    seconds = parse_duration(older_than, "--older-than") if older_than is not None else None
    settings = registry().settings(name, values)
    found = registry().clean_up(name, settings, seconds, dry_run)
    if found is None:
        raise SdtError(f"plug '{name}' cannot clean up after its starts: it implements no clean_up hook")
    age = f" older than {describe(seconds)}" if seconds else ""
    if not found:
        click.echo(f"Nothing left behind by starts of plug '{name}'{age}.")
        return
    done = "would delete" if dry_run else "deleted"
    rows = [(f"FAILED: {f.error}" if f.error else done, f.kind, f.name, f.start, f.started or "?") for f in found]
    click.echo(_table(rows, ("STATE", "KIND", "RESOURCE", "START", "STARTED")))
    starts = len({f.start for f in found})
    what = f"{len(found)} resource{'s' if len(found) != 1 else ''} of {starts} start{'s' if starts != 1 else ''}{age}"
    failed = [f for f in found if f.error]
    if failed:
        again = f"`sdt clean {name}` again"
        raise _CleanFailed(f"could not delete {len(failed)} of {what}; see the list above, then run {again}")
    click.echo(f"{what}: would be deleted (--dry-run: nothing was)." if dry_run else f"Deleted {what}.")


class _PlugCommands(click.Group):
    """One subcommand per installed plug, its options derived from the plug's settings."""

    def __init__(self, *args: Any, action: Any, extra_params: Any, verb: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.action = action  # action(name, setting values, **extra parameters)
        self.extra_params = extra_params  # () -> the subcommand's own click parameters
        self.verb = verb

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [p.name for p in list_plugs() if p.ok]

    def get_command(self, ctx: click.Context, name: str) -> click.Command:
        cls = _settings_class(name)
        described = cls.describe()
        hints = typing.get_type_hints(cls)
        own = [
            click.Option(
                ["--set", "sets"],
                multiple=True,
                metavar="KEY=VALUE",
                help="Any setting, or a keyword of the backend (see `sdt info`).",
            ),
            *self.extra_params(),
        ]
        taken = [name for param in own for name in param.opts + param.secondary_opts]
        params: list[click.Parameter] = [o for s in described if (o := _setting_option(s, hints[s.name], taken))]
        derived = [p.name for p in params]
        params += own

        def callback(sets: tuple[str, ...], **options: Any) -> None:
            given = {name: options.pop(name) for name in derived if name}
            self.action(name, _settings_values(cls, given, sets), **options)

        return click.Command(name, params=params, callback=callback, help=f"{self.verb}: {_summary(name)}")


def _summary(name: str) -> str:
    """The one-line summary of plug `name` (a ClientPlug class: its docstring's first line)."""
    info = registry().plugs.get(name)
    doc = info.summary if info else getattr(client_plug_class(name), "__doc__", None)
    return (doc or name).strip().split("\n")[0]


def _up_params() -> list[click.Parameter]:
    return [
        click.Option(
            ["--dask-config", "dask_config"],
            multiple=True,
            metavar="KEY=VALUE",
            help="Dask config for this cluster, e.g. distributed.worker.memory.spill=false.",
        ),
        click.Option(["--check"], is_flag=True, help="Run a test computation, then tear the cluster down and exit."),
        click.Option(
            ["--idle-timeout", "idle_timeout"],
            metavar="DURATION",
            help="Close the cluster after this long with no task and no client but this one, e.g. 20m or 1h; "
            "none: never (dask config sdt.idle-timeout) [default: 20m for a plug whose plan has prices, else none]",
        ),
        click.Option(list(ADAPT_DECLS), **ADAPT_ATTRS),
    ]


def _plan_params() -> list[click.Parameter]:
    return [
        click.Option(["--json", "as_json"], is_flag=True, help="Print JSON for machines."),
        click.Option(
            ["--results"],
            metavar="OUT",
            help="Output folder of a finished `sdt run`: estimate time and cost from what it measured.",
        ),
        click.Option(
            ["--system-years"],
            type=click.FloatRange(min=0, min_open=True),
            default=1000.0,
            show_default=True,
            help="How much data the estimate is for (with --results).",
        ),
    ]


@cli.group("up", cls=_PlugCommands, action=_up, extra_params=_up_params, verb="Start a cluster")
def up_command() -> None:
    """Start a cluster from plug NAME, print its addresses, keep it up until Ctrl-C or SIGTERM."""


@cli.group("plan", cls=_PlugCommands, action=_plan, extra_params=_plan_params, verb="Plan a cluster")
def plan_command() -> None:
    """Print what `sdt up NAME` would create and its estimated cost per hour; create nothing."""


def _clean_params() -> list[click.Parameter]:
    return [
        click.Option(["--dry-run"], is_flag=True, help="Only list what would be deleted."),
        click.Option(
            ["--older-than"],
            metavar="DURATION",
            help="Only what starts more than this long ago left, e.g. 2h (spares clusters still in use).",
        ),
    ]


@cli.group("clean", cls=_PlugCommands, action=_clean, extra_params=_clean_params, verb="Clean up after")
def clean_command() -> None:
    """Delete what earlier starts of plug NAME left behind (a client killed before it closed its
    cluster), found by the tags its starts set; --dry-run only lists it."""


class _RunCommand(click.Command):
    """`sdt run`: its own options, plus the bool settings of the plug `--plug` names as flags
    `--NAME/--no-NAME` (as on `sdt up NAME`; every setting is also `--set NAME=VALUE`)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["sdt.run.plug"] = _plug_in(args)
        return super().parse_args(ctx, args)

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        params = super().get_params(ctx)
        if "sdt.run.flags" not in ctx.meta:  # made once: click tells parameters apart by identity
            taken = [name for param in params for name in param.opts + param.secondary_opts]
            try:
                cls = _settings_class(ctx.meta.get("sdt.run.plug", "local"))
            except SdtError:  # the run names what is wrong with the plug
                cls = Settings
            flags = (_setting_option(s, bool, taken) for s in _flags(cls))
            ctx.meta["sdt.run.flags"] = [flag for flag in flags if flag]
        return params[:-1] + ctx.meta["sdt.run.flags"] + params[-1:]  # --help stays last


def _plug_in(args: Sequence[str]) -> str:
    """The plug `--plug NAME` (or `--plug=NAME`) names in `args`; the default, local, without one."""
    for i, arg in enumerate(args):
        if arg == "--":
            break
        if arg == "--plug" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--plug="):
            return arg.partition("=")[2]
    return "local"


@cli.command("run", cls=_RunCommand)
@click.argument("data", required=False)
@click.option(
    "--plug",
    "plug_name",
    default="local",
    show_default=True,
    help="The cluster plug: an installed one's name, or package.module[:Name] of one not installed.",
)
@click.option(
    "--data",
    "data_plug",
    metavar="NAME",
    help="The data plug serving DATA (a name, or package.module:Class) instead of DATA's URL scheme.",
)
@click.option("--workers", metavar="INTEGER", help="Number of workers.")
@click.option("--threads", metavar="INTEGER", help="Threads per worker.")
@click.option("--memory", metavar="NUMBER", help="Memory per worker in GiB.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Any setting of the plug.")
@click.option("--dask-config", "dask_config", multiple=True, metavar="KEY=VALUE", help="Dask config of the cluster.")
@click.option("--out", default="sdt-results", show_default=True, type=click.Path(), help="Output folder.")
@click.option("--resume", is_flag=True, help="Go on with the run in --out: skip the keys it has done.")
@click.option(
    "--rerun",
    "rerun",
    multiple=True,
    metavar="STAGE",
    help="With --resume: also run again the keys that failed in STAGE (e.g. timeout, memory, worker).",
)
@click.option(
    "--key-timeout",
    metavar="DURATION",
    help="Fail a key running longer than this (e.g. 30m), and replace its worker "
    "(dask config sdt.key-timeout) [default: 2h].",
)
@click.option("--analysis", metavar="MODULE:FUNCTION", help="Run f(frame) -> dict instead of SDT's pipeline.")
@click.option("--loss-analysis", is_flag=True, help="Also SDT's loss factor analysis (systems over 365 days).")
@click.option("--pipeline", "pipeline", multiple=True, metavar="KEY=VALUE", help="Keyword of run_pipeline.")
@click.option(
    "--loss-option",
    "loss_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Keyword of run_loss_factor_analysis or estimate_degradation_rate (e.g. max_samples=100).",
)
@click.option("--data-option", "data_options", multiple=True, metavar="KEY=VALUE", help="Option of the data plug.")
@click.option("--limit", type=click.IntRange(min=1), help="Only the first N keys.")
@click.option(
    "--max-in-flight",
    type=click.IntRange(min=1),
    default=10_000,
    show_default=True,
    help="Most keys on the cluster at once.",
)
@click.option(*ADAPT_DECLS, **ADAPT_ATTRS)
@click.option(
    "--max-cost",
    type=float,
    metavar="USD",
    help="Start no key once the keys' cost reaches this (a plug whose plan has prices); exit status 3.",
)
@click.option("--no-report", is_flag=True, help="No reports: neither the fleet report nor Dask's performance report.")
@click.option("--dry-run", is_flag=True, help="Check DATA, the plug's settings and every option; start nothing.")
@click.option(
    "--exact-sdt",
    is_flag=True,
    default=None,
    help="Run SDT exactly as released, without its fast path (dask config sdt.exact-sdt).",
)
@click.option("-v", "--verbose", is_flag=True, help="Also show warnings and log records as they happen.")
@click.option("-q", "--quiet", is_flag=True, help="Show only the closing summary.")
@click.option("--json", "as_json", is_flag=True, help="Print each finished key's row on stdout, one JSON per line.")
def run_command(
    data: str | None,
    plug_name: str,
    data_plug: str | None,
    workers: str | None,
    threads: str | None,
    memory: str | None,
    sets: tuple[str, ...],
    dask_config: tuple[str, ...],
    out: str,
    resume: bool,
    rerun: tuple[str, ...],
    key_timeout: str | None,
    analysis: str | None,
    loss_analysis: bool,
    pipeline: tuple[str, ...],
    loss_options: tuple[str, ...],
    data_options: tuple[str, ...],
    limit: int | None,
    max_in_flight: int,
    adapt: str | None,
    max_cost: float | None,
    no_report: bool,
    dry_run: bool,
    exact_sdt: bool | None,
    verbose: bool,
    quiet: bool,
    as_json: bool,
    **flags: bool | None,
) -> int | None:
    """Run SDT's pipeline (or --analysis) for every system of DATA on a cluster from --plug.

    DATA is a directory of CSV files or a data plug URL (s3://bucket/prefix,
    sample://?systems=8); without it, the embedded sample set. Each finished system is
    written to --out at once; --resume goes on after a crash. Shows progress and a summary;
    warnings and log records go to OUT/run.log, the cluster's logs to OUT/logs/.
    """
    from sdt_core.dataplugs import data_registry
    from sdt_core.job.runner import run
    from sdt_core.output.terminal import Terminal

    if verbose and quiet:
        raise click.UsageError("-v and -q exclude each other; give one of them")
    terminal = Terminal("verbose" if verbose else "quiet" if quiet else "normal", json=as_json)

    if exact_sdt:
        import dask.config

        from sdt_core.acceleration import EXACT_CONFIG

        dask.config.set({EXACT_CONFIG: True})  # for the plug too: it sizes workers by the mode
    cls = _settings_class(plug_name)
    values = _settings_values(cls, {"workers": workers, "threads": threads, "memory": memory} | flags, sets)
    plug = _make_plug(plug_name, values, dask_config, adapt=adapt)
    if data is None and data_plug is None and data_options:
        data_plug = "sample"  # the options are the embedded sample set's
    text_options = _pairs(data_options, "--data-option")
    given = data is not None or data_plug is not None  # '' is a mistake, not the sample set
    source = data_registry().open(data, text_options=text_options, plug=data_plug) if given else None
    options: dict[str, Any] = {"plug": plug, "analysis": analysis, "loss_analysis": loss_analysis, "limit": limit}
    options |= {"pipeline": _keywords(pipeline, "--pipeline"), "loss_options": _keywords(loss_options, "--loss-option")}
    options |= {"max_in_flight": max_in_flight, "exact_sdt": exact_sdt}
    options |= {"key_timeout": key_timeout, "rerun": rerun, "max_cost": max_cost}
    summary = run(source, out=out, resume=resume, report=not no_report, terminal=terminal, dry_run=dry_run, **options)
    if dry_run:
        click.echo(f"{summary.keys} keys on {summary.cluster}: input valid, nothing started (--dry-run)")
        return None
    terminal.summary(summary)
    if summary.not_started:
        from sdt_core.job.cost import EXIT_BUDGET
        from sdt_core.output.summary import budget_line

        click.echo(budget_line(summary), err=True)
        return EXIT_BUDGET
    return None


@cli.command("report")
@click.argument("out", type=click.Path())
def report_command(out: str) -> None:
    """Write OUT/report.html: the fleet report of the run in folder OUT (also done by every sdt run)."""
    from pathlib import Path

    from sdt_core.output.report import write_report

    click.echo(f"Fleet report: {write_report(Path(out))}")


@cli.command("sample-data")
@click.argument("folder", type=click.Path(file_okay=False))
@click.option("--systems", type=click.IntRange(1, 100_000), default=8, show_default=True, help="Number of systems.")
@click.option("--days", type=click.IntRange(1, 36_500), default=365, show_default=True, help="Days of each system.")
def sample_data_command(folder: str, systems: int, days: int) -> None:
    """Write synthetic PV systems as CSV files (deterministic: the same every time)."""
    from pathlib import Path

    from sdt_core.dataplugs.sample import write_sample_data

    with _writing(folder):
        paths = write_sample_data(Path(folder), systems, days)
    click.echo(f"{len(paths)} systems of {days} days in {folder}")


@contextlib.contextmanager
def _writing(folder: str) -> Iterator[None]:
    """Turn a failure to write into `folder` into one line."""
    try:
        yield
    except OSError as exc:
        where = exc.filename or folder
        raise SdtError(f"cannot write {where}: {exc.strerror}; choose another folder") from exc


#: How a plug author installs a plug's folder: with uv (the README's set-up, whose .venv has no pip), or with pip.
INSTALL = "uv pip install -e '{folder}[test]'"
PIP_INSTALL = "python -m pip install -e '{folder}[test]'"


@cli.command("new-plug")
@click.argument("name")
@click.option("--out", type=click.Path(file_okay=False), help="Folder to write [default: ./sdt-NAME].")
def new_plug_command(name: str, out: str | None) -> None:
    """Write a ready-to-install plug distribution sdt-NAME: hooks, settings, tests, README."""
    from pathlib import Path

    from sdt_core.plugs.template import write_plug

    with _writing(out or f"sdt-{name}"):
        written = write_plug(name, Path(out) if out else None)
    folder = written[0].parent
    click.echo(f"Wrote {folder}: {', '.join(str(p.relative_to(folder)) for p in written)}")
    click.echo(f"Next: {INSTALL.format(folder=folder)} && sdt plugs && pytest {folder}/tests")
    click.echo(f"(without uv: {PIP_INSTALL.format(folder=folder)})")


def _plug_distributions(names: tuple[str, ...]) -> list[str]:
    """The distributions of the named plugs (default: every usable installed plug)."""
    chosen = names or tuple(p.name for p in list_plugs() if p.ok)
    for name in chosen:
        registry().options_class(name)  # one line if unknown or broken
    return [d for d in (registry().plugs[n].distribution for n in chosen) if d]


@cli.command("image")
@click.argument("folder", type=click.Path(file_okay=False))
@click.option("--plug", "plugs", multiple=True, help="Plug whose distribution goes in the image [default: all].")
def image_command(folder: str, plugs: tuple[str, ...]) -> None:
    """Write FOLDER/Dockerfile and requirements.txt pinned to this environment's versions."""
    from pathlib import Path

    from sdt_core.cloud.image import write_image

    with _writing(folder):
        image = write_image(Path(folder), _plug_distributions(plugs))
    click.echo(f"Wrote {folder}/Dockerfile and {folder}/requirements.txt:")
    click.echo(_table(sorted(image.pins.items()), ("PACKAGE", "VERSION")))
    if image.local_builds:
        names = " ".join(image.local_builds)
        click.echo(
            f"Installed from a path, not an index: {names}. Put their wheels in {folder}/wheels "
            f"(e.g. `uv build --wheel --out-dir {folder}/wheels` in each source folder) before `docker build`."
        )


@cli.command("doctor")
@click.option(
    "--image-packages",
    type=click.File("r"),
    help="`pip list` or `pip freeze` output of the worker image (plus `python --version`).",
)
@click.option("--plug", "plugs", multiple=True, help="Plug whose distribution to compare [default: all].")
def doctor_command(image_packages: typing.TextIO | None, plugs: tuple[str, ...]) -> None:
    """Show the versions that must match on workers; with --image-packages, every mismatch."""
    from sdt_core.plugs.versions import FIX, compare, local_versions, parse_pip_list

    here = local_versions(_plug_distributions(plugs))
    if image_packages is None:
        click.echo(_table([(k, v or "not installed") for k, v in here.items()], ("PACKAGE", "HERE")))
        broken = [p for p in list_plugs() if not p.ok]
        for p in broken:
            click.echo(f"plug '{p.name}' ({p.distribution}) is broken: {p.status}")
        return
    try:
        image = parse_pip_list(image_packages.read())
    except UnicodeDecodeError:
        raise SdtError(
            f"{image_packages.name} is not a text file; give the output of `pip list` or `pip freeze`"
        ) from None
    if not image:
        raise SdtError(f"no package versions found in {image_packages.name}; give `pip list` or `pip freeze` output")
    mismatches = compare(here, image)
    if not mismatches:
        click.echo(f"No mismatch: the image has this environment's versions of {', '.join(here)}.")
        return
    rows = [(m.package, m.here, m.there or "not installed") for m in mismatches]
    click.echo(_table(rows, ("PACKAGE", "HERE", "IMAGE")))
    click.echo(f"{len(mismatches)} mismatches; {FIX}")
    sys.exit(1)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Entry point of the `sdt` console script."""
    _standard_streams()
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        with signals.stop_on_signals():
            code = cli.main(args=args, prog_name="sdt", standalone_mode=False)
    except Exception as exc:
        sys.exit(_fail(exc, verbose=bool({"-v", "--verbose"} & set(args))))
    except (signals.Stopped, KeyboardInterrupt) as exc:
        sys.exit(_fail(exc))
    sys.exit(code if isinstance(code, int) else 0)


def _standard_streams() -> None:
    """Descriptors 0, 1 and 2 open (on /dev/null where they were closed, `>&-`), and sys.stdout and
    sys.stderr on them: else the first file a run opens would take a closed one's number, and
    what is printed would go into it."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            os.open(os.devnull, os.O_RDWR)  # the lowest free descriptor: this one
    if sys.stdout is None:
        sys.stdout = open(1, "w", buffering=1, closefd=False)
    if sys.stderr is None:
        sys.stderr = open(2, "w", buffering=1, closefd=False)


def _fail(exc: BaseException, verbose: bool = False) -> int:
    """The one error path: one line on stderr for `exc`, and the exit code (the traceback only if verbose).

    2: bad input; 1: a failed run or an unexpected error; 128 + N: stopped by signal N
    (3, a run --max-cost stopped, is `run_command`'s own).
    """
    if isinstance(exc, signals.Stopped):
        _say(f"sdt: stopped by {exc.name}{f'; {exc.detail}' if exc.detail else ''}")
        return exc.exit_code
    if isinstance(exc, (click.Abort, KeyboardInterrupt)):
        _say("Aborted.")
        return 130
    if isinstance(exc, click.UsageError):
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
        _say(f"sdt: error: {exc.format_message()}{hint}")
        return EXIT_USAGE
    if isinstance(exc, click.ClickException):
        exc.show()
        return exc.exit_code
    logging.getLogger("sdt").debug("sdt failed", exc_info=exc)  # the whole story, for a run's log file
    if verbose:
        _say("".join(traceback.format_exception(exc)).rstrip())
    if isinstance(exc, SdtError):
        _say(f"sdt: error: {' '.join(str(exc).split())}")  # a backend's message may span lines
        return exc.exit_code
    text = " ".join(str(exc).split())[:300]
    _say(f"sdt: error: {type(exc).__name__}: {text} (unexpected; -v shows where)")
    return 1


def _say(text: str) -> None:
    """A line of the error path on stderr, with the password of any URL in it masked."""
    click.echo(mask_credentials(text), err=True)
