"""`make stack` / `make stack-stop`: Airflow as deployed (CeleryExecutor), on this machine, without Docker.

One detached supervisor process (`python -m aim_demo.stack supervise`) owns everything the stack runs:

| component                  | how                                                                       |
| -------------------------- | ------------------------------------------------------------------------- |
| warehouse, demo systems    | `aim_demo.__main__._environment()`, held open by the supervisor           |
| Airflow metadata           | database `airflow` on the warehouse's PostgreSQL server (AIM_STACK_METADATA_URL overrides) |
| Celery broker              | its own `redis-server` (Debian package) on a free loopback port, nothing persisted |
| Celery result backend      | the metadata database (`db+postgresql://...`)                             |
| API server                 | `airflow api-server` on http://127.0.0.1:8080 (UI, REST API, execution API) |
| scheduler, DAG processor, triggerer | one each                                                         |
| Celery workers             | two, `worker1@<host>` and `worker2@<host>`, concurrency 2 each            |

Every component runs in its own process group with its output in `.aim/stack/logs/<name>.log`;
`.aim/stack/stack.json` records their pids, start times and ports. SIGTERM to the supervisor (what
`stop()` sends) stops them tier by tier (Celery workers first, with a warm shutdown), then redis,
then the demo systems; the embedded warehouse keeps running, as after `make demo` (it is shared with
it; `make warehouse-stop` stops it). A component that dies is not restarted (its exit is logged;
`status()` shows it). A stack whose supervisor died is stopped by `stop()` (and before a new start).

Test hooks (environment of `start(env=...)`): AIM_WAREHOUSE_URL (another warehouse),
AIM_STACK_METADATA_URL (another Airflow metadata database), AIM_STACK_RMS_URL (the demo police
system in another database); `start(state_dir=...)` keeps demo systems, exports and the stack's
files out of .aim; `start(settings=...)` overrides AIRFLOW__* settings.

Log in: user `admin`, password in `.aim/stack/airflow-home/simple_auth_manager_passwords.json.generated`
(Airflow's simple auth manager). Over REST (`AirflowClient` below does the same):

    TOKEN=$(curl -s -X POST http://127.0.0.1:8080/auth/token -H 'Content-Type: application/json' \\
            -d '{"username": "admin", "password": "..."}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
    curl -X PATCH http://127.0.0.1:8080/api/v2/dags/ingest_mpd_crime_incidents -H "Authorization: Bearer $TOKEN" \\
         -H 'Content-Type: application/json' -d '{"is_paused": false}'
    curl -X POST http://127.0.0.1:8080/api/v2/dags/ingest_mpd_crime_incidents/dagRuns \\
         -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d '{"logical_date": null}'
"""
from __future__ import annotations

import fcntl
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from aim_demo.embedded_pg import free_port
from aim_demo.s3_server import alive

HOST = "127.0.0.1"
DEFAULT_API_PORT = 8080
ADMIN = "admin"
VENV_BIN = Path(sys.executable).parent
PASSWORDS_FILE = "simple_auth_manager_passwords.json.generated"
# Components in start order. The workers' names are their Celery node names.
AIRFLOW_COMPONENTS = {
    "api-server": ["api-server"],  # host and port added at start
    "scheduler": ["scheduler"],
    "dag-processor": ["dag-processor"],
    "triggerer": ["triggerer"],
    "worker1": ["celery", "worker", "--celery-hostname", "worker1@%h", "--concurrency", "2", "--skip-serve-logs"],
    "worker2": ["celery", "worker", "--celery-hostname", "worker2@%h", "--concurrency", "2", "--skip-serve-logs"],
}
WORKERS = ("worker1", "worker2")
# stop() goes the other way round, tier by tier, the components of a tier at once.
STOP_TIERS = [["worker1", "worker2"], ["triggerer", "dag-processor", "scheduler"], ["api-server"], ["redis"]]
# Seconds from SIGTERM to SIGKILL: a Celery worker's warm shutdown waits for its running tasks; a
# triggerer's triggers and a DAG processor's parsing are picked up again at the next start; others 15 s.
STOP_TIMEOUTS = {"worker1": 60.0, "worker2": 60.0, "triggerer": 5.0, "dag-processor": 5.0}


