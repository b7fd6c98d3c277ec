"""structlog setup for every Trident process, with secret redaction built into the pipeline.

The production recipe from structlog's docs (contextvars, level, ISO UTC timestamp, JSON via
orjson to stdout; the console renderer only on a terminal), plus two things of ours:

- Redaction runs after exceptions are formatted and before anything is rendered or written,
  so a secret cannot leak through a value, a nested dict, an f-string in the event text or an
  exception message: every occurrence of a known secret becomes "***", and values under keys
  that look sensitive (api_secret, passphrase, KC-API-SIGN, token, ...) are masked whole.
- An optional human-readable file log, written by a background thread from a queue so the
  event loop never waits on the disk (the seed's _DualLogger did the same with a task).

Configure once per process, after it has started (cached loggers cannot cross processes).
"""

from __future__ import annotations

import atexit
import json
import logging
import queue
import re
import sys
import threading
from collections.abc import Iterable, Mapping
from typing import Any, TextIO

import structlog

try:
    import orjson
except ImportError:  # pragma: no cover - orjson is installed with the project's extras
    orjson = None  # type: ignore[assignment]

__all__ = ["configure_logging", "close_log_file", "Redactor", "MASK"]

MASK = "***"
_MAX_CACHED_KEYS = 4096
_MAX_DEPTH = 16  # deeper structures are not worth logging, and recursion must stay bounded
_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}
_SENSITIVE_MARKERS = ("secret", "passphrase", "password", "passwd", "token", "authorization", "cookie")
_SENSITIVE_KEYS = frozenset(("kc_api_sign", "sign", "signature", "api_sign", "kc_api_passphrase"))
_FILE_SKIPPED_KEYS = frozenset(("timestamp", "level", "process", "event", "exception", "stack"))


def _is_sensitive(key: str) -> bool:
    name = key.lower().replace("-", "_")
    return name in _SENSITIVE_KEYS or name.endswith("_sign") or any(marker in name for marker in _SENSITIVE_MARKERS)


