"""`sdt image DIR`: a worker image pinned to this client's versions (the README's "points of mismatch")."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import distribution
from pathlib import Path

from sdt_core.plugs.versions import PYTHON, local_versions

DOCKERFILE = """\
# Worker and scheduler image for sdt-core, written by `sdt image` from the client's versions.
# Build and push:  docker build -t REPOSITORY:TAG {folder} && docker push REPOSITORY:TAG
# Then give it to the plug:  --set image=REPOSITORY:TAG (fargate) or docker_image=... (azure).
FROM python:{python}-slim
COPY requirements.txt /tmp/sdt-image/requirements.txt
COPY wheels/ /tmp/sdt-image/wheels/
RUN pip install --no-cache-dir --find-links /tmp/sdt-image/wheels -r /tmp/sdt-image/requirements.txt \\
 && rm -rf /tmp/sdt-image
# dask-cloudprovider starts `dask-scheduler` and `dask-worker`, which distributed no longer ships.
RUN printf '#!/bin/sh\\nexec dask scheduler "$@"\\n' > /usr/local/bin/dask-scheduler \\
 && printf '#!/bin/sh\\nexec dask worker "$@"\\n' > /usr/local/bin/dask-worker \\
 && chmod +x /usr/local/bin/dask-scheduler /usr/local/bin/dask-worker
"""


@dataclass(frozen=True)
class Image:
    folder: Path
    pins: dict[str, str]
    local_builds: tuple[str, ...]  # distributions installed from a path: their wheels go in wheels/


def _installed_from_path(name: str) -> bool:
    direct = distribution(name).read_text("direct_url.json") or ""
    return bool(direct) and json.loads(direct).get("url", "").startswith("file:")


def write_image(folder: Path, distributions: Iterable[str] = ()) -> Image:
    """Write `folder`/Dockerfile and requirements.txt pinned to this environment's versions."""
    versions = local_versions(distributions)
    python = versions.pop(PYTHON) or "{}.{}".format(*sys.version_info[:2])
    pins = {name: v for name, v in versions.items() if v is not None}
    local = tuple(name for name in pins if _installed_from_path(name))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "wheels").mkdir(exist_ok=True)
    python_minor = ".".join(python.split(".")[:2])
    (folder / "requirements.txt").write_text(
        f"# Pinned by `sdt image` to the client's versions (Python {python_minor}).\n"
        + "".join(f"{name}=={v}\n" for name, v in pins.items())
    )
    (folder / "Dockerfile").write_text(DOCKERFILE.format(python=python_minor, folder=folder))
    return Image(folder, pins, local)
