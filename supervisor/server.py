"""Unix-socket intake: many concurrent client connections, each a stream of frames.

A bad frame is the sender's problem, not the service's: it is counted and logged with its reason
and the connection carries on when the stream can be resynchronised (a known frame boundary), or
is closed when it cannot (an oversize length prefix). Other connections never notice either.
Frames of one connection are admitted in order, so a sender's ordering is the admission order.

Who may send: the socket file is created 0660 (owner and group; the umask is narrowed while it is
bound, so it is never wider even for an instant), and with `allowed_uids` each connection's
peer uid, as the kernel reports it (SO_PEERCRED, unforgeable), must be listed or the connection
is closed before a byte is read, with a logged reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import stat
import struct
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import structlog

from shared.codec import BadFrame, FrameDecoder, FrameError

__all__ = ["SignalServer", "SocketInUse", "prepare_socket_path"]

log = structlog.get_logger(__name__)

_READ_BYTES = 256 * 1024
_PEERCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


class SocketInUse(RuntimeError):
    """Another live process is serving this socket path."""


def prepare_socket_path(path: Path) -> None:
    """Replace a stale socket file left by a dead process; refuse to steal a live one."""
    if not path.exists() and not path.is_symlink():
        path.parent.mkdir(parents=True, exist_ok=True)
        return
    if not stat.S_ISSOCK(path.lstat().st_mode):
        raise SocketInUse(f"{path} exists and is not a socket; refusing to replace it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError:
        path.unlink()  # nobody listening: stale
        return
    finally:
        probe.close()
    raise SocketInUse(f"{path} is served by a live process; stop it or choose another --socket")


class SignalServer:
    """Reads frames from every connection and hands each decoded object to `on_frame`."""

    def __init__(
        self,
        path: str,
        max_frame_bytes: int,
        on_frame: Callable[[object, int], Awaitable[None]],
        on_bad_frame: Callable[[str, str], None],
        allowed_uids: tuple[int, ...] = (),
        decode: Callable[[bytes], object] | None = None,
    ) -> None:
        """`decode`: turns each msgpack frame body into what `on_frame` gets (or a BadFrame), in
        place of the plain msgpack decode: the supervisor's typed signal decode."""
        self.path = Path(path)
        self._max_frame_bytes = max_frame_bytes
        self._allowed_uids = frozenset(allowed_uids)
        self.refused_peers = 0
        self._on_frame = on_frame
        self._on_bad_frame = on_bad_frame
        self._decode = decode
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        prepare_socket_path(self.path)
        umask = os.umask(0o117)
        try:
            self._server = await asyncio.start_unix_server(self._serve, path=str(self.path), limit=_READ_BYTES)
        finally:
            os.umask(umask)
        os.chmod(self.path, 0o660)
        log.info("socket_listening", path=str(self.path))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        decode = self._decode
        decoder = FrameDecoder(self._max_frame_bytes, raw_bodies=decode is not None)
        try:
            if self._allowed_uids and not self._peer_allowed(writer):
                return
            while data := await reader.read(_READ_BYTES):
                received_ns = time.monotonic_ns()
                fatal: FrameError | None = None
                try:
                    items = decoder.feed(data)
                except FrameError as exc:  # the good frames before it in this read still count
                    fatal, items = exc, list(exc.decoded)
                for item in items:
                    if decode is not None and type(item) is bytes:
                        item = decode(item)
                    if isinstance(item, BadFrame):
                        self._on_bad_frame(item.reason, item.detail)
                        continue
                    try:
                        await self._on_frame(item, received_ns)
                    except Exception:  # never let one frame take the connection (or the process) down
                        log.exception("frame_handler_failed")
                if fatal is not None:
                    self._on_bad_frame(fatal.reason, str(fatal))
                    log.warning("connection_closed_bad_stream", reason=fatal.reason, detail=str(fatal))
                    return
        except ConnectionError:
            pass
        except asyncio.CancelledError:  # stop(): end quietly (asyncio 3.11 logs a handler that re-raises it)
            pass
        finally:
            writer.close()  # no wait_closed(): it would raise into a task cancelled by stop()
            if task is not None:
                self._connections.discard(task)

    def _peer_allowed(self, writer: asyncio.StreamWriter) -> bool:
        sock = writer.get_extra_info("socket")
        pid, uid, gid = _PEERCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size))
        if uid in self._allowed_uids:
            return True
        self.refused_peers += 1
        log.warning("peer_refused", reason="uid not in allowed_uids", uid=uid, gid=gid, pid=pid)
        return False

    async def stop(self) -> None:
        """Stop accepting, drop open connections, remove the socket file."""
        if self._server is not None:
            self._server.close()
            for task in list(self._connections):
                task.cancel()
            await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