class StackError(RuntimeError):
    """The stack could not start or stop as asked."""


# ------------------------------------------------------------------------------------------- paths
def stack_dir(state_dir: Path | None = None) -> Path:
    """Where a stack over `state_dir` (default: the demo's .aim) keeps its pid files, logs and homes."""
    from aim_demo import local

    return Path(state_dir or local.STATE_DIR).resolve() / "stack"


def _state(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / "stack.json").read_text())
    except (OSError, ValueError):
        return {}


def _write_state(folder: Path, state: dict[str, Any]) -> None:
    scratch = folder / "stack.json.new"
    scratch.write_text(json.dumps(state, indent=2))
    os.replace(scratch, folder / "stack.json")


# --------------------------------------------------------------------------------------- processes
def _environ_of(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    return dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)


def _start_time(pid: int) -> int | None:
    """When process `pid` started (clock ticks since boot): with the pid, what names one process for good."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            tree.setdefault(parent, []).append(int(entry.name))
    return tree


def descendants(pid: int) -> list[int]:
    """Every live process `pid` started, directly or not (whatever process group it is in)."""
    tree, found, todo = _children(), [], [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _processes_of(folder: Path) -> list[int]:
    """Every live process of the stack in `folder`: the supervisor and the components recorded in
    stack.json (each checked to be the very process started, by its start time, so a reused pid is
    never touched), everything they started (task processes sit in process groups of their own), and
    any other process whose environment says AIM_STACK_DIR=<folder> (the S3 server of the demo
    systems; a component rewriting its title, as uvicorn and Celery do, hides its environment, hence
    the recorded ones). The caller's own process is never among them."""
    state = _state(folder)
    started = state.get("started") or {}
    roots = {pid for name, pid in [("supervisor", state.get("supervisor")), *(state.get("pids") or {}).items()]
             if pid and started.get(name) is not None and _start_time(pid) == started[name]}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _environ_of(int(entry.name)).get("AIM_STACK_DIR") == str(folder):
            roots.add(int(entry.name))
    tree, found, todo = _children(), set(), list(roots)
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(tree.get(pid, []))
    return sorted(pid for pid in found if pid != os.getpid() and alive(pid))


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)  # start_new_session: pgid == pid
    except (ProcessLookupError, PermissionError):
        pass


