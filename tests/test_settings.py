"""Settings: declared once, validated with one clear line before anything starts."""

from __future__ import annotations

import dask.config
import pytest

from sdt_core import Settings, SettingsError, setting
from sdt_core.settings import MASK, parse_text, validate


class DemoSettings(Settings):
    passthrough = ("distributed:LocalCluster",)
    reserved = {"n_workers": "workers"}

    processes: bool = setting(True, "Worker processes.")
    region: str | None = setting(None, "A region.", choices=("east", "west", None))
    environment: dict[str, str] = setting({}, "Worker environment.", secret=True)
    token: str | None = setting(None, "An API token.", secret=True)


def check(values, config=None):
    return validate("demo", DemoSettings, values, config)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"workers": 0}, "plug 'demo': workers must be >= 1, got 0"),
        ({"memory": -1}, "plug 'demo': memory must be > 0, got -1.0"),
        ({"threads": "two"}, "plug 'demo': threads must be an integer, got the string 'two'"),
        ({"threads": 1.5}, "plug 'demo': threads must be an integer, got 1.5 (float)"),
        ({"workers": True}, "plug 'demo': workers must be an integer, got True (bool)"),
        ({"processes": "False"}, "plug 'demo': processes must be True or False, got the string 'False'"),
        ({"region": "north"}, "plug 'demo': region must be one of 'east', 'west', None, got 'north'"),
        ({"environment": ["A=1"]}, "plug 'demo': environment must be a mapping of str to str, got a list"),
        (
            {"n_workers": 3},
            "plug 'demo': n_workers is set from the setting 'workers'; give workers=... instead",
        ),
    ],
)
def test_bad_value_gives_one_clear_line(values, message):
    with pytest.raises(SettingsError) as err:
        check(values)
    assert str(err.value) == message
    assert "\n" not in str(err.value)


def test_unknown_setting_lists_valid_ones_and_suggests():
    with pytest.raises(SettingsError) as err:
        check({"workerz": 3})
    msg = str(err.value)
    assert msg.startswith("plug 'demo' has no setting 'workerz'; did you mean 'workers'?")
    assert "workers, threads, memory, processes, region, environment, token" in msg
    assert "distributed.LocalCluster" in msg and "sdt info demo" in msg


def test_backend_keyword_passes_through_unchecked():
    settings = check({"scheduler_port": 0, "silence_logs": 40})
    assert settings.extra == {"scheduler_port": 0, "silence_logs": 40}


def test_no_passthrough_means_every_unknown_key_is_an_error():
    class Closed(Settings):
        pass

    with pytest.raises(SettingsError, match="has no setting 'image'"):
        validate("closed", Closed, {"image": "x"})


def test_defaults_dask_config_and_arguments_in_that_order():
    assert check({}).workers == 2
    assert check({}, config={"workers": 3}).workers == 3
    assert check({"workers": 4}, config={"workers": 3}).workers == 4
    assert check({}, config={"workers": 3}).given == {"workers"}
    with pytest.raises(SettingsError, match=r"workers \(from dask config sdt.demo\) must be >= 1"):
        check({}, config={"workers": 0})


def test_int_is_accepted_for_float_and_stored_as_float():
    assert check({"memory": 2}).memory == 2.0
    assert isinstance(check({"memory": 2}).memory, float)


def test_override_keeps_help_and_bounds():
    class Bigger(Settings):
        workers: int = Settings.override("workers", 5)

    (workers,) = [s for s in Bigger.describe() if s.name == "workers"]
    assert workers.default == 5 and workers.help == "Number of workers."
    with pytest.raises(SettingsError, match=">= 1"):
        validate("bigger", Bigger, {"workers": 0})


def test_describe_gives_name_type_default_help():
    info = {s.name: s for s in DemoSettings.describe()}
    assert (info["memory"].type, info["memory"].default) == ("float", 6.0)
    assert info["region"].type == "str | None"
    assert info["environment"].type == "dict[str, str]" and info["environment"].secret


def test_secrets_never_appear_in_repr_or_public_dict():
    settings = check({"environment": {"AWS_SECRET_ACCESS_KEY": "s3cr3t-env"}, "token": "s3cr3t-token"})
    settings.extra["aws_secret_access_key"] = "s3cr3t-extra"
    shown = repr(settings) + str(settings.public_dict())
    assert "s3cr3t" not in shown
    assert settings.public_dict()["environment"] == {"AWS_SECRET_ACCESS_KEY": MASK}
    assert settings.environment["AWS_SECRET_ACCESS_KEY"] == "s3cr3t-env"


def test_wrong_type_of_a_secret_does_not_echo_it():
    with pytest.raises(SettingsError) as err:
        check({"token": 12345678})
    assert "12345678" not in str(err.value)


@pytest.mark.parametrize(
    ("tp", "text", "value"),
    [
        (int, "3", 3),
        (int, "three", "three"),
        (float, "1.5", 1.5),
        (bool, "false", False),
        (bool, "yes", True),
        (bool | None, "none", None),
        (str | None, "east", "east"),
        (dict[str, str], '{"A": "1"}', {"A": "1"}),
        (None, "0", 0),
        (None, "True", True),
        (None, "repo/image:1.0", "repo/image:1.0"),
    ],
)
def test_command_line_text_is_parsed_by_declared_type(tp, text, value):
    assert parse_text(tp, text) == value


def test_dask_config_of_the_plug_is_read_from_sdt_namespace():
    from sdt_core.plugins import registry

    with dask.config.set({"sdt.local.memory": 1.5}):
        assert registry().settings("local", {}).memory == 1.5
