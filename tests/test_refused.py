"""Input that cannot make a good run is refused in one line, exit 2, before a cluster starts:
backend keywords the backend would reject, values no parser can hold, an output folder that
is the data folder or holds what sdt did not write, data options given twice."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sdt_core import run
from sdt_core.output.results import LOG, RUN

from .test_cli_properties import sdt

SMALL = {"workers": 1, "threads": 1, "memory": 1, "dashboard_address": "127.0.0.1:0"}
INVENTORY = "sdt_core.analysis:data_inventory"
DATA = "sample://?systems=2&days=2&real=false"
DEEP = '{"a": ' * 10_000 + "1" + "}" * 10_000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set=protocol=bogus://"], "plug 'local': protocol must be a Dask comm protocol (inproc, tcp, tls"),
        (["--set=interface=nonexistent0"], "plug 'local': interface must be a network interface of this machine ("),
        (["--set=silence_logs=notalevel"], "plug 'local': silence_logs must be a logging level"),
        (["--set=scheduler_port=99999"], "plug 'local': scheduler_port must be a port from 0 (any free one) to 65535"),
        ([f"--set=env={DEEP}"], "plug 'local': env must be a mapping of str to str, got a str"),
        ([f"--set=silence_logs={DEEP}"], "plug 'local': silence_logs must be a logging level"),
        (["--out="], "--out is empty: give the folder for the results"),
        (["--key-timeout=soon"], "--key-timeout (dask config sdt.key-timeout) must be a duration above zero"),
        (["--key-timeout=0"], "--key-timeout (dask config sdt.key-timeout) must be a duration above zero"),
        (["--key-timeout="], "--key-timeout (dask config sdt.key-timeout) must be a duration above zero"),
        (["--rerun=timeout"], "--rerun goes with --resume"),
        (["sample://?days=999999999"], "data plug 'sample': days must be <= 36500, got 999999999"),
        (["data", "--data-option=path=/etc"], "data plug 'file': path is given by DATA (data) and again as an option"),
        (["data", "--out=data"], "--out data is the data folder: a resume would read the run's own files as systems"),
    ],
    ids=[
        "protocol",
        "interface",
        "log-level",
        "port",
        "deep-json",
        "deep-literal",
        "empty-out",
        "key-timeout-word",
        "key-timeout-zero",
        "key-timeout-empty",
        "rerun-without-resume",
        "sample-days",
        "path-twice",
        "out-is-data",
    ],
)
def test_refused_in_one_line_before_anything_starts(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    data = [] if args[0] in ("data", "sample://?days=999999999") else [DATA]
    code, _, err = sdt("run", *data, *args, f"--analysis={INVENTORY}")
    assert (code, err.count("\n")) == (2, 1), err
    assert err.startswith(f"sdt: error: {message}"), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # nothing written


def test_an_empty_file_ending_takes_whole_file_names_as_keys(tmp_path):
    from sdt_core import open_data

    for name in ("a.csv", "b.txt", "c"):
        (tmp_path / name).write_text("x")
    assert sorted(open_data(str(tmp_path), ext="").keys()) == [("a.csv",), ("b.txt",), ("c",)]


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The output folder of a finished run of two keys."""
    out = tmp_path_factory.mktemp("finished") / "out"
    summary = run(DATA, settings=SMALL, out=out, analysis=INVENTORY, report=False)
    assert summary.ok == 2
    return out


A_LIST = 'not a list of plain values such as ["system-1"]'
BAD_LINES = {
    "not-utf8": (b"\xff\xfe not text\n", "line 3 is not UTF-8 text"),
    "a-number": (b"42\n", "line 3 is int JSON, not a row (an object with key and status)"),
    "not-a-row": (b'{"x": 1}\n', f"line 3 has the key 'None', {A_LIST}"),
    "key-as-text": (
        b'{"key": "synthetic-003", "status": "ok"}\n',
        "line 3 has the key 'synthetic-003', not a list of plain values such as [\"system-1\"]",
    ),
}


@pytest.mark.parametrize("case", list(BAD_LINES))
@pytest.mark.parametrize("command", ["resume", "report"])
def test_a_results_line_sdt_did_not_write_is_one_line(finished, tmp_path, monkeypatch, case, command):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(finished, "out")
    line, problem = BAD_LINES[case]
    with (Path("out") / LOG).open("ab") as log:
        log.write(line)
    args = (
        ["run", DATA, f"--analysis={INVENTORY}", "--out=out", "--resume"] if command == "resume" else ["report", "out"]
    )
    code, _, err = sdt(*args)
    assert (code, err.count("\n")) == (2, 1), err
    assert (
        err
        == f"sdt: error: out/{LOG} {problem}: not written by sdt; fix or remove that line, or choose another --out\n"
    )


@pytest.mark.parametrize(
    "content", [b"not json", b"\xff", b"[1, 2]", b"", None], ids=["text", "binary", "list", "empty", "gone"]
)
def test_a_resume_without_a_run_record_is_refused(finished, tmp_path, monkeypatch, content):
    """Without its run.json a folder cannot tell what data its rows are of: a resume with other
    data would mix two data sets in one summary."""
    monkeypatch.chdir(tmp_path)
    shutil.copytree(finished, "out")
    if content is None:
        (Path("out") / RUN).unlink()
    else:
        (Path("out") / RUN).write_bytes(content)
    other = "sample://?systems=3&days=2&real=false"
    code, _, err = sdt("run", other, f"--analysis={INVENTORY}", "--out=out", "--resume")
    assert (code, err.count("\n")) == (2, 1), err
    expected = "holds results but no run.json" if content is None else "run.json is not the record of an sdt run"
    assert expected in err
    assert len((Path("out") / LOG).read_text().splitlines()) == 2  # nothing added
    assert json.loads((finished / RUN).read_text())["data"]["options"]["systems"] == 2