def _listening(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:`port`."""
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex((HOST, port)) == 0


def _http_json(url: str, timeout: float = 3.0) -> Any:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through HTTP(S)_PROXY
    with opener.open(url, timeout=timeout) as response:
        return json.load(response)


def healthy(api_url: str) -> bool:
    """True when the API server answers and reports metadata database, scheduler, triggerer and DAG
    processor healthy (GET /api/v2/monitor/health)."""
    try:
        health = _http_json(f"{api_url}/api/v2/monitor/health")
    except (OSError, ValueError):
        return False
    return all((health.get(part) or {}).get("status") == "healthy"
               for part in ("metadatabase", "scheduler", "triggerer", "dag_processor"))


# ------------------------------------------------------------------------------------------ status
def status(state_dir: Path | None = None) -> dict[str, Any]:
    """The stack over `state_dir`: {"running": bool, "api_url", "redis_port", "components": {name: alive}, ...}."""
    folder = stack_dir(state_dir)
    state = _state(folder)
    supervisor = state.get("supervisor")
    running = bool(supervisor) and alive(supervisor) and _start_time(supervisor) == (state.get("started") or {}).get(
        "supervisor")
    components = {name: alive(pid) for name, pid in (state.get("pids") or {}).items()}
    return {**state, "running": running, "components": components, "folder": str(folder)}


def password(state_dir: Path | None = None) -> str:
    """The admin's password (Airflow's simple auth manager keeps it in AIRFLOW_HOME)."""
    return json.loads((stack_dir(state_dir) / "airflow-home" / PASSWORDS_FILE).read_text())[ADMIN]


# ------------------------------------------------------------------------------------------- start
def start(state_dir: Path | None = None, api_port: int = DEFAULT_API_PORT, env: dict[str, str] | None = None,
          settings: dict[str, str] | None = None, timeout: float = 240.0, quiet: bool = False) -> dict[str, Any]:
    """Start the stack over `state_dir` (default .aim) in the background; return its status once the API
    server answers and the scheduler, DAG processor, triggerer and both Celery workers are up.

    `env`: extra environment for the supervisor and every component (AIM_WAREHOUSE_URL for another
    warehouse, AIM_STACK_METADATA_URL for another metadata database, AIM_RETRY_DELAY_SECONDS, ...).
    `settings`: AIRFLOW__* settings that override the stack's own (the test shortens intervals).
    Refuses (StackError) when this stack already runs or when `api_port` is taken.
    """
    folder = stack_dir(state_dir)
    current = status(state_dir)
    if current["running"]:
        raise StackError(f"the stack is already running: {current.get('api_url')} (stop it with `make stack-stop`)")
    if _processes_of(folder):
        stop(state_dir, quiet=True)  # an orphan of a supervisor that died: reclaim its ports and lock
    if _listening(api_port):
        raise StackError(f"port {HOST}:{api_port} is taken by another program: stop it first "
                         "(the stack's API server must listen there)")
    if not shutil.which("redis-server"):
        raise StackError("redis-server not found: install Debian's package (`make redis-server`, "
                         "or apt-get install redis-server)")
    (folder / "logs").mkdir(parents=True, exist_ok=True)
    (folder / "stack.json").unlink(missing_ok=True)
    log = folder / "logs" / "supervisor.log"
    root = Path(__file__).resolve().parents[1]
    python_path = os.pathsep.join(p for p in [str(root / "plugins"), str(root), os.environ.get("PYTHONPATH", "")] if p)
    command = [sys.executable, "-m", "aim_demo.stack", "supervise", "--stack-dir", str(folder),
               "--api-port", str(api_port)]
    if state_dir is not None:
        command += ["--state-dir", str(Path(state_dir).resolve())]
    with open(log, "ab") as out:
        out.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(command)}\n".encode())
        out.flush()
        offset = out.tell()
        supervisor = subprocess.Popen(command, env={**os.environ, **(env or {}), "AIM_STACK_DIR": str(folder),
                                                    "AIM_STACK_AIRFLOW_SETTINGS": json.dumps(settings or {}),
                                                    "PYTHONPATH": python_path},
                                      stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                      start_new_session=True, cwd=str(root))
    deadline = time.monotonic() + timeout
    while True:
        state = _state(folder)
        if supervisor.poll() is not None:
            raise StackError(f"the stack did not start (supervisor exited {supervisor.returncode}); "
                             f"{log}:\n{_tail(log, offset)}")
        if state.get("ready"):
            break
        if time.monotonic() > deadline:
            stop(state_dir, quiet=True)
            raise StackError(f"the stack was not ready within {timeout:.0f} s; {log}:\n{_tail(log, offset)}")
        time.sleep(0.5)
    if not quiet:
        print(instructions(state_dir), flush=True)
    return status(state_dir)


def instructions(state_dir: Path | None = None) -> str:
    """How to log in and trigger a run, for the stack over `state_dir`."""
    state = _state(stack_dir(state_dir))
    url = state["api_url"]
    return f"""Airflow (CeleryExecutor, 2 workers) is running: {url}
  log in as {ADMIN}; the password is in {state['passwords_file']}
  logs: {stack_dir(state_dir) / 'logs'}   stop: make stack-stop
  trigger the police ingest over the REST API:
    TOKEN=$(curl -s -X POST {url}/auth/token -H 'Content-Type: application/json' \\
      -d "{{\\"username\\": \\"{ADMIN}\\", \\"password\\": \\"$(python3 -c 'import json; print(json.load(open("{state['passwords_file']}"))["{ADMIN}"])')\\"}}" \\
      | python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')
    curl -X PATCH {url}/api/v2/dags/ingest_mpd_crime_incidents -H "Authorization: Bearer $TOKEN" \\
      -H 'Content-Type: application/json' -d '{{"is_paused": false}}'
    curl -X POST {url}/api/v2/dags/ingest_mpd_crime_incidents/dagRuns -H "Authorization: Bearer $TOKEN" \\
      -H 'Content-Type: application/json' -d '{{"logical_date": null}}'"""


def _tail(path: Path, offset: int = 0, lines: int = 40) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return "\n".join(f.read().decode(errors="replace").splitlines()[-lines:])
    except OSError as err:
        return f"<cannot read {path}: {err}>"


# -------------------------------------------------------------------------------------------- stop
def stop(state_dir: Path | None = None, timeout: float = 150.0, quiet: bool = False) -> bool:
    """Stop the stack over `state_dir`; when it returns no process of it is left and its ports are free.

    SIGTERM to the supervisor, which stops its components in reverse order; a stack whose supervisor
    died (orphaned components) is stopped here, each process checked to be ours (AIM_STACK_DIR in
    its environment) before it is killed. False when nothing was running.
    """
    folder = stack_dir(state_dir)
    state = _state(folder)
    current = status(state_dir)
    found = bool(_processes_of(folder))
    if current["running"]:
        os.kill(state["supervisor"], signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while current["running"] and alive(state["supervisor"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    # Whatever is left (an orphan, or a supervisor that did not finish in time): kill it, group and all.
    for _ in range(3):
        left = _processes_of(folder)
        if not left:
            break
        for sig in (signal.SIGSTOP, signal.SIGKILL):  # frozen first: none restarts or reacts to another's end
            for pid in left:
                try:
                    os.kill(pid, sig)
                except (ProcessLookupError, PermissionError):
                    pass
        until = time.monotonic() + 10
        while any(alive(pid) for pid in left) and time.monotonic() < until:
            time.sleep(0.1)
    ports = [p for p in (state.get("api_port"), state.get("redis_port")) if p]
    until = time.monotonic() + 15
    while any(_listening(p) for p in ports) and time.monotonic() < until:
        time.sleep(0.2)
    busy = [p for p in ports if _listening(p)]
    left = _processes_of(folder)
    if left or busy:
        raise StackError(f"the stack did not stop: processes {left} still run, ports {busy} still in use")
    if not quiet:
        print("the stack is stopped" if current["running"] or found else "the stack was not running", flush=True)
    return current["running"] or found


# -------------------------------------------------------------------------------------- supervisor
def _metadata_url(warehouse: str) -> str:
    """AIM_STACK_METADATA_URL, or database `airflow` (created) on the warehouse's server."""
    from sqlalchemy.engine import make_url

    from aim_demo.databases import database_url, ensure_database

    url = os.environ.get("AIM_STACK_METADATA_URL")
    if not url:
        url = database_url(warehouse, "airflow")
        ensure_database(url, "airflow")
    return make_url(url).set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)


