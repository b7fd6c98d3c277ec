"""Process settings: defaults < TOML file < environment < explicit overrides.

Every setting has one name used everywhere: the dataclass field, the TOML key, and the
environment variable `TRIDENT_<NAME>` (e.g. `TRIDENT_WORKERS=4`). Values are checked once, here,
so a typo or an impossible value stops the process at start with a message naming the setting,
instead of surfacing as a strange failure in the middle of a trade.

Credentials come from `TRIDENT_API_KEY`, `TRIDENT_API_SECRET`, `TRIDENT_API_PASSPHRASE`
(optional `TRIDENT_API_KEY_VERSION`), each also readable from the file named by the same
variable plus `_FILE` (systemd credentials, Docker secrets), or from `api_key`, `api_secret`,
`api_passphrase`, `api_key_version` in the TOML file. Error messages never include their values.
"""

from __future__ import annotations

import difflib
import os
import stat
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from urllib.parse import parse_qs, unquote, urlsplit

from shared.credentials import Credentials

__all__ = ["Settings", "SettingsError", "load_settings", "setting_sources", "unknown_env_warnings", "ENV_PREFIX"]

ENV_PREFIX = "TRIDENT_"
_CONFIG_ENV = "TRIDENT_CONFIG"
_CREDENTIAL_KEYS = ("api_key", "api_secret", "api_passphrase")
_KEY_VERSION = "api_key_version"
_KEY_VERSIONS = (2, 3)
_LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


class SettingsError(ValueError):
    """A setting is missing, unknown or invalid; the message names it (never a secret's value)."""


def _default_workers() -> int:
    return os.cpu_count() or 1


@dataclass(frozen=True, slots=True)
class Settings:
    redis_url: str = "redis://127.0.0.1:6379/0"
    socket_path: str = "/run/trident/signals.sock"
    workers: int = field(default_factory=_default_workers)
    exchange_url: str = "https://api.kucoin.com"
    mode: str = "paper"  # "paper" | "live"
    fill_model: str = "depth"  # "depth" | "top" (the seed's top-of-book model)
    # Live mode: what happens to inventory a failed or partly filled leg strands ("unwind": market-
    # convert it back to the primary quote; "hold": keep it), how a leg learns its fill ("sync":
    # place-and-wait endpoint then one order query; "ws": place, private-WebSocket event, query),
    # how long a leg waits for its terminal state, and how long an unknown placement is queried.
    unwind_policy: str = "unwind"
    live_fills: str = "sync"
    fill_timeout_s: float = 5.0
    resolve_timeout_s: float = 10.0
    # Sequential live legs: a leg refused for insufficient balance (certainly not placed) waits
    # this long for the balance push showing what the previous leg delivered, then runs once more.
    balance_wait_ms: int = 2000
    # Parallel live legs (registry `live_strategy parallel`): a leg that fails leaves the inventory
    # off its mix; "hold" reports it `imbalanced`, "convert" market-converts back toward it.
    rebalance: str = "hold"
    # Live mode: how often the supervisor re-queries journaled orders whose outcome is unknown
    # (supervisor/reconcile.py); the first pass runs at start-up.
    reconcile_interval_s: float = 5.0
    max_frame_bytes: int = 1 << 20
    report_stream: str = "trident:reports"
    report_maxlen: int = 100_000
    spool_dir: str = "/var/lib/trident/spool"
    lease_ttl_ms: int = 30_000
    # A correlation id executes at most once fleet-wide within this window (registry SEEN keys).
    correlation_retention_s: int = 86_400
    # A book time more than this ahead of the supervisor's clock is refused (`future_book`); a
    # signal without book_ts_ms is refused (`missing_book_ts`) unless missing_book_ts = "allow".
    book_skew_ms: int = 2_000
    missing_book_ts: str = "refuse"
    # How the supervisor picks a worker (`supervisor.routing`): "least_loaded", or "shard" (each
    # triangle to its own worker, spilling to the least-loaded one at `shard_spill` in flight).
    routing: str = "least_loaded"
    shard_spill: int = 2
    # The account's Spot pool (KuCoin VIP0: 4000 weight per 30 s), shared by the whole fleet.
    rate_budget_limit: int = 4000
    rate_budget_window_ms: int = 30_000
    # Peer uids allowed on the signal socket (SO_PEERCRED); empty: whoever the 0660 mode lets in.
    allowed_uids: tuple[int, ...] = ()
    keepalive_s: float = 15.0
    http_timeout_s: float = 10.0
    # A Redis that hangs (not down: stopped, partitioned) must fail an admission, not stall it.
    redis_timeout_s: float = 2.0
    # Sentinel/replicated Redis: a lease is used only once this many replicas acknowledged it
    # (WAIT), so a failover cannot lose a grant; 0 = do not wait (a single Redis).
    redis_wait_replicas: int = 0
    redis_wait_timeout_ms: int = 100
    log_level: str = "info"
    log_file: str | None = None
    metrics_host: str = "127.0.0.1"  # Prometheus endpoint; loopback unless asked, it is unauthenticated
    metrics_port: int = 9464  # 0 disables the endpoint
    host_id: str = ""  # this host's name in Redis (status, lease owner); empty: the hostname
    clock_skew_ms: int = 0  # test hook: shift this process's wall clock, as on a host whose clock is off
    credentials: Credentials | None = None  # Credentials' own repr hides the secrets

    def secrets(self) -> tuple[str, ...]:
        """Every value log redaction must scrub: the API secret and passphrase, the Redis password."""
        found = self.credentials.secrets() if self.credentials else ()
        parts = urlsplit(self.redis_url)
        passwords = [unquote(parts.password)] if parts.password else []
        passwords += parse_qs(parts.query).get("sentinel_password", [])  # redis+sentinel:// URLs
        return (*found, *passwords)


