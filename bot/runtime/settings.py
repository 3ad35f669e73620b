"""Settings for `python -m bot run`: secrets and endpoints from the environment, the rest TOML."""

from __future__ import annotations

import os
import socket
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bot.engine.resources import PROJECT_ROOT
from bot.infra.errors import ConfigError

DEFAULT_ENDPOINT = "https://api.dingtalk.com"
__all__ = ["ConfigError", "Settings", "describe", "load_settings", "validate"]
REPO = PROJECT_ROOT


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the bot runtime needs; secrets are kept out of ``repr``."""

    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    openapi_endpoint: str = DEFAULT_ENDPOINT
    compliance_conversation_id: str = ""
    redis_url: str | None = field(default=None, repr=False)  # may carry a password
    ingest_token: str | None = field(default=None, repr=False)
    # [bot]
    rules_dir: Path = REPO / "rules"
    data_dir: Path = Path("var")
    replica_id: str = ""
    robot_code: str = (
        ""  # app robots: the robotCode equals the AppKey unless DingTalk says otherwise
    )
    key_prefix: str = "dtbot"
    log_level: str = "INFO"
    # [http]
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    # [stream]
    stream_enabled: bool = True
    reconnect_max_seconds: float = 30.0
    # [queue]
    queue_max_depth: int = 10_000
    max_in_flight: int = 1_000
    claim_idle_seconds: float = 120.0
    max_attempts: int = 5
    accept_timeout_seconds: float = 2.0
    # [dedupe]
    dedupe_ttl_seconds: int = 7 * 24 * 3600
    # [outbound]
    outbound_timeout_seconds: float = 5.0
    outbound_attempts: int = 4
    backoff_base_seconds: float = 0.25
    backoff_max_seconds: float = 8.0
    webhook_hosts: tuple[str, ...] = ("oapi.dingtalk.com",)
    # [notify]
    warn_interval_seconds: float = 10.0
    escalation_interval_seconds: float = 10.0
    repost_redacted: bool = True
    # [rules]
    rules_poll_seconds: float = 2.0
    rules_ner: bool = True  # name detection (spaCy + name lexicons), loaded once, kept on reload
    # [shutdown]
    drain_seconds: float = 20.0
    # [audit]
    audit_sink: str = "file"  # file: this replica's archive | redis: shared stream | none
    audit_archiver: bool = False  # with sink=redis: this replica chains the stream into its file

    @property
    def effective_robot_code(self) -> str:
        """The robotCode for groupMessages/send (defaults to the client id)."""
        return self.robot_code or self.client_id

    @property
    def allowed_webhook_hosts(self) -> frozenset[str]:
        """Hosts a sessionWebhook may point at: DingTalk's, plus the configured endpoint's."""
        host = urlsplit(self.openapi_endpoint).netloc
        return frozenset((*self.webhook_hosts, host))


# (section, key) in the TOML file -> (Settings attribute, parser)
_Parser = Callable[[str, Any], Any]


def _positive_int(name: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ConfigError(name, f"expected a positive integer, got {value!r}")
    return value


def _port(name: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 65535:
        raise ConfigError(name, f"expected a port number 0-65535, got {value!r}")
    return value


def _positive_float(name: str, value: Any) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        raise ConfigError(name, f"expected a positive number, got {value!r}")
    return float(value)


def _bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(name, f"expected true or false, got {value!r}")
    return value


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(name, f"expected a non-empty string, got {value!r}")
    return value.strip()


def _path(name: str, value: Any) -> Path:
    return Path(_text(name, value))


def _hosts(name: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(name, f"expected a list of host names, got {value!r}")
    return tuple(value)


def _audit_sink(name: str, value: Any) -> str:
    if value not in {"file", "redis", "none"}:
        raise ConfigError(name, f'expected "file", "redis" or "none", got {value!r}')
    return str(value)


def _log_level(name: str, value: Any) -> str:
    level = _text(name, value).upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ConfigError(name, f"expected DEBUG, INFO, WARNING or ERROR, got {value!r}")
    return level


FILE_KEYS: dict[tuple[str, str], tuple[str, _Parser]] = {
    ("bot", "rules_dir"): ("rules_dir", _path),
    ("bot", "data_dir"): ("data_dir", _path),
    ("bot", "replica_id"): ("replica_id", _text),
    ("bot", "robot_code"): ("robot_code", _text),
    ("bot", "key_prefix"): ("key_prefix", _text),
    ("bot", "log_level"): ("log_level", _log_level),
    ("http", "host"): ("http_host", _text),
    ("http", "port"): ("http_port", _port),
    ("stream", "enabled"): ("stream_enabled", _bool),
    ("stream", "reconnect_max_seconds"): ("reconnect_max_seconds", _positive_float),
    ("queue", "max_depth"): ("queue_max_depth", _positive_int),
    ("queue", "max_in_flight"): ("max_in_flight", _positive_int),
    ("queue", "claim_idle_seconds"): ("claim_idle_seconds", _positive_float),
    ("queue", "max_attempts"): ("max_attempts", _positive_int),
    ("queue", "accept_timeout_seconds"): ("accept_timeout_seconds", _positive_float),
    ("dedupe", "ttl_seconds"): ("dedupe_ttl_seconds", _positive_int),
    ("outbound", "timeout_seconds"): ("outbound_timeout_seconds", _positive_float),
    ("outbound", "attempts"): ("outbound_attempts", _positive_int),
    ("outbound", "backoff_base_seconds"): ("backoff_base_seconds", _positive_float),
    ("outbound", "backoff_max_seconds"): ("backoff_max_seconds", _positive_float),
    ("outbound", "webhook_hosts"): ("webhook_hosts", _hosts),
    ("notify", "warn_interval_seconds"): ("warn_interval_seconds", _positive_float),
    ("notify", "escalation_interval_seconds"): ("escalation_interval_seconds", _positive_float),
    ("notify", "repost_redacted"): ("repost_redacted", _bool),
    ("rules", "poll_seconds"): ("rules_poll_seconds", _positive_float),
    ("rules", "ner"): ("rules_ner", _bool),
    ("shutdown", "drain_seconds"): ("drain_seconds", _positive_float),
    ("audit", "sink"): ("audit_sink", _audit_sink),
    ("audit", "archiver"): ("audit_archiver", _bool),
}


def load_settings(
    env: Mapping[str, str] | None = None,
    config_path: Path | None = None,
    *,
    require_dingtalk: bool = True,
) -> Settings:
    """Read the config file (``--config`` or ``BOT_CONFIG``), then the environment; validate.

    Raises ConfigError naming the first setting that is missing or wrong.
    """
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    path = config_path or (Path(env["BOT_CONFIG"]) if env.get("BOT_CONFIG") else None)
    if path is not None:
        values.update(_read_file(path))
    values.update(_read_env(env))
    settings = replace(Settings(), **values)
    if not settings.replica_id:
        settings = replace(settings, replica_id=f"{socket.gethostname()}-{os.getpid()}")
    return validate(settings, require_dingtalk=require_dingtalk)


def _read_file(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError("BOT_CONFIG", f"cannot read {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError("BOT_CONFIG", f"{path} is not valid TOML: {error}") from None
    values: dict[str, Any] = {}
    for section, table in data.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: {section}", "expected a [section] table")
        for key, value in table.items():
            spec = FILE_KEYS.get((section, key))
            if spec is None:
                known = ", ".join(sorted(f"{s}.{k}" for s, k in FILE_KEYS))
                raise ConfigError(f"{section}.{key}", f"unknown setting in {path}; known: {known}")
            attribute, parse = spec
            values[attribute] = parse(f"{section}.{key}", value)
    return values


def _read_env(env: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    simple = {
        "DINGTALK_CLIENT_ID": "client_id",
        "DINGTALK_CLIENT_SECRET": "client_secret",
        "DINGTALK_OPENAPI_ENDPOINT": "openapi_endpoint",
        "BOT_COMPLIANCE_CONVERSATION_ID": "compliance_conversation_id",
        "BOT_REDIS_URL": "redis_url",
        "BOT_INGEST_TOKEN": "ingest_token",
    }
    for name, attribute in simple.items():
        value = env.get(name, "").strip()
        if value:
            values[attribute] = value
    if env.get("BOT_RULES_DIR", "").strip():
        values["rules_dir"] = Path(env["BOT_RULES_DIR"].strip())
    if env.get("BOT_DATA_DIR", "").strip():
        values["data_dir"] = Path(env["BOT_DATA_DIR"].strip())
    if env.get("BOT_HTTP_HOST", "").strip():
        values["http_host"] = env["BOT_HTTP_HOST"].strip()
    if env.get("BOT_HTTP_PORT", "").strip():
        raw = env["BOT_HTTP_PORT"].strip()
        if not raw.isdigit():
            raise ConfigError("BOT_HTTP_PORT", f"expected a port number, got {raw!r}")
        values["http_port"] = _port("BOT_HTTP_PORT", int(raw))
    if env.get("BOT_LOG_LEVEL", "").strip():
        values["log_level"] = _log_level("BOT_LOG_LEVEL", env["BOT_LOG_LEVEL"])
    return values


def validate(settings: Settings, *, require_dingtalk: bool = True) -> Settings:
    """Check what cannot be checked field by field; raise ConfigError naming the setting."""
    if require_dingtalk and settings.stream_enabled:
        for name, value in (
            ("DINGTALK_CLIENT_ID", settings.client_id),
            ("DINGTALK_CLIENT_SECRET", settings.client_secret),
            ("BOT_COMPLIANCE_CONVERSATION_ID", settings.compliance_conversation_id),
        ):
            if not value:
                raise ConfigError(name, "is required (set it in the environment)")
    endpoint = urlsplit(settings.openapi_endpoint)
    if endpoint.scheme not in {"http", "https"} or not endpoint.netloc:
        raise ConfigError(
            "DINGTALK_OPENAPI_ENDPOINT",
            f"expected an http(s) URL like {DEFAULT_ENDPOINT}, got {settings.openapi_endpoint!r}",
        )
    if endpoint.path.strip("/"):
        raise ConfigError("DINGTALK_OPENAPI_ENDPOINT", "give the base URL only, without a path")
    cid = settings.compliance_conversation_id
    if cid and (any(c.isspace() for c in cid) or len(cid) > 256):
        raise ConfigError(
            "BOT_COMPLIANCE_CONVERSATION_ID",
            "expected an openConversationId (e.g. cidXXXX==), without spaces",
        )
    if settings.redis_url is not None:
        scheme = urlsplit(settings.redis_url).scheme
        if scheme not in {"redis", "rediss", "unix"}:
            raise ConfigError(
                "BOT_REDIS_URL", "expected redis://host:port/db, rediss://… or unix://…"
            )
    if settings.ingest_token is not None and len(settings.ingest_token) < 16:
        raise ConfigError("BOT_INGEST_TOKEN", "must be at least 16 characters")
    if not settings.rules_dir.is_dir():
        raise ConfigError("BOT_RULES_DIR", f"rules directory {settings.rules_dir} not found")
    if settings.audit_sink == "redis" and not settings.redis_url:
        raise ConfigError("audit.sink", '"redis" needs BOT_REDIS_URL')
    if settings.backoff_max_seconds < settings.backoff_base_seconds:
        raise ConfigError(
            "outbound.backoff_max_seconds", "must not be smaller than backoff_base_seconds"
        )
    return settings


def describe(settings: Settings) -> dict[str, Any]:
    """The settings as a log-safe dict: secrets shown only as set/unset."""
    out: dict[str, Any] = {}
    for item in fields(settings):
        value = getattr(settings, item.name)
        if item.name in {"client_secret", "ingest_token"}:
            out[item.name] = "set" if value else "unset"
        elif item.name == "redis_url" and value:
            parts = urlsplit(value)
            out[item.name] = f"{parts.scheme}://{parts.hostname or ''}:{parts.port or ''}"
        else:
            out[item.name] = str(value) if isinstance(value, Path) else value
    return out