class Redactor:
    """structlog processor: scrubs known secret strings everywhere and masks sensitive keys.

    Values that are not plain JSON types are turned into text here, before the scrub, because
    the renderer's `default=str` would otherwise render them after it.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        unique = sorted({s for s in secrets if s}, key=len, reverse=True)  # longest first: no partial leaks
        self._pattern = re.compile("|".join(map(re.escape, unique))) if unique else None
        self._sensitive: dict[str, bool] = {}

    def __call__(self, logger: object, method_name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        return self._clean_map(event_dict, 0)

    def scrub(self, text: str) -> str:
        return text if self._pattern is None else self._pattern.sub(MASK, text)

    def _key_is_sensitive(self, key: str) -> bool:
        known = self._sensitive.get(key)
        if known is None:
            known = _is_sensitive(key)
            if len(self._sensitive) < _MAX_CACHED_KEYS:  # data-keyed dicts must not grow it forever
                self._sensitive[key] = known
        return known

    def _clean_map(self, mapping: Mapping[Any, Any], depth: int) -> dict[str, Any]:
        cleaned: dict[str, Any] = {}
        for key, value in mapping.items():
            name = self.scrub(key if type(key) is str else str(key))
            cleaned[name] = MASK if self._key_is_sensitive(name) else self._clean(value, depth + 1)
        return cleaned

    def _clean(self, value: Any, depth: int) -> Any:
        kind = type(value)
        if kind is str:
            return self.scrub(value)
        if value is None or kind is int or kind is float or kind is bool:
            return value
        if depth > _MAX_DEPTH:
            return "..."
        if isinstance(value, Mapping):
            return self._clean_map(value, depth)
        if isinstance(value, (list, tuple, set, frozenset)):
            return [self._clean(item, depth + 1) for item in value]
        return self.scrub(str(value))


class _FileWriter:
    """Appends lines to a file from a daemon thread; `put` never blocks the caller.

    Each batch of queued lines goes out in one unbuffered append, so whole lines from several
    processes sharing one file never interleave mid-line.
    """

    def __init__(self, path: str) -> None:
        self._file = open(path, "ab", buffering=0)  # noqa: SIM115 - closed by the thread
        self._queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="trident-log-file", daemon=True)
        self._thread.start()

    def put(self, line: str) -> None:
        self._queue.put(line)

    def _run(self) -> None:
        try:
            while True:
                batch, stop = self._next_batch()
                if batch:
                    try:
                        self._file.write("".join(batch).encode("utf-8", "backslashreplace"))
                    except OSError:
                        pass  # a full disk must not stop the process; stdout still has the event
                if stop:
                    return
        finally:
            self._file.close()

    def _next_batch(self) -> tuple[list[str], bool]:
        """Wait for one line, then take whatever else is queued; True once told to stop."""
        batch: list[str] = []
        item = self._queue.get()
        while item is not None:
            batch.append(item)
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return batch, False
        return batch, True

    def close(self) -> None:
        """Write everything queued so far, then stop."""
        self._queue.put(None)
        self._thread.join()


class _FileTee:
    """structlog processor: queues a plain-text copy of the (already redacted) event.

    An event with a `line` (the execution log's `FILL BTC-USDT buy …`) is written as that text,
    as the seed's log read; any other as its name and key=value pairs."""

    def __init__(self, writer: _FileWriter) -> None:
        self._writer = writer

    def __call__(self, logger: object, method_name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        readable = event_dict.get("line")
        if isinstance(readable, str):
            text = readable
        else:
            extras = " ".join(
                f"{key}={_plain(value)}" for key, value in event_dict.items() if key not in _FILE_SKIPPED_KEYS
            )
            text = f"{event_dict.get('event', '')} {extras}"
        line = (
            f"{event_dict.get('timestamp', '')} [{str(event_dict.get('level', '')).upper():<8}] "
            f"{event_dict.get('process', '')} {text}".rstrip()
        )
        for block in ("stack", "exception"):
            if event_dict.get(block):
                line += "\n" + str(event_dict[block]).rstrip()
        self._writer.put(line + "\n")
        return event_dict


def _plain(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str, separators=(",", ":"), ensure_ascii=False)
    return str(value)


def _orjson_dumps(obj: Any, default: Any = None, **_: Any) -> str:
    return orjson.dumps(obj, default=default, option=orjson.OPT_NON_STR_KEYS).decode()


_file_writer: _FileWriter | None = None
_atexit_registered = False


def close_log_file() -> None:
    """Flush and close the file log, if any (also runs at interpreter exit)."""
    global _file_writer
    writer, _file_writer = _file_writer, None
    if writer is not None:
        writer.close()


def configure_logging(
    process: str,
    level: str = "info",
    log_file: str | None = None,
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
    cache_loggers: bool = False,
) -> None:
    """Set up structlog for this process; `secrets` are the strings that must never be logged.

    `stream` defaults to stdout. Call again to reconfigure (the previous file log is closed).
    `cache_loggers=True` makes a module-level `structlog.get_logger()` cost ~0.1 µs per filtered
    call instead of ~2 µs, but such a logger then ignores any later reconfiguration: right for a
    long-running process, wrong in tests that reconfigure to capture output.
    """
    global _atexit_registered, _file_writer
    try:
        threshold = _LEVELS[level.lower()]
    except KeyError:
        raise ValueError(f"log level must be one of {', '.join(_LEVELS)}, got {level!r}") from None
    stream = sys.stdout if stream is None else stream
    close_log_file()

    def add_process(logger: object, method_name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        event_dict.setdefault("process", process)
        return event_dict

    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_process,
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        Redactor(secrets),
    ]
    if log_file:
        _file_writer = _FileWriter(log_file)
        processors.append(_FileTee(_file_writer))
        if not _atexit_registered:
            atexit.register(close_log_file)
            _atexit_registered = True
    if _is_tty(stream):
        processors.append(structlog.dev.ConsoleRenderer())
    elif orjson is not None:
        processors.append(structlog.processors.JSONRenderer(serializer=_orjson_dumps))
    else:  # pragma: no cover
        processors.append(structlog.processors.JSONRenderer())
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(threshold),
        logger_factory=structlog.WriteLoggerFactory(file=stream),
        cache_logger_on_first_use=cache_loggers,
    )


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