_FIELD_NAMES = tuple(f.name for f in fields(Settings) if f.name != "credentials")
_INT_FIELDS = frozenset((
    "workers", "max_frame_bytes", "report_maxlen", "lease_ttl_ms", "rate_budget_limit", "rate_budget_window_ms",
    "correlation_retention_s", "book_skew_ms", "balance_wait_ms",
    "shard_spill", "redis_wait_replicas", "redis_wait_timeout_ms",
))
_FLOAT_FIELDS = frozenset(("keepalive_s", "http_timeout_s", "redis_timeout_s", "fill_timeout_s", "resolve_timeout_s",
                           "reconcile_interval_s"))
_CHOICES: dict[str, tuple[str, ...]] = {
    "mode": ("paper", "live"),
    "fill_model": ("depth", "top"),
    "unwind_policy": ("unwind", "hold"),
    "rebalance": ("hold", "convert"),
    "live_fills": ("sync", "ws"),
    "missing_book_ts": ("refuse", "allow"),
    "routing": ("least_loaded", "shard"),
    "log_level": _LOG_LEVELS,
}


def _coerce(name: str, value: object, source: str) -> object:
    """The field's type from a string (env), a TOML value, or an override; errors name the setting."""
    if name == "allowed_uids":
        return _uids(value, source)
    if name == "metrics_port":
        return _port(value, source)
    if name == "clock_skew_ms":
        try:
            return int(str(value).strip())
        except ValueError:
            raise SettingsError(f"clock_skew_ms (from {source}) must be an integer (ms, may be negative), "
                                f"got {value!r}") from None
    if name in _INT_FIELDS:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise SettingsError(f"{name} (from {source}) must be an integer, got {type(value).__name__}")
        try:
            number: object = int(value)
        except ValueError:
            raise SettingsError(f"{name} (from {source}) must be an integer, got {value!r}") from None
        minimum = 0 if name in ("workers", "redis_wait_replicas") else 1  # 0 workers: execution inline
        if number < minimum:  # type: ignore[operator]
            raise SettingsError(f"{name} (from {source}) must be >= {minimum}, got {number}")
        return number
    if name in _FLOAT_FIELDS:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise SettingsError(f"{name} (from {source}) must be a number, got {type(value).__name__}")
        try:
            number = float(value)
        except ValueError:
            raise SettingsError(f"{name} (from {source}) must be a number, got {value!r}") from None
        if not number > 0 or number == float("inf"):
            raise SettingsError(f"{name} (from {source}) must be a finite number > 0, got {value!r}")
        return number
    if not isinstance(value, str):
        raise SettingsError(f"{name} (from {source}) must be a string, got {type(value).__name__}")
    if name in _CHOICES:
        value = value.strip().lower()
        if value not in _CHOICES[name]:
            raise SettingsError(f"{name} (from {source}) must be one of {', '.join(_CHOICES[name])}, got {value!r}")
    if name == "log_file":
        return value or None
    if name == "host_id":
        return value.strip()
    if not value:
        raise SettingsError(f"{name} (from {source}) must not be empty")
    if name in _URL_CHECKS:
        _URL_CHECKS[name](value, source)
    if name == "socket_path" and len(os.fsencode(value)) > _MAX_UNIX_PATH:
        raise SettingsError(f"socket_path (from {source}) is longer than the {_MAX_UNIX_PATH} bytes AF_UNIX allows")
    return value