def _secret(path: Path, make) -> str:
    """The secret in `path`, generated (mode 0600) the first time."""
    if not path.exists():
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(make())
    return path.read_text().strip()


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def airflow_settings(folder: Path, metadata_url: str, redis_port: int, api_port: int) -> dict[str, str]:
    """The AIRFLOW__* settings every component shares (the same as docker-compose.yaml's
    x-airflow-common where they apply). They win over any AIRFLOW__* setting inherited from the
    environment; `start(settings=...)` overrides them (AIM_STACK_AIRFLOW_SETTINGS)."""
    home = folder / "airflow-home"
    result_backend = "db+" + metadata_url.replace("postgresql+psycopg2://", "postgresql://", 1)
    settings = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN}:admin",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://{HOST}:{api_port}/execution/",
        "AIRFLOW__CORE__FERNET_KEY": _secret(folder / "fernet.key", _fernet_key),
        # Task instances report the Celery node that ran them (two workers share this machine's name).
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "aim_demo.stack.worker_hostname",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url,
        "AIRFLOW__CELERY__BROKER_URL": f"redis://{HOST}:{redis_port}/0",
        "AIRFLOW__CELERY__RESULT_BACKEND": result_backend,
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
        # Airflow's Celery settings, plus Great Expectations imported once per worker, not per task
        "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS": "aim.celery_worker.CELERY_CONFIG",
        "AIRFLOW__API__BASE_URL": f"http://{HOST}:{api_port}",
        "AIRFLOW__API__HOST": HOST,
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__SECRET_KEY": _secret(folder / "api-secret.key", lambda: secrets.token_urlsafe(32)),
        "AIRFLOW__API_AUTH__JWT_SECRET": _secret(folder / "jwt-secret.key", lambda: secrets.token_urlsafe(32)),
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "True",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST": HOST,
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",  # a new source file shows up within half a minute
    }
    return {**settings, **json.loads(os.environ.get("AIM_STACK_AIRFLOW_SETTINGS") or "{}")}


