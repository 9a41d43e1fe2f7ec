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


# --------------------------------------------------------------------- [dialer]


def test_dialer_defaults_are_the_dialers_own(tmp_path):
    from asterisk_cube.dialer.service import Dialer, dialer_options

    s = load_settings(env={"ASTERISK_CUBE_DATA_DIR": str(tmp_path)})
    d = s.dialer
    assert (d.step_interval, d.reload_interval, d.ring_timeout, d.agent_ring_timeout) == (
        0.1,
        2.0,
        25.0,
        20.0,
    )
    assert (d.abandon_seconds, d.abandon_message) == (2.0, "sound:asterisk-cube/formal/sorry")
    # every option the settings give is a Dialer keyword with that same default
    import inspect

    params = inspect.signature(Dialer).parameters
    for key, value in dialer_options(d).items():
        assert params[key].default == value, key


def test_dialer_from_file_and_environment(tmp_path):
    cfg = tmp_path / "cube.toml"
    cfg.write_text(
        "[dialer]\nring_timeout = 30\nabandon_seconds = 1.5\n"
        'abandon_message = "sound:custom/abandon"\nhistory_days = 7\n'
    )
    env = {
        "ASTERISK_CUBE_DIALER_AGENT_RING_TIMEOUT": "12.5",
        "ASTERISK_CUBE_DIALER_RING_TIMEOUT": "28",
    }
    d = load_settings(cfg, env=env).dialer
    assert d.ring_timeout == 28.0 and isinstance(d.ring_timeout, float)  # env wins
    assert (d.agent_ring_timeout, d.abandon_seconds, d.history_days) == (12.5, 1.5, 7)
    assert d.abandon_message == "sound:custom/abandon"


def test_dialer_settings_reach_the_runtimes_dialer(tmp_path, monkeypatch):
    from asterisk_cube import wiring
    from asterisk_cube.db.session import upgrade

    made = []

    class Recorder(wiring.Dialer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(wiring, "Dialer", Recorder)
    env = {
        "ASTERISK_CUBE_DATA_DIR": str(tmp_path),
        "ASTERISK_CUBE_DIALER_RING_TIMEOUT": "31",
        "ASTERISK_CUBE_DIALER_ABANDON_SECONDS": "1.8",
        "ASTERISK_CUBE_DIALER_STEP_INTERVAL": "0.25",
        "ASTERISK_CUBE_DIALER_ABANDON_MESSAGE": "sound:custom/abandon",
    }
    settings = load_settings(env=env)
    upgrade(settings.database_url)
    wiring.build_runtime(settings, install_signal_handlers=False)
    (dialer,) = made
    assert (dialer.ring_timeout, dialer.connect_budget, dialer.tick) == (31.0, 1.8, 0.25)
    assert dialer.abandon_media == "sound:custom/abandon"


def test_dialer_round_trips_through_render_toml(tmp_path):
    s = load_settings(
        env={"ASTERISK_CUBE_DATA_DIR": str(tmp_path), "ASTERISK_CUBE_DIALER_ABANDON_SECONDS": "1.5"}
    )
    text = render_toml(s)
    assert "[dialer]\nstep_interval = 0.1\n" in text
    cfg = tmp_path / "out.toml"
    cfg.write_text(text)
    assert load_settings(cfg, env={}).dialer == s.dialer


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        (
            "[dialer]\nring_timeout = 'long'\n",
            {},
            "dialer.ring_timeout must be a number, got 'long'",
        ),
        ("[dialer]\nring_timeout = true\n", {}, "dialer.ring_timeout must be a number"),
        ("[dialer]\nring_timeout = nan\n", {}, "dialer.ring_timeout must be a number"),
        (
            "[dialer]\nring_timeout = 0\n",
            {},
            "dialer.ring_timeout must be between 1 and 300, got 0",
        ),
        (
            "[dialer]\nabandon_seconds = 12\n",
            {},
            "dialer.abandon_seconds must be between 0.5 and 10",
        ),
        ("[dialer]\nstep_interval = -1\n", {}, "dialer.step_interval must be between"),
        ("[dialer]\nhistory_days = 2.5\n", {}, "dialer.history_days must be an integer"),
        ("[dialer]\nhistory_days = 400\n", {}, "dialer.history_days must be between 0 and 366"),
        (
            "[dialer]\nabandon_message = 'sorry.wav'\n",
            {},
            "dialer.abandon_message must be an ARI media URI",
        ),
        (
            "[dialer]\nmin_agent_time = 1.5\nabandon_seconds = 1.5\n",
            {},
            r"dialer.min_agent_time \(1.5\) must be less than dialer.abandon_seconds \(1.5\)",
        ),
        ("[dialer]\ntick = 0.1\n", {}, "unknown setting dialer.tick"),
        (
            "",
            {"ASTERISK_CUBE_DIALER_AGENT_RING_TIMEOUT": "soon"},
            "dialer.agent_ring_timeout must be a number",
        ),
        (
            "",
            {"ASTERISK_CUBE_DIALER_FAIR_ANSWER_TIME": "-0.5"},
            "dialer.fair_answer_time must be between 0 and 10, got -0.5",
        ),
    ],
)
def test_bad_dialer_setting_names_it(tmp_path, text, env, message):
    cfg = tmp_path / "cube.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_settings(cfg, env=env)
