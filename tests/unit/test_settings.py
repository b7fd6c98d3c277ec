"""Settings precedence, coercion, credentials from env/_FILE/TOML, and secrets kept out of reprs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shared.credentials import Credentials
from shared.settings import Settings, SettingsError, load_settings

SECRET = "s3cr3t-value-9f8e"
PASSPHRASE = "pass-phrase-7d6c"
CREDENTIAL_ENV = {"TRIDENT_API_KEY": "key-1234", "TRIDENT_API_SECRET": SECRET, "TRIDENT_API_PASSPHRASE": PASSPHRASE}


def write_toml(tmp_path: Path, text: str) -> str:
    path = tmp_path / "trident.toml"
    path.write_text(text)
    return str(path)


def test_defaults() -> None:
    settings = load_settings({})
    assert settings == Settings()
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.socket_path == "/run/trident/signals.sock"
    assert settings.workers == (os.cpu_count() or 1)
    assert (settings.mode, settings.fill_model, settings.max_frame_bytes) == ("paper", "depth", 1 << 20)
    assert (settings.report_stream, settings.report_maxlen) == ("trident:reports", 100_000)
    assert (settings.lease_ttl_ms, settings.keepalive_s, settings.http_timeout_s) == (30_000, 15.0, 10.0)
    assert (settings.log_level, settings.log_file, settings.credentials) == ("info", None, None)


def test_precedence_override_then_env_then_file_then_default(tmp_path: Path) -> None:
    config = write_toml(tmp_path, 'workers = 3\nmode = "live"\nredis_url = "redis://file/1"\nkeepalive_s = 5\n')
    env = {"TRIDENT_WORKERS": "5", "TRIDENT_MODE": "paper"}
    settings = load_settings(env, config_file=config, workers=7, mode=None)
    assert settings.workers == 7  # override
    assert settings.mode == "paper"  # env beats file; a None override is ignored
    assert settings.redis_url == "redis://file/1"  # file beats default
    assert settings.keepalive_s == 5.0 and isinstance(settings.keepalive_s, float)
    assert settings.report_stream == "trident:reports"  # default


def test_config_path_from_env(tmp_path: Path) -> None:
    config = write_toml(tmp_path, 'fill_model = "top"\n')
    assert load_settings({"TRIDENT_CONFIG": config}).fill_model == "top"


def test_env_strings_are_coerced() -> None:
    settings = load_settings(
        {"TRIDENT_WORKERS": "4", "TRIDENT_HTTP_TIMEOUT_S": "2.5", "TRIDENT_LOG_LEVEL": "DEBUG", "TRIDENT_LOG_FILE": "/tmp/t.log"}
    )
    assert (settings.workers, settings.http_timeout_s, settings.log_level, settings.log_file) == (4, 2.5, "debug", "/tmp/t.log")


def test_empty_env_values_count_as_unset() -> None:
    assert load_settings({"TRIDENT_WORKERS": "", "TRIDENT_API_KEY": ""}).workers == Settings().workers


def test_routing_settings() -> None:
    assert (Settings().routing, Settings().shard_spill) == ("least_loaded", 2)
    settings = load_settings({"TRIDENT_ROUTING": "Shard", "TRIDENT_SHARD_SPILL": "3"})
    assert (settings.routing, settings.shard_spill) == ("shard", 3)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"TRIDENT_WORKERS": "many"}, "workers"),
        ({"TRIDENT_WORKERS": "-1"}, "workers"),
        ({"TRIDENT_WORKERS": "2.5"}, "workers"),
        ({"TRIDENT_MODE": "yolo"}, "mode"),
        ({"TRIDENT_FILL_MODEL": "magic"}, "fill_model"),
        ({"TRIDENT_KEEPALIVE_S": "soon"}, "keepalive_s"),
        ({"TRIDENT_HTTP_TIMEOUT_S": "-1"}, "http_timeout_s"),
        ({"TRIDENT_HTTP_TIMEOUT_S": "nan"}, "http_timeout_s"),
        ({"TRIDENT_LOG_LEVEL": "loud"}, "log_level"),
        ({"TRIDENT_MAX_FRAME_BYTES": "-5"}, "max_frame_bytes"),
        ({"TRIDENT_ROUTING": "random"}, "routing"),
        ({"TRIDENT_SHARD_SPILL": "0"}, "shard_spill"),
    ],
)
def test_invalid_values_name_the_setting(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        load_settings(env)


def test_invalid_toml_types_and_unknown_keys(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="workers"):
        load_settings({}, config_file=write_toml(tmp_path, "workers = 2.5\n"))
    with pytest.raises(SettingsError, match="wrokers"):
        load_settings({}, config_file=write_toml(tmp_path, "wrokers = 2\n"))
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings({}, config_file=write_toml(tmp_path, "workers = \n"))
    with pytest.raises(SettingsError, match="cannot read"):
        load_settings({}, config_file=str(tmp_path / "absent.toml"))


def test_unknown_override_is_an_error() -> None:
    with pytest.raises(SettingsError, match="wrokers"):
        load_settings({}, wrokers=2)


def test_credentials_from_env() -> None:
    settings = load_settings({**CREDENTIAL_ENV, "TRIDENT_API_KEY_VERSION": "3"})
    assert settings.credentials == Credentials("key-1234", SECRET, PASSPHRASE, key_version=3)


def test_credentials_from_files_are_stripped(tmp_path: Path) -> None:
    secret_file, passphrase_file = tmp_path / "secret", tmp_path / "passphrase"
    secret_file.write_text(SECRET + "\n")
    passphrase_file.write_text(f"  {PASSPHRASE}\n")
    env = {
        "TRIDENT_API_KEY": "key-1234",
        "TRIDENT_API_SECRET_FILE": str(secret_file),
        "TRIDENT_API_PASSPHRASE_FILE": str(passphrase_file),
    }
    assert load_settings(env).credentials == Credentials("key-1234", SECRET, PASSPHRASE)


def test_unreadable_credential_file_names_the_variable(tmp_path: Path) -> None:
    env = {**CREDENTIAL_ENV, "TRIDENT_API_SECRET": "", "TRIDENT_API_SECRET_FILE": str(tmp_path / "missing")}
    with pytest.raises(SettingsError, match="TRIDENT_API_SECRET_FILE"):
        load_settings(env)


def test_credentials_from_toml_and_env_wins(tmp_path: Path) -> None:
    config = write_toml(tmp_path, f'api_key = "file-key"\napi_secret = "{SECRET}"\napi_passphrase = "{PASSPHRASE}"\n')
    assert load_settings({}, config_file=config).credentials == Credentials("file-key", SECRET, PASSPHRASE)
    assert load_settings({"TRIDENT_API_KEY": "env-key"}, config_file=config).credentials.api_key == "env-key"  # type: ignore[union-attr]


@pytest.mark.parametrize("missing", ["TRIDENT_API_KEY", "TRIDENT_API_SECRET", "TRIDENT_API_PASSPHRASE"])
def test_partial_credentials_name_what_is_missing_without_values(missing: str) -> None:
    env = {k: v for k, v in CREDENTIAL_ENV.items() if k != missing}
    with pytest.raises(SettingsError) as caught:
        load_settings(env)
    message = str(caught.value)
    assert missing in message
    assert SECRET not in message and PASSPHRASE not in message


def test_bad_key_version_is_refused() -> None:
    with pytest.raises(SettingsError, match="api_key_version"):
        load_settings({**CREDENTIAL_ENV, "TRIDENT_API_KEY_VERSION": "7"})


def test_credentials_override_wins() -> None:
    credentials = Credentials("override", "x" * 8, "y" * 8)
    assert load_settings(CREDENTIAL_ENV, credentials=credentials).credentials is credentials


def test_repr_hides_secrets() -> None:
    settings = load_settings(CREDENTIAL_ENV)
    text = repr(settings) + str(settings)
    assert SECRET not in text and PASSPHRASE not in text
    assert "credentials=Credentials(" in text


def test_settings_are_frozen() -> None:
    with pytest.raises(AttributeError):
        Settings().workers = 3  # type: ignore[misc]


def test_unknown_trident_variables_are_named_with_the_nearest_setting_and_known_ones_are_not() -> None:
    from shared.settings import unknown_env_warnings  # noqa: PLC0415

    env = {"TRIDENT_REDIS_URl": "x", "TRIDENT_SOCKET": "/tmp/s", "TRIDENT_API_KEY_FILE": "/k",
           "TRIDENT_RUN_DIR": "/tmp", "TRIDENT_CONFIG": "a.toml", "TRIDENT_WORKERS": "2", "TRIDENT_ZZZZZZ": "1",
           "PATH": "/bin"}
    lines = unknown_env_warnings(env)
    assert len(lines) == 2
    assert "TRIDENT_REDIS_URl" in lines[0] and "did you mean TRIDENT_REDIS_URL?" in lines[0]
    assert "TRIDENT_ZZZZZZ" in lines[1] and "no setting has a similar name" in lines[1]
