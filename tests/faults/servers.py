"""Real servers for the fault tests: a throwaway Postgres cluster and the app under gunicorn.

Both live in temporary folders on free ports of 127.0.0.1, so the shared Postgres and Redis are never
touched, and both are stopped by their fixtures even when a test fails.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import psycopg

from tests.training.conftest import wait_for

ROOT = Path(__file__).resolve().parents[2]
PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(command: list[str], **kwargs) -> str:
    """Run a command to its end; its stdout, or an AssertionError that shows what it said."""
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, **kwargs)
    assert done.returncode == 0, (
        f"{' '.join(command[:4])}... exited {done.returncode}:\n{done.stderr[-3000:]}"
    )
    return done.stdout


class Cluster:
    """A Postgres cluster of our own: initdb in a temporary folder, one database `loopwork`."""

    def __init__(self) -> None:
        # Under /tmp, not pytest's tmp_path (mode 700): the postgres user must reach the folder.
        self.folder = Path(tempfile.mkdtemp(prefix="loopwork-pg-"))
        self.data = self.folder / "data"
        self.port = free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/loopwork"

    def dsn(self, database: str = "loopwork") -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={database}"

    def _pg(self, program: str, *args: str) -> None:
        command = [str(PG_BIN / program), *args]
        if os.geteuid() == 0:  # initdb refuses root: then Postgres runs as the postgres user
            command = ["runuser", "-u", "postgres", "--", *command]
        run(command)

    def create(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        self._pg("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        self.start()
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE loopwork")

    def start(self) -> None:
        """Start, and return once the server accepts connections (pg_ctl -w)."""
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
        log = str(self.folder / "server.log")
        self._pg("pg_ctl", "-D", str(self.data), "-l", log, "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """pg_ctl stop: "fast" is a clean shutdown, "immediate" a crash (WAL recovery at the next start)."""
        self._pg("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self.stop("immediate")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


class Gunicorn:
    """`gunicorn config.wsgi:application` with 2 sync workers, on a free port, with the given environment."""

    def __init__(self, env: dict[str, str], log: Path, *, timeout: int) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        command = [str(Path(sys.executable).parent / "gunicorn"), "config.wsgi:application"]
        command += ["--workers", "2", "--bind", f"127.0.0.1:{port}", "--timeout", str(timeout)]
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(self._answers, what=f"gunicorn to answer\n{self.tail()}", limit=120)

    def _answers(self) -> bool:
        assert self.process.poll() is None, f"gunicorn exited:\n{self.tail()}"
        try:
            return httpx.get(f"{self.url}/api/v1/", timeout=5).status_code == 401
        except httpx.TransportError:
            return False

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
