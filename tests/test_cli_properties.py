"""Any string, given to any setting of the local plug, any option of `sdt run` or of a data plug,
and anything in an output folder's results.jsonl and run.json, gives either a valid run (or
report) or one line and exit 2: never a traceback, never an unexpected error (exit 1).

Driven in-process through `sdt_core.cli.main` (the console script's own error path) with
`--dry-run`, which stops right after everything is checked, before a cluster starts; values
found valid then run for real, a few of them.
"""

from __future__ import annotations

import io
import json
import shutil
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sdt_local import LocalSettings

from sdt_core.cli import main
from sdt_core.output.results import LOG, RUN

DATA = "sample://?systems=2&days=2&real=false"
INVENTORY = "--analysis=sdt_core.analysis:data_inventory"
#: Every declared setting of the local plug, as `--set NAME=...` takes it.
SETTINGS = [s.name for s in LocalSettings.describe()]
#: The core options of `sdt run` that take a value, as OPTION=VALUE.
CORE = ["--limit", "--max-in-flight", "--workers", "--threads", "--memory", "--key-timeout"]
SAMPLE_OPTIONS = ["systems", "days", "lengths", "real"]
PIPELINE = ["fix_shifts", "power_col", "verbose", "solver", "no_such_keyword"]

# Text as users type it: anything printable, plus the forms that tend to break parsers.
TEXT = st.one_of(
    st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=30),
    st.sampled_from(["", "0", "-1", "1e9", "inf", "-inf", "nan", "1_000", "0x10", "2**64", "true", "none", "[]"]),
    st.sampled_from(["{}", '{"a": 1}', "a=b,c", "127.0.0.1:0", ":0", "::1", "0.0.0.0", "999.1.1.1", "localhost"]),
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)


def sdt(*args: str) -> tuple[int, str, str]:
    """`sdt ARGS` in this process: exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    code = 0  # main returned: a command that does not exit
    with redirect_stdout(out), redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return code, out.getvalue(), err.getvalue()


def valid_run_or_one_line(args: list[str]) -> bool:
    """The property; True when the input was valid."""
    code, out, err = sdt("run", "--dry-run", *args)
    assert "Traceback" not in err and "Traceback" not in out, err
    if code == 0:
        assert out.endswith("input valid, nothing started (--dry-run)\n"), out
        return True
    assert code == 2, f"exit {code} for {args}: {err}"
    assert err.startswith("sdt: error: ") and err.count("\n") == 1, f"{args}: {err!r}"
    return False


checks = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@checks
@given(name=st.sampled_from(SETTINGS), text=TEXT)
def test_any_text_for_any_setting_of_the_local_plug(name, text):
    valid_run_or_one_line([DATA, INVENTORY, f"--set={name}={text}"])


@checks
@given(option=st.sampled_from(CORE), text=TEXT)
def test_any_text_for_any_core_option(option, text):
    valid_run_or_one_line([DATA, INVENTORY, f"{option}={text}"])


@checks
@given(key=st.sampled_from(SAMPLE_OPTIONS), text=TEXT)
def test_any_text_for_any_data_option(key, text):
    valid_run_or_one_line([INVENTORY, "--data=sample", f"--data-option={key}={text}", "--data-option=real=false"])


@checks
@given(key=st.sampled_from(PIPELINE), text=TEXT)
def test_any_text_for_any_pipeline_keyword(key, text):
    valid_run_or_one_line([DATA, f"--pipeline={key}={text}"])


@checks
@given(pair=TEXT)
def test_any_text_as_a_set_or_pipeline_pair(pair):
    """KEY=VALUE itself malformed: no '=', empty key, unknown key."""
    for option in ("--set", "--pipeline", "--data-option"):
        valid_run_or_one_line([DATA, f"{option}={pair}"])


@pytest.mark.parametrize(
    "args",
    [
        ["--set=memory=1.0", "--set=threads=1", "--set=workers=1"],
        ["--workers=1", "--threads=1", "--memory=0.75", "--set=host=localhost", "--limit=1"],
    ],
    ids=["set-forms", "options-and-host-name"],
)
def test_values_found_valid_also_run(args, tmp_path, monkeypatch):
    """What the dry run calls valid runs: a real cluster, every key recorded."""
    monkeypatch.chdir(tmp_path)
    every = [DATA, INVENTORY, "--set=dashboard_address=127.0.0.1:0", "--no-report", "--out=out", *args]
    assert valid_run_or_one_line(every)
    code, _, err = sdt("run", *every)
    assert code == 0, err
    keys = [json.loads(line)["key"] for line in (Path("out") / LOG).read_text().splitlines()]
    expected = 1 if "--limit=1" in args else 2
    assert len(keys) == expected and f"{expected} keys: {expected} ok, 0 failed" in err


FILE_OPTIONS = ["ext", "power_column", "timestamp_column", "time_zone", "path"]


@pytest.fixture(scope="module")
def csv_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two systems as CSV files."""
    from sdt_core.dataplugs.sample import write_sample_data

    folder = tmp_path_factory.mktemp("csv")
    write_sample_data(folder, 2, 2)
    return folder