def _redis_url(value: str, source: str) -> None:
    """What redis-py's from_url would reject (or read as something else) at first use, refused now."""
    where = f"redis_url (from {source})"
    parts = urlsplit(value)
    if parts.scheme == "redis+sentinel":  # host:port list and /<master>[/<db>]: shared.store.connect parses it
        hosts = parts.netloc.rpartition("@")[2].split(",")
        if not all(h.rpartition(":")[0] and h.rpartition(":")[2].isdigit() for h in hosts):
            raise SettingsError(f"{where}: every sentinel address must be host:port")
        if not parts.path.strip("/"):
            raise SettingsError(f"{where}: a sentinel URL's path is /<master name>[/<db number>]")
        return
    if parts.scheme == "redis+cluster":  # host:port[,host:port...]: shared.store.connect parses it
        hosts = parts.netloc.rpartition("@")[2].split(",")
        if not all(h.rpartition(":")[0] and h.rpartition(":")[2].isdigit() for h in hosts):
            raise SettingsError(f"{where}: a cluster URL is redis+cluster://host:port[,host:port...] "
                                f"(every node address host:port)")
        if parts.path.strip("/") not in ("", "0"):
            raise SettingsError(f"{where}: a cluster has only database 0")
        return
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise SettingsError(f"{where} must be redis://, rediss://, unix://, redis+sentinel:// or redis+cluster://, "
                            f"got scheme {parts.scheme or 'none'!r}")
    if parts.scheme == "unix":
        if not parts.path:
            raise SettingsError(f"{where} names no socket path")
        return
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise SettingsError(f"{where} has a port that is not a number 0-65535") from None
    if not parts.hostname:
        raise SettingsError(f"{where} names no host")


def _exchange_url(value: str, source: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or " " in value:
        raise SettingsError(f"exchange_url (from {source}) must be an http(s)://host URL, got {value[:60]!r}")
    try:
        parts.port  # noqa: B018
    except ValueError:
        raise SettingsError(f"exchange_url (from {source}) has a port that is not a number 0-65535") from None


_URL_CHECKS: dict[str, Callable[[str, str], None]] = {"redis_url": _redis_url, "exchange_url": _exchange_url}
_MAX_UNIX_PATH = 107  # sun_path is 108 bytes with the terminating NUL


def _port(value: object, source: str) -> int:
    """A TCP port, or 0 for "off" (which the other integer settings do not allow)."""
    text = str(value).strip() if isinstance(value, (int, str)) and not isinstance(value, bool) else ""
    if not text.isdigit() or int(text) > 65535:
        raise SettingsError(f"metrics_port (from {source}) must be a port 0-65535 (0 disables), got {value!r}")
    return int(text)


def _uids(value: object, source: str) -> tuple[int, ...]:
    """A list of uids: "1000,1001" (env), a TOML array, or a sequence (override)."""
    items = value.replace(",", " ").split() if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise SettingsError(f"allowed_uids (from {source}) must be a list of uids, got {type(value).__name__}")
    uids = []
    for item in items:
        try:
            uid = int(item) if not isinstance(item, bool) and isinstance(item, (int, str)) else -1
        except ValueError:
            uid = -1
        if uid < 0:
            raise SettingsError(f"allowed_uids (from {source}) must hold non-negative integers, got {item!r}")
        uids.append(uid)
    return tuple(uids)


def _read_toml(path: str) -> dict[str, object]:
    try:
        with open(path, "rb") as file:
            data = tomllib.load(file)
    except OSError as exc:
        raise SettingsError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"config file {path} is not valid TOML: {exc}") from None
    known = set(_FIELD_NAMES) | set(_CREDENTIAL_KEYS) | {_KEY_VERSION}
    unknown = sorted(set(data) - known)
    if unknown:
        raise SettingsError(f"config file {path} has unknown settings: {', '.join(unknown)}")
    return data


