from pathlib import Path

import pytest

from asterisk_cube.config import ConfigError, load_settings, render_toml


def test_defaults_work_without_a_file(tmp_path):
    s = load_settings(env={"ASTERISK_CUBE_DATA_DIR": str(tmp_path)})
    assert s.database_url == f"sqlite:///{tmp_path / 'cube.db'}"
    assert s.ari.app == "asterisk-cube"
    assert s.source in ("defaults", "/etc/asterisk-cube/cube.toml")


def test_file_then_environment_override(tmp_path):
    cfg = tmp_path / "cube.toml"
    cfg.write_text('[ari]\nurl = "http://pbx:8088"\npassword = "x"\n[ami]\nport = 5039\n')
    env = {"ASTERISK_CUBE_AMI_PORT": "6000", "ASTERISK_CUBE_SMTP_STARTTLS": "yes"}
    s = load_settings(cfg, env=env)
    assert s.ari.url == "http://pbx:8088"
    assert s.ari.password == "x"
    assert s.ami.port == 6000  # env wins over the file
    assert s.smtp.starttls is True
    assert s.source == str(cfg)


def test_round_trip_through_render_toml(tmp_path):
    s = load_settings(
        env={"ASTERISK_CUBE_WEB_PORT": "9999", "ASTERISK_CUBE_DATA_DIR": str(tmp_path)}
    )
    cfg = tmp_path / "out.toml"
    cfg.write_text(render_toml(s))
    again = load_settings(cfg, env={})
    assert again.web.port == 9999
    assert again.data_dir == Path(tmp_path)


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("[ami]\nport = 70000\n", {}, "ami.port must be a port number"),
        ("[ami]\nport = 'abc'\n", {}, "ami.port must be an integer"),
        ("[ari]\nurl = 5\n", {}, "ari.url must be a string"),
        ("[nope]\nx = 1\n", {}, "unknown section [nope]"),
        ("[web]\nbogus = 1\n", {}, "unknown setting web.bogus"),
        ("[web\n", {}, "not valid TOML"),
        ("", {"ASTERISK_CUBE_SMTP_STARTTLS": "maybe"}, "smtp.starttls must be true or false"),
    ],
)
def test_bad_config_names_the_setting(tmp_path, text, env, message):
    cfg = tmp_path / "cube.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        load_settings(cfg, env=env)


def test_missing_explicit_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "absent.toml", env={})