@checks
@given(key=st.sampled_from(FILE_OPTIONS), text=TEXT)
def test_any_text_for_any_option_of_the_file_data_plug(csv_folder, key, text):
    """As --data-option and in DATA's URL query."""
    valid_run_or_one_line([str(csv_folder), INVENTORY, f"--data-option={key}={text}"])
    valid_run_or_one_line([f"file://{csv_folder}?{urlencode({key: text})}", INVENTORY])


# What an output folder holds: any results.jsonl line and any run.json give a report and a
# resume, or one line and exit 2.

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
#: Rows as sdt writes them, with any field changed: the lines most likely to get through.
ROWS = st.fixed_dictionaries(
    {"key": JSON | st.lists(st.text(max_size=8), min_size=1, max_size=2), "status": JSON | st.just("ok")},
    optional={"stage": JSON, "error": JSON, "total_s": JSON},
)
LINES = st.one_of(
    JSON.map(lambda value: json.dumps(value).encode()),
    ROWS.map(lambda row: json.dumps(row).encode()),
    st.binary(max_size=40).filter(lambda b: b"\n" not in b),
)


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The output folder of a finished run of two keys, with its report."""
    out = tmp_path_factory.mktemp("finished") / "out"
    code, _, err = sdt("run", DATA, INVENTORY, f"--out={out}", "--set=dashboard_address=127.0.0.1:0", "--workers=1")
    assert code == 0, err
    return out


def report_or_one_line(folder: Path) -> None:
    code, out, err = sdt("report", str(folder))
    assert "Traceback" not in err and "(unexpected" not in err, err
    assert (code == 0 and out.startswith("Fleet report: ")) or (code == 2 and err.count("\n") == 1), (code, err)


#: Each example writes a fleet report (about a second): fewer of them.
folder_checks = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@folder_checks
@given(lines=st.lists(LINES, min_size=1, max_size=3))
def test_any_lines_in_results_jsonl_give_a_report_or_one_line(finished, tmp_path_factory, lines):
    folder = tmp_path_factory.mktemp("lines") / "out"
    shutil.copytree(finished, folder)
    with (folder / LOG).open("ab") as log:
        log.write(b"\n".join(lines) + b"\n")
    report_or_one_line(folder)
    shutil.rmtree(folder.parent)


@folder_checks
@given(record=st.one_of(JSON.map(lambda v: json.dumps(v).encode()), st.binary(max_size=60)))
def test_any_run_json_gives_a_report_and_a_resume_or_one_line(finished, tmp_path_factory, record):
    """A resume with a run.json that is not this run's is refused before anything starts."""
    folder = tmp_path_factory.mktemp("record") / "out"
    shutil.copytree(finished, folder)
    (folder / RUN).write_bytes(record)
    report_or_one_line(folder)
    code, _, err = sdt("run", DATA, INVENTORY, f"--out={folder}", "--resume", "--no-report")
    assert code == 2 and err.startswith("sdt: error: --resume: ") and err.count("\n") == 1, err
    shutil.rmtree(folder.parent)
