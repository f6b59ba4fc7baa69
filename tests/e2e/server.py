"""The real Kinship app for the browser journeys: gunicorn on a free port, on a scratch
database that is migrated, loaded and seeded through the same commands an operator runs.

``TEST_DATABASE_URL`` set: a scratch PostgreSQL database ``kinship_e2e_<pid>`` is created
with that role (it needs CREATEDB) and dropped afterwards; otherwise a temporary SQLite
file. Nothing here touches the database the rest of the suite uses.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parents[2]
GUNICORN_CONF = REPO / "platform" / "gunicorn.conf.py"
START_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ScratchDatabase:
    """A database made for one run and removed after it."""

    url: str
    admin_url: str | None = None  # PostgreSQL: where CREATE/DROP DATABASE are run
    name: str | None = None

    @classmethod
    def create(cls, test_database_url: str | None, tmp: Path) -> ScratchDatabase:
        if not test_database_url:
            return cls(url=f"sqlite:///{tmp / 'e2e.sqlite3'}")
        name = f"kinship_e2e_{os.getpid()}"
        admin = test_database_url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        base, _, _ = admin.rpartition("/")
        return cls(url=f"{base}/{name}", admin_url=admin, name=name)

    def drop(self) -> None:
        if self.admin_url and self.name:
            with psycopg.connect(self.admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


@dataclass
class Server:
    """A running gunicorn serving ``wsgi:app`` in demo mode, and the CLI beside it."""

    base_url: str
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen | None = None
    #: the recruiting site whose next allocation is the guided arm (``trial_site``)
    site: str = ""
    timings: dict[str, float] = field(default_factory=dict)

    def flask(self, *args: str) -> str:
        """Run ``flask --app wsgi ...`` against the same database; return its output."""
        result = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", *args],
                                cwd=REPO, env=self.env, capture_output=True, text=True,
                                timeout=300, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"flask {' '.join(args)} failed ({result.returncode}):\n"
                               f"{result.stdout}\n{result.stderr}")
        return result.stdout

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and config
            [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF), "wsgi:app"],
            cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}:\n"
                                   f"{self.log_tail()}")
            if _healthy(self.base_url):
                return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"gunicorn did not answer /healthz within {START_TIMEOUT:.0f} s:\n"
                           f"{self.log_tail()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)  # the master and its workers
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def _healthy(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/healthz", timeout=2) as response:  # noqa: S310
            return response.status == 200
    except OSError:
        return False


def server_env(database_url: str, instance: Path, port: int) -> dict[str, str]:
    """The environment of the web app and of every CLI call: development and demo mode,
    the console SMS backend, cheap password hashing (the journeys sign in often)."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("KINSHIP_", "GUNICORN_", "TWILIO_", "SMS_"))}
    env.update({
        "KINSHIP_ENV": "development",
        "KINSHIP_DEMO": "1",
        "KINSHIP_INSTANCE_PATH": str(instance),
        "DATABASE_URL": database_url,
        "SECRET_KEY": secrets.token_urlsafe(48),
        "PUBLIC_URL": f"http://127.0.0.1:{port}",
        "SMS_BACKEND": "console",
        "ARGON2_TIME_COST": "1",
        "ARGON2_MEMORY_COST": "8192",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "2",
        "GUNICORN_LOG_LEVEL": "warning",
        "PYTHONUNBUFFERED": "1",
    })
    env.pop("FLASK_DEBUG", None)
    return env


def prepare(server: Server) -> None:
    """Migrate, load the module library and seed the demo study, as ``make run`` does."""
    for step in (("db", "upgrade"), ("modules", "sync"), ("demo", "seed")):
        started = time.monotonic()
        server.flask(*step)
        server.timings[" ".join(step)] = time.monotonic() - started