def _env_value(env: Mapping[str, str], var: str, read_file: Callable[[str], str]) -> str | None:
    """`var` itself, else the content of the file named by `var_FILE`; empty means unset."""
    value = env.get(var)
    if value:
        return value
    path = env.get(var + "_FILE")
    if not path:
        return None
    try:
        content = read_file(path).strip()
    except OSError as exc:
        raise SettingsError(f"cannot read {var}_FILE ({path}): {exc.strerror}") from None
    except UnicodeDecodeError:
        raise SettingsError(f"{var}_FILE ({path}) is not UTF-8 text") from None
    except ValueError as exc:  # not a regular file
        raise SettingsError(f"{var}_FILE ({path}) {exc}") from None
    return content or None


def _read_text(path: str) -> str:
    """A secret file's text; a FIFO or device would block the start (or never end), so only a
    regular file is read (opened non-blocking, checked on the open descriptor)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with open(fd, encoding="utf-8", closefd=True) as file:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError("is not a regular file")
        return file.read()


def _load_credentials(env: Mapping[str, str], config: Mapping[str, object]) -> Credentials | None:
    """Each part from the environment, else the config file; all three or none."""
    parts: dict[str, str] = {}
    for key in (*_CREDENTIAL_KEYS, _KEY_VERSION):
        var = ENV_PREFIX + key.upper()
        value = _env_value(env, var, _read_text)
        if value is None and config.get(key) not in (None, ""):
            value = config[key] if key == _KEY_VERSION else _credential_text(config[key], key)  # type: ignore[assignment]
        if value is not None:
            parts[key] = value
    present = [key for key in _CREDENTIAL_KEYS if key in parts]
    if not present:
        if _KEY_VERSION in parts:
            raise SettingsError("api_key_version is set but no credentials are")
        return None
    missing = [key for key in _CREDENTIAL_KEYS if key not in parts]
    if missing:
        names = ", ".join(f"{ENV_PREFIX}{key.upper()} (or {key} in the config file)" for key in missing)
        raise SettingsError(f"incomplete credentials: missing {names}")
    version = parts.get(_KEY_VERSION, 2)
    try:
        key_version = int(version)
    except (TypeError, ValueError):
        key_version = 0
    if isinstance(version, bool) or key_version not in _KEY_VERSIONS:
        raise SettingsError(f"api_key_version must be one of {_KEY_VERSIONS}")
    return Credentials(parts["api_key"], parts["api_secret"], parts["api_passphrase"], key_version)


def _credential_text(value: object, key: str) -> str:
    if not isinstance(value, str):
        raise SettingsError(f"{key} in the config file must be a string")
    return value.strip()


# Names the design documents for operators, accepted beside the regular TRIDENT_<FIELD> ones.
_ENV_ALIASES = {"socket_path": "TRIDENT_SOCKET"}


# TRIDENT_* names that are not settings but are read by something else (the Procfile's run dir).
_OTHER_ENV = frozenset(("TRIDENT_RUN_DIR",))


def _known_env_names() -> frozenset[str]:
    names = {ENV_PREFIX + name.upper() for name in _FIELD_NAMES}
    names |= set(_ENV_ALIASES.values()) | {_CONFIG_ENV} | _OTHER_ENV
    for key in (*_CREDENTIAL_KEYS, _KEY_VERSION):
        names |= {ENV_PREFIX + key.upper(), ENV_PREFIX + key.upper() + "_FILE"}
    return frozenset(names)


def unknown_env_warnings(env: Mapping[str, str] | None = None) -> list[str]:
    """One line per `TRIDENT_*` variable that is no setting, naming the nearest real one.

    A typo (`TRIDENT_WORKES=8`) would otherwise be ignored in silence and the default used.
    """
    env = os.environ if env is None else env
    known = _known_env_names()
    lines = []
    for var in sorted(name for name in env if name.startswith(ENV_PREFIX) and name not in known):
        # compared without the shared prefix, which would make every name look alike
        nearest = difflib.get_close_matches(var[len(ENV_PREFIX):], [n[len(ENV_PREFIX):] for n in known], n=1)
        hint = f"; did you mean {ENV_PREFIX}{nearest[0]}?" if nearest else " (no setting has a similar name)"
        lines.append(f"warning: {var} is not a Trident setting and is ignored{hint}")
    return lines


def load_settings(
    env: Mapping[str, str] | None = None, config_file: str | None = None, **overrides: object
) -> Settings:
    """Resolve every setting; overrides whose value is None are ignored (unset CLI flags).

    `env` defaults to `os.environ`; the TOML file is `config_file` or `$TRIDENT_CONFIG` (keys are
    the field names, top level). Raises SettingsError on anything unknown or invalid.
    """
    env = os.environ if env is None else env
    unknown = sorted(set(overrides) - set(_FIELD_NAMES) - {"credentials"})
    if unknown:
        raise SettingsError(f"unknown settings: {', '.join(unknown)}")
    path = config_file or env.get(_CONFIG_ENV) or None
    config = _read_toml(path) if path else {}
    values: dict[str, object] = {}
    for name in _FIELD_NAMES:
        var = ENV_PREFIX + name.upper()
        if overrides.get(name) is not None:
            values[name] = _coerce(name, overrides[name], "override")
        elif env.get(var):
            values[name] = _coerce(name, env[var], var)
        elif name in _ENV_ALIASES and env.get(_ENV_ALIASES[name]):
            values[name] = _coerce(name, env[_ENV_ALIASES[name]], _ENV_ALIASES[name])
        elif name in config:
            values[name] = _coerce(name, config[name], f"config file {path}")
    credentials = overrides.get("credentials")
    if credentials is not None and not isinstance(credentials, Credentials):
        raise SettingsError(f"credentials override must be Credentials, got {type(credentials).__name__}")
    if credentials is None:
        credentials = _load_credentials(env, config)
    return Settings(**values, credentials=credentials)  # type: ignore[arg-type]


def setting_sources(
    env: Mapping[str, str] | None = None, config_file: str | None = None, **overrides: object
) -> dict[str, str]:
    """Where each setting in force came from, by the same precedence as `load_settings`:
    `flag`, the environment variable's name, `file <path>`, or `default`."""
    env = os.environ if env is None else env
    path = config_file or env.get(_CONFIG_ENV) or None
    config = _read_toml(path) if path else {}
    sources: dict[str, str] = {}
    for name in _FIELD_NAMES:
        var = ENV_PREFIX + name.upper()
        if overrides.get(name) is not None:
            sources[name] = "flag"
        elif env.get(var):
            sources[name] = var
        elif name in _ENV_ALIASES and env.get(_ENV_ALIASES[name]):
            sources[name] = _ENV_ALIASES[name]
        elif name in config:
            sources[name] = f"file {path}"
        else:
            sources[name] = "default"
    parts = []
    for key in _CREDENTIAL_KEYS:
        var = ENV_PREFIX + key.upper()
        if env.get(var) or env.get(var + "_FILE"):
            parts.append(var if env.get(var) else var + "_FILE")
        elif config.get(key):
            parts.append(f"file {path}")
    sources["credentials"] = ", ".join(dict.fromkeys(parts)) or "none"
    return sources
