"""Settings: environment and TOML file, every failure names the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.runtime.settings import REPO, ConfigError, describe, load_settings

GOOD_ENV = {
    "DINGTALK_CLIENT_ID": "dingappkey",
    "DINGTALK_CLIENT_SECRET": "s3cret-value-never-logged",
    "BOT_COMPLIANCE_CONVERSATION_ID": "cidCompliance==",
}


def test_environment_alone_is_enough_when_the_required_settings_are_set() -> None:
    settings = load_settings(GOOD_ENV)
    assert settings.client_id == "dingappkey"
    assert settings.openapi_endpoint == "https://api.dingtalk.com"
    assert settings.redis_url is None  # embedded state
    assert settings.effective_robot_code == "dingappkey"
    assert settings.replica_id


@pytest.mark.parametrize(
    "missing", ["DINGTALK_CLIENT_ID", "DINGTALK_CLIENT_SECRET", "BOT_COMPLIANCE_CONVERSATION_ID"]
)
def test_start_up_names_the_setting_when_a_required_one_is_missing(missing: str) -> None:
    env = {k: v for k, v in GOOD_ENV.items() if k != missing}
    with pytest.raises(ConfigError) as caught:
        load_settings(env)
    assert caught.value.setting == missing
    assert missing in str(caught.value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DINGTALK_OPENAPI_ENDPOINT", "ftp://api.dingtalk.com"),
        ("DINGTALK_OPENAPI_ENDPOINT", "https://api.dingtalk.com/v1.0"),
        ("BOT_REDIS_URL", "http://127.0.0.1:6379"),
        ("BOT_COMPLIANCE_CONVERSATION_ID", "cid with spaces"),
        ("BOT_INGEST_TOKEN", "short"),
        ("BOT_HTTP_PORT", "eighty"),
        ("BOT_RULES_DIR", "/nonexistent/rules"),
        ("BOT_LOG_LEVEL", "chatty"),
    ],
)
def test_start_up_names_the_setting_when_a_value_is_wrong(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({**GOOD_ENV, name: value})
    assert caught.value.setting == name


def test_config_file_sets_the_rest_and_rejects_unknown_keys(tmp_path: Path) -> None:
    config = tmp_path / "bot.toml"
    config.write_text(
        "[http]\nport = 9000\n[notify]\nwarn_interval_seconds = 30\n[queue]\nmax_depth = 50\n",
        encoding="utf-8",
    )
    settings = load_settings({**GOOD_ENV, "BOT_CONFIG": str(config)})
    assert settings.http_port == 9000
    assert settings.warn_interval_seconds == 30.0
    assert settings.queue_max_depth == 50

    config.write_text("[notify]\nwarn_interval = 30\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(GOOD_ENV, config)
    assert caught.value.setting == "notify.warn_interval"

    config.write_text("[queue]\nmax_depth = -1\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_settings(GOOD_ENV, config)
    assert caught.value.setting == "queue.max_depth"

    config.write_text("[queue\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(GOOD_ENV, config)


def test_the_shipped_example_config_is_valid() -> None:
    settings = load_settings(GOOD_ENV, REPO / "docs" / "bot.example.toml")
    assert settings.rules_dir.is_dir()


def test_secrets_never_appear_in_repr_or_the_logged_settings() -> None:
    settings = load_settings(
        {
            **GOOD_ENV,
            "BOT_INGEST_TOKEN": "ingest-token-0123456789",
            "BOT_REDIS_URL": "redis://:pw@h:1/0",
        }
    )
    for text in (repr(settings), str(describe(settings))):
        assert "s3cret-value-never-logged" not in text
        assert "ingest-token-0123456789" not in text
        assert "pw" not in text.replace("password", "")
    assert describe(settings)["client_secret"] == "set"  # noqa: S105