def worker_hostname() -> str:
    """`[core] hostname_callable` of the stack: in a Celery worker its node name (worker1@host), so a
    task instance's hostname tells which worker ran it; elsewhere the machine's name."""
    name = socket.getfqdn()
    worker = os.environ.get("AIM_STACK_WORKER")
    return f"{worker}@{name}" if worker else name


class _Stopping(Exception):
    pass


def _on_signal(signum, frame):  # noqa: ARG001
    raise _Stopping()


def supervise(folder: Path, api_port: int, state_dir: Path | None) -> int:
    """The supervisor: hold the demo environment, run redis and every Airflow component, stop them on SIGTERM."""
    from aim_demo import local

    folder.mkdir(parents=True, exist_ok=True)
    lock = os.open(folder / "supervisor.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"another stack supervisor holds {folder}", file=sys.stderr)
        return 1
    (folder / "supervisor.pid").write_text(f"{os.getpid()}\n")
    state: dict[str, Any] = {"supervisor": os.getpid(), "api_port": api_port, "api_url": f"http://{HOST}:{api_port}",
                             "pids": {}, "started": {"supervisor": _start_time(os.getpid())}, "ready": False}
    _write_state(folder, state)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    if state_dir is not None:
        local.STATE_DIR = Path(state_dir)  # demo systems, exports and quality reports under it, not .aim
    if os.environ.get("AIM_STACK_RMS_URL"):  # the demo police system in another database (tests: their own)
        rms = os.environ["AIM_STACK_RMS_URL"]
        local.rms_url = lambda warehouse: rms  # noqa: ARG005
    children: list[tuple[str, subprocess.Popen]] = []
    try:
        from aim_demo.__main__ import _environment

        if local.uses_embedded_warehouse():  # started (if it is not running) without the stack's mark:
            marker = os.environ.pop("AIM_STACK_DIR")  # it is shared with `make demo` and outlives the stack
            try:
                local.warehouse_url()
            finally:
                os.environ["AIM_STACK_DIR"] = marker

        print("starting the warehouse and the demo departmental systems ...", flush=True)
        with _environment() as demo_env:
            os.environ.update(demo_env)
            metadata = _metadata_url(demo_env["AIM_WAREHOUSE_URL"])
            redis_port = free_port()
            state["redis_port"] = redis_port
            _write_state(folder, state)
            children.append(("redis", _start_redis(folder, redis_port)))
            _record(folder, state, *children[-1])

            env = {**os.environ, **airflow_settings(folder, metadata, redis_port, api_port),
                   "PATH": os.pathsep.join([str(VENV_BIN), os.environ.get("PATH", "")]), "AIM_STACK_DIR": str(folder)}
            home = Path(env["AIRFLOW_HOME"])
            home.mkdir(parents=True, exist_ok=True)
            passwords = home / PASSWORDS_FILE
            _secret(passwords, lambda: json.dumps({ADMIN: secrets.token_urlsafe(12)}) + "\n")
            state["passwords_file"] = str(passwords)
            print("preparing Airflow's metadata database (airflow db migrate) ...", flush=True)
            migrate_log = folder / "logs" / "db-migrate.log"
            with open(migrate_log, "wb") as out:
                migrated = subprocess.run([str(VENV_BIN / "airflow"), "db", "migrate"], env=env,
                                          stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            if migrated.returncode != 0:
                raise StackError(f"airflow db migrate failed:\n{_tail(migrate_log)}")

            for name, args in AIRFLOW_COMPONENTS.items():
                if name == "api-server":
                    args = [*args, "--host", HOST, "--port", str(api_port)]
                child_env = {**env, "AIM_STACK_WORKER": name} if name in WORKERS else env
                children.append((name, _spawn(folder, name, [str(VENV_BIN / "airflow"), *args], child_env)))
                _record(folder, state, *children[-1])

            _wait_ready(state["api_url"], env, children)
            state["ready"] = True
            _write_state(folder, state)
            print(f"ready: {state['api_url']}", flush=True)
            reported: set[str] = set()
            while True:
                for name, child in children:
                    if child.poll() is not None and name not in reported:
                        reported.add(name)
                        print(f"{name} (pid {child.pid}) exited with code {child.returncode}", flush=True)
                time.sleep(1)
    except _Stopping:
        print("stopping ...", flush=True)
        return 0
    except Exception as err:  # noqa: BLE001  the log says why; start() shows its tail
        print(f"the stack failed: {err}", flush=True)
        return 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the shutdown below runs to its end
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        started = dict(children)
        for tier in STOP_TIERS:
            _stop_children([(name, started[name]) for name in tier if name in started])
        print("stopped", flush=True)


def _record(folder: Path, state: dict[str, Any], name: str, child: subprocess.Popen) -> None:
    state["pids"][name] = child.pid
    state["started"][name] = _start_time(child.pid)
    _write_state(folder, state)


def _spawn(folder: Path, name: str, command: list[str], env: dict[str, str], cwd: Path | None = None) -> subprocess.Popen:
    log = folder / "logs" / f"{name}.log"
    with open(log, "ab") as out:
        out.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(command)}\n".encode())
        out.flush()
        return subprocess.Popen(command, env=env, cwd=str(cwd or folder), stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def _start_redis(folder: Path, port: int) -> subprocess.Popen:
    """Our own redis-server on 127.0.0.1:`port`, nothing saved to disk; returns once it answers PING."""
    data = folder / "redis"
    data.mkdir(exist_ok=True)
    command = [shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind", HOST,
               "--save", "", "--appendonly", "no", "--dir", str(data), "--protected-mode", "yes"]
    child = _spawn(folder, "redis", command, {**os.environ, "AIM_STACK_DIR": str(folder)}, cwd=data)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise StackError(f"redis-server exited with code {child.returncode}:\n{_tail(folder / 'logs' / 'redis.log')}")
        try:
            with socket.create_connection((HOST, port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(64).startswith(b"+PONG"):
                    return child
        except OSError:
            pass
        time.sleep(0.1)
    raise StackError(f"redis-server did not answer on {HOST}:{port}")


def _wait_ready(api_url: str, env: dict[str, str], children: list[tuple[str, subprocess.Popen]],
                timeout: float = 180.0) -> None:
    """Until the API server reports every component healthy and both Celery workers answer a ping."""
    from celery import Celery

    app = Celery(broker=env["AIRFLOW__CELERY__BROKER_URL"])
    deadline = time.monotonic() + timeout
    try:
        while True:
            for name, child in children:
                if child.poll() is not None:
                    raise StackError(f"{name} exited with code {child.returncode} while starting")
            if healthy(api_url):
                answered = {node.split("@", 1)[0] for reply in (app.control.ping(timeout=1.0) or []) for node in reply}
                if set(WORKERS) <= answered:
                    return
            if time.monotonic() > deadline:
                raise StackError(f"not ready after {timeout:.0f} s: see the component logs")
            time.sleep(1)
    finally:
        app.close()


def _stop_children(tier: list[tuple[str, subprocess.Popen]]) -> None:
    """SIGTERM to each main process of `tier` at once, then up to each one's timeout, then SIGKILL to its
    process group. Only the main process is told (as dumb-init does in the containers): a Celery worker
    then stops taking tasks and waits for its running ones (warm shutdown), where SIGTERM to its pool
    and task processes would kill them mid-task."""
    began = time.monotonic()
    for name, child in tier:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for name, child in tier:
        try:
            child.wait(timeout=max(0.0, began + STOP_TIMEOUTS.get(name, 15.0) - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"{name} did not stop in time: killed", flush=True)
            _signal_group(child.pid, signal.SIGKILL)
            child.wait(timeout=30)
        _signal_group(child.pid, signal.SIGKILL)  # stray members of its group (uvicorn workers, the Celery pool)
        print(f"{name} stopped ({time.monotonic() - began:.1f} s)", flush=True)


# ------------------------------------------------------------------------------------------- REST
class AirflowClient:
    """The stack's REST API (Airflow 3 /api/v2) with a token from POST /auth/token:

        client = AirflowClient("http://127.0.0.1:8080", "admin", password())
        client.unpause("ingest_mpd_crime_incidents")
        run = client.trigger("ingest_mpd_crime_incidents")
        client.wait_for_run("ingest_mpd_crime_incidents", run["dag_run_id"])
    """

    def __init__(self, api_url: str, username: str, password: str):
        self.api_url = api_url.rstrip("/")
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        token = self._call("POST", "/auth/token", {"username": username, "password": password}, auth=False)
        self._token = token["access_token"]

    def _call(self, method: str, path: str, body: Any = None, auth: bool = True) -> Any:
        request = urllib.request.Request(f"{self.api_url}{path}", method=method,
                                         data=None if body is None else json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json", "Accept": "application/json"})
        if auth:
            request.add_header("Authorization", f"Bearer {self._token}")
        try:
            with self._opener.open(request, timeout=30) as response:
                return json.load(response)
        except urllib.error.HTTPError as err:
            raise StackError(f"{method} {path}: HTTP {err.code} {err.read().decode(errors='replace')[:500]}") from None

    def get(self, path: str) -> Any:
        return self._call("GET", path)

    def unpause(self, dag_id: str, paused: bool = False) -> dict:
        """PATCH /api/v2/dags/{dag_id} {"is_paused": false} (`paused=True` pauses it)."""
        return self._call("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": paused})

    def trigger(self, dag_id: str, conf: dict | None = None) -> dict:
        """A new run of `dag_id` now (POST /api/v2/dags/{dag_id}/dagRuns); returns it."""
        return self._call("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf or {}})

    def runs(self, dag_id: str) -> list[dict]:
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns?order_by=-run_after&limit=100")["dag_runs"]

    def run(self, dag_id: str, run_id: str) -> dict:
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns/{urllib.request.quote(run_id, safe='')}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns/{urllib.request.quote(run_id, safe='')}"
                        "/taskInstances?limit=100")["task_instances"]

    @staticmethod
    def _task_instance(dag_id: str, run_id: str, task_id: str) -> str:
        """The API path of one task instance of a run."""
        return f"/api/v2/dags/{dag_id}/dagRuns/{urllib.request.quote(run_id, safe='')}/taskInstances/{task_id}"

    def tries(self, dag_id: str, run_id: str, task_id: str) -> list[dict]:
        """Every try of one task instance (earlier tries first, the current one last)."""
        return self.get(f"{self._task_instance(dag_id, run_id, task_id)}/tries")["task_instances"]

    def log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> str:
        """One try's task log as its lines of text (the API's structured events, their `event`s)."""
        path = f"{self._task_instance(dag_id, run_id, task_id)}/logs/{try_number}?full_content=true"
        content = self.get(path)["content"]
        return "\n".join(e.get("event", "") if isinstance(e, dict) else str(e) for e in content)

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 300.0) -> dict:
        """The run once it finished (success or failed); StackError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            run = self.run(dag_id, run_id)
            if run["state"] in ("success", "failed"):
                return run
            if time.monotonic() > deadline:
                raise StackError(f"{dag_id} run {run_id} still {run['state']} after {timeout:.0f} s")
            time.sleep(1)


def main(argv: list[str]) -> int:
    """`python -m aim_demo.stack supervise --stack-dir D --api-port N [--state-dir S]` (what start() runs)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m aim_demo.stack")
    parser.add_argument("command", choices=["supervise", "start", "stop", "status"])
    parser.add_argument("--stack-dir", type=Path)
    parser.add_argument("--state-dir", type=Path)
    parser.add_argument("--api-port", type=int, default=DEFAULT_API_PORT)
    args = parser.parse_args(argv)
    if args.command == "supervise":
        return supervise(args.stack_dir, args.api_port, args.state_dir)
    return cli(args.command, args.state_dir, args.api_port)


def cli(command: str, state_dir: Path | None = None, api_port: int = DEFAULT_API_PORT) -> int:
    """`python -m aim_demo stack|stack-stop|stack-status`: the Makefile's targets."""
    try:
        if command in ("start", "stack"):
            start(state_dir, api_port)
        elif command in ("stop", "stack-stop"):
            stop(state_dir)
        else:
            print(json.dumps(status(state_dir), indent=2))
    except StackError as err:
        print(err, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
