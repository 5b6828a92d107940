"""`recpipe up` / `status` / `down`: a Prefect server and an MLflow tracking server on
127.0.0.1 for one data directory, with their state under it by default.

`up` starts each server in its own process group (logs in `DATA/.servers/*.log`), waits until
both answer their health check and records them in `DATA/.servers/servers.json`; every later
`recpipe` command on that data directory reports to them (unless the environment names other
servers). `down` stops exactly the process groups `up` started.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from recpipe.errors import InputError
from recpipe.tasks.common.processes import group_alive, pid_alive

STATE_DIR = ".servers"
STATE_FILE = "servers.json"


@dataclass
class Server:
    name: str  # "prefect" or "mlflow"
    pid: int
    url: str  # what a person opens
    api: str  # what clients are given (PREFECT_API_URL / MLFLOW_TRACKING_URI)
    health: str
    log: str


def state_path(data_dir: Path) -> Path:
    return Path(data_dir) / STATE_DIR / STATE_FILE


def backend_urls(data_dir: Path, backend: str) -> tuple[str, str]:
    """(Prefect database URL, MLflow backend store URI) for `sqlite` (files under the data
    directory) or `postgresql://user:password@host:port/NAME`: Prefect in database
    `NAME_prefect`, MLflow in `NAME_mlflow` (each keeps its own migrations), created if
    missing."""
    if backend == "sqlite":
        return (
            f"sqlite+aiosqlite:///{Path(data_dir) / '.prefect' / 'prefect.db'}",
            f"sqlite:///{Path(data_dir) / 'mlflow.db'}",
        )
    if not backend.startswith(("postgresql://", "postgres://")):
        raise InputError(
            f"--backend {backend!r}: use sqlite or postgresql://user:password@host:port/name"
        )
    server, _, name = backend.split("://", 1)[1].rpartition("/")
    if not server or not name:
        raise InputError(f"--backend {backend!r}: the URL needs a database name at the end")
    for db in (f"{name}_prefect", f"{name}_mlflow"):
        _create_database(backend, db)
    return (
        f"postgresql+asyncpg://{server}/{name}_prefect",
        f"postgresql+psycopg2://{server}/{name}_mlflow",
    )


def _create_database(url: str, name: str) -> None:
    import psycopg2
    from psycopg2 import sql

    try:
        con = psycopg2.connect(url.replace("postgres://", "postgresql://", 1))
    except psycopg2.OperationalError as exc:
        raise InputError(f"--backend: cannot connect to PostgreSQL: {exc}".strip()) from None
    try:
        con.autocommit = True
        with con.cursor() as cur:
            cur.execute("select 1 from pg_database where datname = %s", (name,))
            if cur.fetchone() is None:
                cur.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    finally:
        con.close()


def running(data_dir: Path) -> list[Server]:
    """The servers `up` recorded for `data_dir` whose process is still alive."""
    path = state_path(data_dir)
    if not path.exists():
        return []
    servers = [Server(**s) for s in json.loads(path.read_text())]
    return [s for s in servers if pid_alive(s.pid)]


def client_environment(data_dir: Path) -> dict[str, str]:
    """PREFECT_API_URL and the MLflow tracking URI of the servers running for `data_dir`."""
    env = {}
    for server in running(data_dir):
        if server.name == "prefect":
            env["PREFECT_API_URL"] = server.api
        elif server.name == "mlflow":
            env["RECPIPE_MLFLOW_TRACKING_URI"] = server.api
            env["MLFLOW_TRACKING_URI"] = server.api
    return env


def up(
    data_dir: Path,
    backend: str = "sqlite",
    prefect_port: int = 4200,
    mlflow_port: int = 5000,
    timeout: float = 120.0,
) -> list[Server]:
    """Start both servers (or return the ones already running for this data directory)."""
    data_dir = Path(data_dir)
    already = running(data_dir)
    if already:
        return already
    prefect_db, mlflow_store = backend_urls(data_dir, backend)
    state = data_dir / STATE_DIR
    state.mkdir(parents=True, exist_ok=True)
    (data_dir / ".prefect").mkdir(exist_ok=True)
    for port in (prefect_port, mlflow_port):
        if _port_answers(port):
            raise InputError(f"port {port} on 127.0.0.1 is already in use; choose another one")
    bindir = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API_URL")}
    prefect_env = env | {
        "PREFECT_HOME": str(data_dir / ".prefect"),
        "PREFECT_API_DATABASE_CONNECTION_URL": prefect_db,
        "PREFECT_SERVER_API_HOST": "127.0.0.1",
        "PREFECT_SERVER_API_PORT": str(prefect_port),  # the UI calls the API on this port
        "PREFECT_UI_API_URL": f"http://127.0.0.1:{prefect_port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "true",
    }
    servers = [
        _start(
            "prefect",
            [str(bindir / "prefect"), "server", "start", "--host", "127.0.0.1",
             "--port", str(prefect_port)],
            prefect_env,
            state,
            url=f"http://127.0.0.1:{prefect_port}",
            api=f"http://127.0.0.1:{prefect_port}/api",
            health=f"http://127.0.0.1:{prefect_port}/api/health",
        ),
        _start(
            "mlflow",
            [str(bindir / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(mlflow_port),
             "--backend-store-uri", mlflow_store,
             "--default-artifact-root", (data_dir / "artifacts").resolve().as_uri(),
             "--workers", "1"],
            env | {"MLFLOW_DISABLE_TELEMETRY": "true"},
            state,
            url=f"http://127.0.0.1:{mlflow_port}",
            api=f"http://127.0.0.1:{mlflow_port}",
            health=f"http://127.0.0.1:{mlflow_port}/health",
        ),
    ]  # fmt: skip
    state_path(data_dir).write_text(json.dumps([asdict(s) for s in servers], indent=2))
    deadline = time.monotonic() + timeout
    for server in servers:
        while not healthy(server.health):
            if not pid_alive(server.pid) or time.monotonic() > deadline:
                down(data_dir)
                tail = Path(server.log).read_text(errors="replace").splitlines()[-15:]
                raise InputError(
                    f"the {server.name} server did not become healthy; its log "
                    f"{server.log} ends with:\n" + "\n".join(tail)
                )
            time.sleep(0.5)
    return servers


def down(data_dir: Path, timeout: float = 30.0) -> list[str]:
    """Stop the process groups `up` started for `data_dir`; the names of those stopped."""
    path = state_path(data_dir)
    if not path.exists():
        return []
    servers = [Server(**s) for s in json.loads(path.read_text())]
    stopped = []
    for server in servers:
        if pid_alive(server.pid):
            _stop_group(server.pid, timeout)
            stopped.append(server.name)
    path.unlink(missing_ok=True)
    return stopped


def _start(
    name: str, cmd: list[str], env: dict, state: Path, url: str, api: str, health: str
) -> Server:
    log = state / f"{name}.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            cmd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: `down` stops it and its children
        )
    return Server(name, proc.pid, url, api, health, str(log))


def _stop_group(pid: int, timeout: float) -> None:
    """SIGINT (servers shut down cleanly on it), then SIGTERM, then SIGKILL to the group."""
    for sig, wait in ((signal.SIGINT, timeout / 2), (signal.SIGTERM, timeout / 2)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not group_alive(pid):
                return
            time.sleep(0.2)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def _port_answers(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0
