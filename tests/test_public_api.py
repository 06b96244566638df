"""The public API: what a plug needs is importable from `sdt_core`; nothing a plug imports is private."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import sdt_core
import sdt_core.testing

from .conftest import REPO
from .test_docs import DOCS, code_blocks

#: The public modules and their names; everything else in sdt_core is private.
PUBLIC = {
    "sdt_core": set(sdt_core.__all__),
    "sdt_core.testing": set(getattr(sdt_core.testing, "__all__", ())),
    "sdt_core.cli": {"cli", "main"},
}


def plug_sources(scratch: Path) -> dict[str, str]:
    """The Python a plug author writes: the built-in plugs and their tests, the example, the
    walk-throughs' files, and what `sdt new-plug` writes."""
    from sdt_core.plugs.template import write_plug

    sources = {str(p.relative_to(REPO)): p.read_text() for p in REPO.glob("plugins/*/**/*.py")}
    sources |= {str(p.relative_to(REPO)): p.read_text() for p in REPO.glob("examples/**/*.py")}
    sources |= {f"new-plug: {p.name}": p.read_text() for p in write_plug("probe", scratch) if p.suffix == ".py"}
    for page in DOCS.glob("*.md"):
        for block in code_blocks(page.read_text()):
            if block.lang == "python":
                sources[f"{page.name}:{block.line}"] = block.body
    return sources


def private_imports(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "sdt_core":
            public = PUBLIC.get(node.module or "")
            found += [f"{node.module}.{a.name}" for a in node.names if public is None or a.name not in public]
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("sdt_core.") and a.name not in PUBLIC]
    return found


def test_nothing_a_plug_imports_is_private(tmp_path):
    sources = plug_sources(tmp_path / "sdt-probe")
    assert len(sources) > 20 and any(".md:" in name for name in sources)  # the docs' blocks are among them
    assert any(name.startswith("new-plug") for name in sources)
    plugins = {path.name for path in (REPO / "plugins").iterdir() if (path / "pyproject.toml").exists()}
    assert {Path(name).parts[1] for name in sources if name.startswith("plugins/")} == plugins  # every built-in plug
    assert {"sdt-address", "sdt-ssh", "sdt-slurm", "sdt-gateway"} <= plugins
    for plug in sorted(plugins):  # every built-in plug, its tests too
        assert any(name.startswith(f"plugins/{plug}/tests/") for name in sources), plug

    private = {name: found for name, source in sources.items() if (found := private_imports(source))}
    assert private == {}


def test_the_check_finds_private_imports():
    source = "from sdt_core.plan import ClusterPlan\nfrom sdt_core import get_plug\nimport sdt_core.plugins\n"
    assert private_imports(source) == ["sdt_core.plan.ClusterPlan", "sdt_core.plugins"]


@pytest.mark.parametrize("name", sorted(PUBLIC["sdt_core"]))
def test_every_public_name_is_importable_from_sdt_core(name):
    assert getattr(sdt_core, name) is not None
    assert name in dir(sdt_core)


def test_cluster_plan_and_its_parts_are_exported():
    from sdt_core import ClusterPlan, Machines, Prices

    plan = ClusterPlan(
        plug="p",
        machines=(Machines("workers", 2, "VM", 4, 16, 0.5),),
        image=None,
        where="here",
        network="private",
        tls=True,
        prices=Prices(taken="2026-11-25", source="a price page", where="here"),
    )
    assert plan.cost_per_hour == 1.0


def test_a_plan_without_prices_is_not_shaped_like_a_cloud():
    from sdt_core import ClusterPlan, Machines

    plan = ClusterPlan(
        plug="p",
        machines=(Machines("workers", 2, "batch job", 4, 16, None),),
        image=None,
        where=None,
        network="this machine only",
        tls=False,
        texts=(("Job script", "#!/bin/sh\n\nrun worker\n"),),
    )
    assert str(plan).splitlines() == [
        "Plan for plug 'p' (nothing has been created)",
        "  workers: 2 x batch job, 4 vCPU, 16 GiB",
        "  network: this machine only",
        "  TLS: OFF: traffic between client, scheduler and workers is unencrypted",
        "Job script:",
        "  #!/bin/sh",
        "",
        "  run worker",
    ]
    assert plan.cost_per_hour is None and plan.to_dict()["prices"] is None


def test_importing_the_plug_authors_api_imports_no_backend():
    code = textwrap.dedent(
        """
        import json, sys
        import sdt_core
        from sdt_core import ClusterPlan, DataPlug, list_plugs
        list_plugs()
        heavy = {"dask", "distributed", "pandas", "numpy", "boto3", "dask_cloudprovider", "solardatatools"}
        print(json.dumps(sorted(heavy & {m.split(".")[0] for m in sys.modules})))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == []
