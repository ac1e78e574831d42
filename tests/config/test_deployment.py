"""The docker-compose deployment as far as it runs without Docker: the shipped proxy config
(deploy/nginx/loopwork.conf) in front of the production web command (`gunicorn -c config/gunicorn.conf.py
config.wsgi:application`), both really started with DEBUG off, on free ports of 127.0.0.1, in a temporary
folder, as an unprivileged user when the suite runs as root (nobody; gunicorn too, unless this Python
lies where nobody cannot run it, in root's home).

127.0.0.1 plays the proxy's address (FORWARDED_ALLOW_IPS, as docker-compose sets the proxy's); a client that
reaches gunicorn directly connects from 127.0.0.2.
"""

import contextlib
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import pytest
import yaml

from tests.config.test_production_settings import production_env
from tests.faults.servers import free_port, run
from tests.training.conftest import wait_for

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "deploy" / "nginx" / "loopwork.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
RANKING_JS = ROOT / "static" / "js" / "workspace" / "ranking.js"
PROXY, STRANGER = "127.0.0.1", "127.0.0.2"
# Gunicorn's worker threads in this test: 2 workers, GUNICORN_THREADS' default of 4.
WEB_THREADS = 2 * 4
# The image's /etc/nginx/nginx.conf (nginxinc/nginx-unprivileged), with its paths in our folder.
MAIN_CONF = """daemon off;
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log;
events {{ worker_connections 256; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log off;
    client_body_temp_path {folder}/client_temp;
    proxy_temp_path {folder}/proxy_temp;
    fastcgi_temp_path {folder}/fastcgi_temp;
    uwsgi_temp_path {folder}/uwsgi_temp;
    scgi_temp_path {folder}/scgi_temp;
    include loopwork.conf;
}}
"""
# This environment's settings that the test sets itself or leaves to their defaults.
DEPLOYMENT_SETTINGS = ("GUNICORN_", "WEB_CONCURRENCY", "FORWARDED_ALLOW_IPS", "TRUST", "STATIC_ROOT")
# Gunicorn's access log, one line per request: what reached it from the proxy.
ACCESS_FORMAT = "%(U)s?%(q)s proto=%({x-forwarded-proto}i)s for=%({x-forwarded-for}i)s"


def unprivileged() -> dict:
    """Popen arguments that drop root to nobody (nothing when the suite is not root)."""
    if os.geteuid() != 0:
        return {}
    nobody = pwd.getpwnam("nobody")
    return {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}


def unprivileged_python() -> dict:
    """unprivileged(), if that user can run this interpreter (not when it lies in root's home)."""
    try:
        subprocess.run([sys.executable, "-c", ""], check=True, timeout=60, **unprivileged())
    except (OSError, subprocess.CalledProcessError):
        return {}
    return unprivileged()


def own(folder: Path) -> None:
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        for path in [folder, *folder.rglob("*")]:
            os.chown(path, nobody.pw_uid, nobody.pw_gid)


def shipped_config(*, http_port: int, https_port: int, web_port: int) -> str:
    """deploy/nginx/loopwork.conf with only what differs here replaced: its ports and the web's address."""
    text = SHIPPED.read_text()
    for deployed, here in [
        ("listen 8080;", f"listen {PROXY}:{http_port};"),
        ("listen 8443 ssl;", f"listen {PROXY}:{https_port} ssl;"),
        ("http://web:8000", f"http://{PROXY}:{web_port}"),
    ]:
        assert text.count(deployed) == 1, f"{SHIPPED.name} no longer holds {deployed!r} once"
        text = text.replace(deployed, here)
    return text


class Deployment:
    """The proxy's folder (its configuration and a self-signed certificate) and the servers started in it."""

    def __init__(self) -> None:
        # Under /tmp, not pytest's tmp_path (mode 700): nobody must reach the folder.
        self.folder = Path(tempfile.mkdtemp(prefix="loopwork-proxy-"))
        self.http_port, self.https_port, self.web_port = free_port(), free_port(), free_port()
        self.processes: list[subprocess.Popen] = []
        (self.folder / "certs").mkdir()
        # The self-signed certificate the deployment docs give for a trial: the same command.
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-days", "30", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
             "-keyout", "certs/privkey.pem", "-out", "certs/fullchain.pem"], cwd=self.folder)  # fmt: skip
        (self.folder / "nginx.conf").write_text(MAIN_CONF.format(folder=self.folder))
        (self.folder / "loopwork.conf").write_text(
            shipped_config(http_port=self.http_port, https_port=self.https_port, web_port=self.web_port)
        )
        own(self.folder)

    def nginx(self, *args: str) -> list[str]:
        return [NGINX, "-p", f"{self.folder}/", "-c", str(self.folder / "nginx.conf"), *args]

    def start(self, command: list[str], env: dict | None, log: str, user: dict) -> subprocess.Popen:
        with (self.folder / log).open("ab") as out:
            process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, stopped whole by destroy()
                **user,
            )
        self.processes.append(process)
        return process

    def start_web(self) -> None:
        """The production web command, as docker-compose's web service runs it."""
        outer = {k: v for k, v in production_env().items() if not k.startswith(DEPLOYMENT_SETTINGS)}
        env = {
            **outer,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "HOME": str(self.folder),
            "GUNICORN_BIND": f"127.0.0.1:{self.web_port}",
            "GUNICORN_WORKERS": "2",
            "FORWARDED_ALLOW_IPS": PROXY,
            "TRUSTED_PROXY_COUNT": "1",
            "GUNICORN_ACCESS_LOG": str(self.folder / "access.log"),
            "GUNICORN_CMD_ARGS": f"--access-logformat '{ACCESS_FORMAT}'",
        }
        gunicorn = str(Path(sys.executable).parent / "gunicorn")
        command = [gunicorn, "-c", "config/gunicorn.conf.py", "config.wsgi:application"]
        web = self.start(command, env, "web.log", unprivileged_python())
        what = f"gunicorn to answer\n{self.tail('web.log')}"
        wait_for(lambda: self.web_answers(web), what=what, limit=120, every=0.1)

    def web_answers(self, web: subprocess.Popen) -> bool:
        assert web.poll() is None, f"gunicorn exited:\n{self.tail('web.log')}"
        try:
            return httpx.get(f"http://{PROXY}:{self.web_port}/api/v1/", timeout=5).status_code > 0
        except httpx.TransportError:
            return False

    def start_proxy(self) -> None:
        proxy = self.start(self.nginx(), None, "nginx.log", unprivileged())
        what = f"nginx to answer\n{self.tail('error.log')}"
        wait_for(lambda: self.proxy_answers(proxy), what=what, limit=60, every=0.1)

    def proxy_answers(self, proxy: subprocess.Popen) -> bool:
        assert proxy.poll() is None, f"nginx exited:\n{self.tail('nginx.log')}{self.tail('error.log')}"
        try:
            with socket.create_connection((PROXY, self.https_port), timeout=5):
                return True
        except OSError:
            return False

    def tail(self, log: str) -> str:
        path = self.folder / log
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def access_line(self, marker: str) -> str:
        lines = (self.folder / "access.log").read_text().splitlines() if self.tail("access.log") else []
        return next((line for line in lines if marker in line), "")

    def destroy(self) -> None:
        for process in self.processes:  # nothing of theirs needs keeping: no graceful shutdown
            with contextlib.suppress(ProcessLookupError):  # already gone, with its whole group
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture(scope="module")
def deployment():
    if not Path(NGINX).exists():
        pytest.skip("no nginx: `make nginx` installs Debian's")
    deployment = Deployment()
    try:
        yield deployment
    finally:
        deployment.destroy()


@pytest.fixture(scope="module")
def running(deployment):
    deployment.start_web()
    deployment.start_proxy()
    return deployment


def https(deployment: Deployment) -> httpx.Client:
    return httpx.Client(base_url=f"https://{PROXY}:{deployment.https_port}", verify=False, timeout=15)


