"""Settings: declared once, validated with one clear line before anything starts."""

from __future__ import annotations

import dask.config
import pytest

from sdt_core import Settings, SettingsError, setting
from sdt_core.plugs.settings import MASK, parse_text, validate


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
    assert str(err.value) == (
        "plug 'demo' has no setting 'workerz'; did you mean 'workers'? settings of plug 'demo': "
        "workers, threads, memory, processes, region, environment, token, or a keyword of "
        "distributed.LocalCluster (see `sdt info demo`)"
    )
    assert "Its settings" not in str(err.value)


def test_a_data_plug_is_called_a_data_plug_with_options():
    from sdt_core import DataPlug

    class Files(DataPlug):
        path: str = setting(".", "A folder.")

    with pytest.raises(SettingsError) as err:
        validate("files", Files, {"pth": "x"})
    assert str(err.value) == (
        "data plug 'files' has no option 'pth'; did you mean 'path'? options of data plug 'files': path "
        "(see `sdt info files`)"
    )


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


def test_text_from_dask_config_environment_variables_is_typed_as_on_the_command_line():
    class Hosts(Settings):
        hosts: list[str] = setting([], "Hosts.")
        labels: dict[str, str] = setting({}, "Labels.")
        image: str | None = setting("x", "An image.")

    environment = {
        "DASK_SDT__HOSTS__HOSTS": "a,b",
        "DASK_SDT__HOSTS__LABELS": "team=pv,site=7",
        "DASK_SDT__HOSTS__IMAGE": "none",
    }
    config = dask.config.collect_env(environment)["sdt"]["hosts"]  # as dask reads them at import
    settings = validate("hosts", Hosts, {}, config)
    assert (settings.hosts, settings.labels, settings.image) == (["a", "b"], {"team": "pv", "site": "7"}, None)


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
        (str | None, "None", None),
        (dict[str, str], '{"A": "1"}', {"A": "1"}),
        (None, "0", 0),
        (None, "True", True),
        (None, "repo/image:1.0", "repo/image:1.0"),
        # lists as a user types them, or JSON
        (list[str], "a,b,c", ["a", "b", "c"]),
        (list[str], "a, b", ["a", "b"]),
        (list[str], "subnet-1", ["subnet-1"]),
        (list[str], "", []),
        (list[str], '["a,b", "c"]', ["a,b", "c"]),
        (list[int], "30,60", [30, 60]),
        (list[str] | None, "a,b", ["a", "b"]),
        (list[str] | None, "none", None),
        # mappings as k=v,k2=v2, or JSON
        (dict[str, str], "A=1,B=x=y", {"A": "1", "B": "x=y"}),
        (dict[str, float], "GPU=1,MEM=0.5", {"GPU": 1.0, "MEM": 0.5}),
        (dict[str, str], "", {}),
        (dict[str, str], "A", "A"),
        # none is None only where None is allowed
        (str, "none", "none"),
        (int, "none", "none"),
        (list[str], "none", ["none"]),
        (int | str, "none", "none"),
        (int | str, "3", 3),
    ],
)
def test_command_line_text_is_parsed_by_declared_type(tp, text, value):
    assert parse_text(tp, text) == value


def test_none_for_a_setting_that_cannot_be_none_is_refused_not_dropped():
    class Hosts(Settings):
        host: str = setting("127.0.0.1", "A host.")
        port: int | str = setting(0, "A port or a service name.")
        tag: int | None = setting(None, "A tag.")

    assert validate("hosts", Hosts, {"host": parse_text(str, "none")}).host == "none"
    assert validate("hosts", Hosts, {"port": parse_text(int | str, "none")}).port == "none"
    assert validate("hosts", Hosts, {"tag": parse_text(int | None, "none")}).tag is None
    with pytest.raises(SettingsError, match="plug 'hosts': tag must be an integer or None, got the string 'x'"):
        validate("hosts", Hosts, {"tag": parse_text(int | None, "x")})


@pytest.mark.parametrize(
    ("tp", "form", "placeholder"),
    [
        (int, "an integer", "INTEGER"),
        (float, "a number", "NUMBER"),
        (bool, "true or false", "BOOLEAN"),
        (str | None, "text, or none", "TEXT"),
        (list[str], "a list: a,b,c or JSON", "A,B,..."),
        (list[str] | None, "a list: a,b,c or JSON, or none", "A,B,..."),
        (dict[str, str], "a mapping: k=v,k2=v2 or JSON", "K=V,..."),
        (int | str, "an integer or text", "VALUE"),
    ],
)
def test_command_line_help_is_derived_from_the_type(tp, form, placeholder):
    from sdt_core.plugs.settings import metavar, text_format

    assert (text_format(tp), metavar(tp)) == (form, placeholder)


def test_dask_config_of_the_plug_is_read_from_sdt_namespace():
    from sdt_core.plugs.discovery import registry

    with dask.config.set({"sdt.local.memory": 1.5}):
        assert registry().settings("local", {}).memory == 1.5
