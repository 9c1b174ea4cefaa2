"""Configuration: typed options, errors naming the option, the sample."""
from __future__ import annotations

import pytest

from stratus import conf as conf_mod
from stratus.exception import ConfigError


def write(tmp_path, text):
    path = tmp_path / "stratus.conf"
    path.write_text(text)
    return str(path)


def test_values_are_typed_and_defaults_derived(tmp_path):
    conf = conf_mod.load(write(tmp_path, "[DEFAULT]\nstate_path = %s\nreport_interval = 2.5\n"
                               "[api]\nport = 9000\n[fake]\ndelay = 0.1\n" % tmp_path))
    assert conf.DEFAULT.report_interval == 2.5 and conf.api.port == 9000
    assert conf.fake.delay == 0.1 and conf.host == conf.DEFAULT.host
    assert conf.database.connection == f"sqlite:///{tmp_path}/stratus.sqlite"
    assert conf.api.public_url == "http://127.0.0.1:9000"


@pytest.mark.parametrize("text, named", [
    ("[api]\nport = eighty\n", "[api] port"),
    ("[api]\nport = 70000\n", "[api] port"),
    ("[DEFAULT]\ndebug = maybe\n", "[DEFAULT] debug"),
    ("[notifications]\ndriver = carrier-pigeon\n", "[notifications] driver"),
    ("[api]\nno_such_option = 1\n", "[api] no_such_option"),
    ("[nosuchsection]\na = 1\n", "[nosuchsection]"),
])
def test_bad_values_name_the_option(tmp_path, text, named):
    with pytest.raises(ConfigError) as err:
        conf_mod.load(write(tmp_path, text))
    assert named in str(err.value)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        conf_mod.load(str(tmp_path / "nope.conf"))


def test_sample_lists_every_option_and_parses_back(tmp_path):
    text = conf_mod.sample_text()
    for group, opts in conf_mod.REGISTRY.items():
        assert f"[{group}]" in text
        for opt in opts:
            assert f"#{opt.name} = " in text
    conf_mod.load(write(tmp_path, text))  # all commented out: loads as defaults