def stranger() -> httpx.Client:
    """A client that reaches gunicorn directly, from an address that is not the proxy's."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=STRANGER), timeout=15)


def test_compose_exposes_only_the_proxy_and_runs_what_is_tested_here():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    web, proxy, redis = compose["web"], compose["proxy"], compose["redis"]
    assert "ports" not in web and web["expose"] == ["8000"]
    assert all("ports" not in service for name, service in compose.items() if name != "proxy")
    assert proxy["ports"] == ["80:8080", "443:8443"]  # the ports loopwork.conf listens on
    assert "./deploy/nginx/loopwork.conf:/etc/nginx/conf.d/default.conf:ro" in proxy["volumes"]
    assert "./deploy/certs:/etc/nginx/certs:ro" in proxy["volumes"]  # its certs/, relative to /etc/nginx/
    assert "http://web:8000" in SHIPPED.read_text() and web["environment"]["GUNICORN_BIND"] == "0.0.0.0:8000"
    # Only the proxy's X-Forwarded-Proto is believed, and only one X-Forwarded-For entry counted.
    assert web["environment"]["FORWARDED_ALLOW_IPS"] == proxy["networks"]["default"]["ipv4_address"]
    assert web["environment"]["TRUSTED_PROXY_COUNT"] == "1"
    assert web["command"].endswith('&& gunicorn -c config/gunicorn.conf.py config.wsgi:application"')
    # Redis keeps its queue across a restart: an append-only file on a volume.
    assert "--appendonly yes" in redis["command"] and any(v.endswith(":/data") for v in redis["volumes"])


def test_the_shipped_proxy_config_parses(deployment):
    done = subprocess.run(
        deployment.nginx("-t"), capture_output=True, text=True, timeout=60, **unprivileged()
    )
    assert done.returncode == 0, done.stderr
    assert "syntax is ok" in done.stderr and "test is successful" in done.stderr


def test_static_files_answer_with_debug_off(running):
    with https(running) as client:
        response = client.get("/static/js/workspace/ranking.js")
    assert response.status_code == 200
    assert "javascript" in response.headers["content-type"]
    assert response.content == RANKING_JS.read_bytes()


def test_only_the_proxy_says_a_request_came_over_https(running):
    web = f"http://127.0.0.1:{running.web_port}/api/v1/"
    spoofed = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    # Straight to gunicorn from elsewhere: the header is ignored, Django sends the client to HTTPS.
    with stranger() as client:
        response = client.get(web, headers=spoofed)
    assert response.status_code == 301 and response.headers["location"].startswith("https://")
    # The proxy's address is believed (what lets the proxy below say https).
    assert httpx.get(web, headers=spoofed, timeout=15).status_code == 401
    # Plain HTTP at the proxy: redirected to HTTPS by the proxy itself, whatever the client claims.
    response = httpx.get(f"http://{PROXY}:{running.http_port}/api/v1/?q=1", headers=spoofed, timeout=15)
    assert response.status_code == 301 and response.headers["location"] == f"https://{PROXY}/api/v1/?q=1"
    # Over HTTPS at the proxy, the client's claims are overwritten with what the proxy saw.
    with https(running) as client:
        response = client.get("/api/v1/?probe=forwarded", headers={**spoofed, "X-Forwarded-Proto": "http"})
    assert response.status_code == 401  # the API's answer: Django saw HTTPS, so did not redirect
    line = wait_for(lambda: running.access_line("probe=forwarded"), what="the access log line", limit=30)
    assert line.endswith("proto=https for=127.0.0.1"), line


SLOW_HEADERS = b"GET /api/v1/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
# The login form's body, which Django's CSRF check reads (given an allowed origin and a CSRF cookie): were it
# passed on as it arrives, a gunicorn thread would wait for it.
SLOW_BODY = (
    b"POST /accounts/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: https://127.0.0.1\r\n"
    b"Cookie: csrftoken=" + b"a" * 32 + b"\r\n"
    b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 10000\r\n\r\nusername="
)


def hold_slow_clients(deployment: Deployment, *, headers: int, bodies: int) -> list[socket.socket]:
    """Clients through the proxy, each stopped halfway through its headers or its body."""
    tls = ssl.create_default_context()
    tls.check_hostname, tls.verify_mode = False, ssl.CERT_NONE
    held = []
    for start in [SLOW_HEADERS] * headers + [SLOW_BODY] * bodies:
        sock = tls.wrap_socket(socket.create_connection((PROXY, deployment.https_port), timeout=15))
        sock.sendall(start)
        held.append(sock)
    return held


def open_connections(port: int) -> int:
    """Established TCP connections to a local port (iproute2's ss, which nginx's package depends on)."""
    listed = run(["ss", "-Htn", "state", "established", f"( sport = :{port} )"])
    return len(listed.splitlines())


def test_slow_clients_do_not_take_the_site_down(running):
    # The three slow sockets, straight at gunicorn: they hold three threads, not the site.
    direct = [socket.create_connection((PROXY, running.web_port), timeout=15) for _ in range(3)]
    for sock in direct:
        sock.sendall(SLOW_HEADERS)
    # As many slow uploads at the proxy as gunicorn has threads, and slow headers: the proxy holds them all.
    held = hold_slow_clients(running, headers=4, bodies=WEB_THREADS)
    try:
        # Once the proxy has answered a later request of its own, it has read what the slow clients sent:
        # none of their uploads reached gunicorn, only the three direct clients are connected to it.
        assert httpx.get(f"http://{PROXY}:{running.http_port}/", timeout=15).status_code == 301
        assert open_connections(running.web_port) < WEB_THREADS
        with https(running) as client:
            assert client.get("/api/v1/").status_code == 401
            assert client.get("/accounts/login/").status_code == 200
        with stranger() as client:
            assert client.get(f"http://127.0.0.1:{running.web_port}/api/v1/").status_code == 301
    finally:
        for sock in direct + held:
            sock.close()
