"""`sdt new-plug NAME`: a ready-to-install plug distribution, from the templates in `templates/plug`.

The distribution `sdt-NAME` has a pyproject.toml with the entry point, a module of hooks
with settings, a README, and tests using `sdt_core.testing`; installed as it is, it starts a
`distributed.LocalCluster` until its author puts a backend in `make_cluster`.
"""

from __future__ import annotations

import re
import string
from importlib.metadata import version
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

from sdt_core.errors import SdtError

#: A plug's name: lower-case words joined by dashes, e.g. `mycluster` or `my-cluster`.
NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
TEMPLATE = "plug"


def write_plug(name: str, folder: Path | None = None) -> list[Path]:
    """Write the distribution of plug `name` into `folder` (default: ./sdt-NAME); returns its files."""
    if not NAME.match(name):
        raise SdtError(f"plug name {name!r} is not lower-case words joined by dashes, e.g. 'mycluster' or 'my-cluster'")
    distribution = f"sdt-{name}"
    folder = Path(distribution) if folder is None else folder
    if folder.exists() and any(folder.iterdir()):
        raise SdtError(f"{folder} exists and is not empty; give another folder with --out")
    package = distribution.replace("-", "_")
    values = {
        "name": name,
        "distribution": distribution,
        "package": package,
        "title": "".join(part.capitalize() for part in name.split("-")),
        "core_version": version("sdt-core"),
    }
    written = []
    for source, relative in _templates(files("sdt_core.plugs") / "templates" / TEMPLATE, Path()):
        target = folder / Path(*(package if part == "package" else part for part in relative.parts))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(string.Template(source.read_text()).substitute(values))
        written.append(target)
    return written


def _templates(folder: Traversable, relative: Path) -> list[tuple[Traversable, Path]]:
    """Every template file below `folder`, with its path in the new distribution (less `.tmpl`)."""
    found = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.is_dir():
            found += _templates(entry, relative / entry.name)
        elif entry.name.endswith(".tmpl"):
            found.append((entry, relative / entry.name.removesuffix(".tmpl")))
    return found
