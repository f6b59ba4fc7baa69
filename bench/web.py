"""Benchmark: the real app under gunicorn on PostgreSQL with 5,000 participants, pages
against the single-query endpoint of the same app, in the same run.

    .venv/bin/python bench/web.py [--participants 5000] [--workers N] [--duration 300]
                                  [--step 5] [--rounds 5] [--database-url postgresql://...]

Setup: a scratch database ``kinship_bench_<pid>`` (dropped afterwards) is made with the
role of ``--database-url`` (default ``postgresql://kinship:kinship@127.0.0.1:5432/
postgres``; it needs CREATEDB), migrated, loaded (``flask modules sync``) and seeded with
the demo study (``flask demo seed --participants 30``), as an operator would; then bulk
inserts scale the study to ``--participants``: randomised participants in both arms, each
on the caseload of one of 50 moderators (about 100 each), with 40 days of activity events,
moods, SMS prompts and replies, module progress, and forum posts and comments (guided arm).
Gunicorn runs with ``platform/gunicorn.conf.py`` (its worker count unless ``--workers``).

The load generator is a small threaded HTTP client (``http.client``; gunicorn's sync
workers close each connection, so keep-alive is attempted and reconnects are counted in
the time). Its ramps and paced runs are spread over ``PACERS`` processes, so the client's
own GIL does not cap the baseline. Every virtual user signs in through the login form
(CSRF token, session cookie; the clinician types the two-step code demo mode shows on the
page). Pages: ``endpoint`` (``/healthz``, one ``SELECT 1``, the baseline), ``home``
(``/modules/today``, where a randomised participant's home leads), ``step`` (a module
step), ``forum`` (the feed) and ``dashboard`` (the clinician's caseload, about 100
people). ``help`` (the crisis page, signed in: one settings read) is measured too, without
a goal: the cost every signed-in page pays (session, consent and two-step checks,
navigation, layout) before its own work.

Figures: for each page, throughput as closed-loop concurrency ramps 1, 2, 4, 8, 16, 32
(``--step`` seconds each; saturation = the best), then p95 latency with requests paced at
half that throughput (sent from ``PACERS`` processes, so the client keeps up); then
``--duration`` seconds of 50 users on the pages, counting errors (any status but 200, any
exception; the ramps' errors count too). Then ``--rounds`` interleaved rounds measure
throughput again: each round visits every page for ``--step`` seconds at the concurrency
that saturated it, so the endpoint and each page are measured seconds apart, not minutes.
``web_<page>`` is the median over the rounds of endpoint rps / page rps (goal 2.5, i.e.
40 %; the ramps' ratio of best rates is printed beside it); ``web_errors`` goal 0
(interleaved rounds' errors count too).

The p95 at half load is taken twice: as the client saw it (from sending to the whole
answer) and as gunicorn's access log has it (``%(D)s``: the worker's time on the request,
so not the wait in the listen queue). On two cores shared with the client, the client's
figure holds the client's own scheduling delays (the baseline's p95 read 28 to 164 ms in
runs 4 to 9, against a few ms in the server), so ``web_p95_<page>`` (goal 3) divides the
page's server-side p95 by the endpoint's.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import platform
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from web_seed import CLINICIAN, bulk_seed

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
GUNICORN_CONF = REPO / "platform" / "gunicorn.conf.py"
DEMO_PASSWORD = "kinship-demo-2026"  # noqa: S105 - outcomes/demo.py, demo mode only
RAMP = (1, 2, 4, 8, 16, 32)
#: processes that send the paced requests (p95 at half load)
PACERS = 4
PAGE_GOAL = 2.5
P95_GOAL = 3.0
CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
CODE = re.compile(r'<strong class="code">\s*([0-9]+)\s*</strong>')


# --- the server --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def scratch_database(admin_url: str) -> tuple[str, str]:
    """Create ``kinship_bench_<pid>``; return its URL and name."""
    name = f"kinship_bench_{os.getpid()}"
    admin = admin_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{admin.rpartition('/')[0]}/{name}", name


def drop_database(admin_url: str, name: str) -> None:
    admin = admin_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def server_env(database_url: str, instance: Path, port: int, workers: int | None,
               page_cache_seconds: float | None = None) -> dict:
    """Development and demo mode (the demo two-step codes), console SMS, cheap hashing."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("KINSHIP_", "GUNICORN_", "TWILIO_", "SMS_"))}
    env.update({
        "KINSHIP_ENV": "development", "KINSHIP_DEMO": "1",
        "KINSHIP_INSTANCE_PATH": str(instance), "DATABASE_URL": database_url,
        "SECRET_KEY": secrets.token_urlsafe(48), "PUBLIC_URL": f"http://127.0.0.1:{port}",
        "SMS_BACKEND": "console", "ARGON2_TIME_COST": "1", "ARGON2_MEMORY_COST": "8192",
        "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_LOG_LEVEL": "warning",
        "LOGIN_MAX_FAILURES_IP": "100000", "PYTHONUNBUFFERED": "1",
    })
    if workers:
        env["GUNICORN_WORKERS"] = str(workers)
    env.pop("PAGE_CACHE_SECONDS", None)
    if page_cache_seconds is not None:
        env["PAGE_CACHE_SECONDS"] = str(page_cache_seconds)
    env.pop("FLASK_DEBUG", None)
    return env


def flask(env: dict, *args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", *args],  # noqa: S603
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=1800,
                            check=False)
    if result.returncode:
        raise SystemExit(f"flask {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


#: the bench's access-log line: path, status, microseconds the worker spent on the request
ACCESS_FORMAT = "kinship-bench %(U)s %(s)s %(D)s"
ACCESS_LINE = re.compile(r"^kinship-bench (\S+) (\d{3}) (\d+)$")


def start_gunicorn(env: dict, log: Path) -> subprocess.Popen:
    with log.open("ab") as out:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and config
            [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF),
             "--access-logformat", ACCESS_FORMAT, "wsgi:app"],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    host, port = env["GUNICORN_BIND"].split(":")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited:\n{log.read_text()[-3000:]}")
        try:
            if fetch(Client(host, int(port)), "/healthz")[0] == 200:
                return process
        except OSError:
            pass
        time.sleep(0.3)
    stop(process)
    raise SystemExit("gunicorn did not answer /healthz within 60 s")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


# --- the load generator ------------------------------------------------------------------


@dataclass
class Client:
    """One virtual user: a connection (reopened when the server closes it) and cookies."""

    host: str
    port: int
    cookies: dict[str, str] = field(default_factory=dict)
    conn: http.client.HTTPConnection | None = None


def fetch(client: Client, path: str, form: dict | None = None) -> tuple[int, str, str]:
    """GET (or POST ``form``); return status, body and Location."""
    headers = {"Connection": "keep-alive", "Host": f"{client.host}:{client.port}"}
    if client.cookies:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    body = None
    if form is not None:
        body = urllib.parse.urlencode(form)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    for attempt in (1, 2):
        if client.conn is None:
            client.conn = http.client.HTTPConnection(client.host, client.port, timeout=60)
        try:
            client.conn.request("POST" if form is not None else "GET", path, body, headers)
            response = client.conn.getresponse()
            text = response.read().decode("utf-8", "replace")
            break
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            if client.conn is not None:
                client.conn.close()
            client.conn = None
            if attempt == 2:
                raise
    for header in response.headers.get_all("Set-Cookie") or []:
        name, _, value = header.split(";", 1)[0].partition("=")
        client.cookies[name.strip()] = value
    if response.getheader("Connection", "").lower() == "close":
        client.conn.close()
        client.conn = None
    return response.status, text, response.getheader("Location", "")


def clone(client: Client) -> Client:
    """Another connection with the same session (a second tab): threads never share one."""
    return Client(client.host, client.port, dict(client.cookies))


def sign_in(host: str, port: int, identifier: str) -> Client:
    client = Client(host, port)
    _, page, _ = fetch(client, "/login")
    status, answer, location = fetch(client, "/login", {
        "csrf_token": CSRF.search(page).group(1), "identifier": identifier,
        "password": DEMO_PASSWORD, "next": ""})
    if status == 302 and location.endswith("/login/code"):
        _, page, _ = fetch(client, "/login/code")
        status, _, location = fetch(client, "/login/code", {
            "csrf_token": CSRF.search(page).group(1), "code": CODE.search(page).group(1)})
    if status != 302 or "/login" in location:
        errors = re.findall(r'class="[^"]*error[^"]*"[^>]*>([^<]+)', answer)
        raise SystemExit(f"{identifier} could not sign in ({status} -> {location}): {errors}")
    return client


@dataclass
class Tally:
    times: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, seconds: float, error: str | None) -> None:
        with self.lock:
            self.times.append(seconds)
            if error:
                self.errors.append(error)


def hit(client: Client, path: str, tally: Tally, started: float) -> None:
    try:
        status, _, _ = fetch(client, path)
        error = None if status == 200 else f"{status} {path}"
    except (OSError, http.client.HTTPException) as exc:
        client.conn = None
        error = f"{type(exc).__name__} {path}"
    tally.add(time.perf_counter() - started, error)


def closed_loop(clients: list[Client], paths: list[str], seconds: float) -> Tally:
    """Each client requests its path again as soon as the last answer came; the clients are
    spread over up to ``PACERS`` processes (one Python process's threads queue for the GIL
    at the baseline's 1,000 rps and would cap it)."""
    users = [(client, paths[n % len(paths)]) for n, client in enumerate(clients)]
    count = min(PACERS, len(users))
    begin = time.perf_counter() + 0.3  # every process starts at once (the same clock)
    return in_processes(_loop_share, count,
                        ([users[n::count] for n in range(count)], begin, begin + seconds))


def in_processes(share, count: int, work: tuple) -> Tally:
    """Run ``share(index)`` in ``count`` forked processes, each reading ``work`` (left in
    ``_WORK`` for the fork to copy: clients hold sockets, which do not pickle); one tally."""
    global _WORK
    _WORK = work
    with multiprocessing.get_context("fork").Pool(count) as pool:
        parts = pool.map(share, range(count))
    tally = Tally()
    for times, errors in parts:
        tally.times.extend(times)
        tally.errors.extend(errors)
    return tally


_WORK: tuple = ()


def _loop_share(index: int) -> tuple[list[float], list[str]]:
    shares, begin, deadline = _WORK
    users, tally = shares[index], Tally()
    time.sleep(max(0.0, begin - time.perf_counter()))

    def user(n: int) -> None:
        client, path = users[n]
        while time.perf_counter() < deadline:
            hit(client, path, tally, time.perf_counter())

    run_threads(user, len(users))
    return tally.times, tally.errors


def paced(clients: list[Client], path: str, rate: float, seconds: float) -> Tally:
    """Requests started at ``rate`` per second in all, from ``PACERS`` processes whose
    schedules interleave. One Python process cannot keep a steady 450 rps on two shared
    cores: its threads queue for the GIL, and runs 4 and 5 showed that queueing as the
    baseline's own p95 (45 to 164 ms). Latency counts from the send, not from the planned
    arrival: a backlog would be the client's lag, not the server's."""
    shares = [share for share in (clients[n::PACERS] for n in range(PACERS)) if share]
    return in_processes(_paced_share, len(shares),
                        (shares, path, rate, seconds, time.perf_counter() + 0.5))


def _paced_share(index: int) -> tuple[list[float], list[str]]:
    """One pacing process: every ``len(shares)``-th request of the common schedule
    (``perf_counter`` is the system's monotonic clock, the same in every process)."""
    shares, path, rate, seconds, begin = _WORK
    clients, step = shares[index], len(shares)
    tally, counter, lock = Tally(), iter(range(index, 10**9, step)), threading.Lock()
    last = int(rate * seconds)

    def user(n: int) -> None:
        while True:
            with lock:
                number = next(counter)
            if number >= last:
                return
            time.sleep(max(0.0, begin + number / rate - time.perf_counter()))
            hit(clients[n], path, tally, time.perf_counter())

    run_threads(user, len(clients))
    return tally.times, tally.errors


def run_threads(target, count: int) -> None:
    threads = [threading.Thread(target=target, args=(n,), daemon=True) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) > 1 else values[0]


def server_times(log: Path, offset: int, path: str) -> list[float]:
    """Seconds the workers spent on each request for ``path`` logged after byte
    ``offset`` of gunicorn's log (from parsing the request to sending the response; the
    wait in the listen queue is not in it)."""
    time.sleep(0.3)  # a worker logs a request just after its client has the answer
    with log.open("rb") as handle:
        handle.seek(offset)
        lines = handle.read().decode(errors="replace").splitlines()
    return [int(found[3]) / 1e6 for found in map(ACCESS_LINE.match, lines)
            if found and found[1] == path]


def measure_page(make, path: str, step: float, log: Path) -> dict:
    """The ramp (saturation rps), then p95 at half of it, as the client saw it and as the
    server's access log has it."""
    best, best_users, errors = 0.0, 1, 0
    for users in RAMP:
        tally = closed_loop(make(users), [path], step)
        errors += len(tally.errors)
        rps = (len(tally.times) - len(tally.errors)) / step
        print(f"    {users:3d} users: {rps:7.1f} rps, median "
              f"{statistics.median(tally.times) * 1000:6.1f} ms, errors {len(tally.errors)}")
        if rps > best:
            best, best_users = rps, users
    seconds = max(step * 2, 10)
    offset = log.stat().st_size
    half = paced(make(max(4, best_users)), path, best / 2, seconds)
    served = server_times(log, offset, path)
    print(f"    paced at {best / 2:.1f} rps (achieved {len(half.times) / seconds:.1f}): p95 "
          f"{p95(half.times) * 1000:.1f} ms at the client, {p95(served) * 1000:.1f} ms in the "
          f"server ({len(served)} logged), errors {len(half.errors)}")
    return {"rps": best, "users": best_users, "p95": p95(half.times),
            "server_p95": p95(served), "errors": errors + len(half.errors)}


def interleaved(pages: dict, figures: dict, rounds: int, step: float) -> dict[str, list[float]]:
    """Throughput again, in ``rounds`` rounds that each visit every page for ``step``
    seconds at its saturating concurrency (from the ramp; at least 4): each page's
    endpoint/page ratio per round. The ramps run one page after another over minutes, so
    a drift of the machine between the baseline's ramp and a page's lands in their ratio;
    inside a round the endpoint and the page are seconds apart."""
    ratios: dict[str, list[float]] = {name: [] for name in pages if name != "endpoint"}
    for number in range(1, rounds + 1):
        rps = {}
        for name, (make, path) in pages.items():
            tally = closed_loop(make(max(4, figures[name]["users"])), [path], step)
            figures[name]["errors"] += len(tally.errors)
            rps[name] = (len(tally.times) - len(tally.errors)) / step
        for name in ratios:
            ratios[name].append(rps["endpoint"] / rps[name])
        print(f"    round {number}: endpoint {rps['endpoint']:.0f} rps; " + ", ".join(
            f"{name} {ratios[name][-1]:.2f}" for name in ratios))
    return ratios


def soak(pools: dict[str, tuple[list[Client], str]], users: int, seconds: float) -> Tally:
    """``users`` users, each on one page in turn over the mix, for ``seconds``."""
    names = list(pools)
    clients, paths = [], []
    for n in range(users):
        signed_in, path = pools[names[n % len(names)]]
        clients.append(clone(signed_in[n // len(names) % len(signed_in)]))
        paths.append(path)
    tally, deadline = Tally(), time.perf_counter() + seconds

    def user(index: int) -> None:
        while time.perf_counter() < deadline:
            hit(clients[index], paths[index], tally, time.perf_counter())

    run_threads(user, users)
    return tally


# --- the run -----------------------------------------------------------------------------


def bench(args: argparse.Namespace, base_url: str, tmp: Path) -> None:
    port = free_port()
    env = server_env(base_url, tmp, port, args.workers, args.page_cache_seconds)
    print("  page cache: " + ("off" if args.page_cache_seconds == 0 else "on (the app's own)"
                              if args.page_cache_seconds is None
                              else f"on, {args.page_cache_seconds:g} s"))
    started = time.monotonic()
    for step in (("db", "upgrade"), ("modules", "sync"), ("demo", "seed", "--participants", "30")):
        flask(env, *step)
    facts = bulk_seed(env, args.participants)
    print(f"  seeded {args.participants} participants in {time.monotonic() - started:.0f} s")
    server = start_gunicorn(env, tmp / "gunicorn.log")
    try:
        run_load(args, port, facts, tmp / "gunicorn.log")
    finally:
        stop(server)
        errors = [line for line in (tmp / "gunicorn.log").read_text().splitlines()
                  if "Traceback" in line or "ERROR" in line]
        print(f"  gunicorn log: {len(errors)} error lines")


def run_load(args: argparse.Namespace, port: int, facts: dict, log: Path) -> None:
    host = "127.0.0.1"
    people = facts["participants"]
    # one sign-in: a two-step code is accepted once, so the clinician's other "tabs" share it
    clinician = sign_in(host, port, CLINICIAN)
    staff = [clone(clinician) for _ in range(4)]
    learners = [sign_in(host, port, code) for code in people[:max(RAMP) * 2]]

    def anonymous(count: int) -> list[Client]:
        return [Client(host, port) for _ in range(count)]

    def participants(count: int) -> list[Client]:
        return [clone(learners[n % len(learners)]) for n in range(count)]

    def clinicians(count: int) -> list[Client]:
        return [clone(clinician) for _ in range(count)]

    pages = {"endpoint": (anonymous, "/healthz"), "help": (participants, "/help"),
             "home": (participants, "/modules/today"),
             "step": (participants, facts["step"]), "forum": (participants, "/forum/"),
             "dashboard": (clinicians, "/moderation/")}
    for name, (make, path) in pages.items():  # warm every worker, check each page answers
        for client in make(4):
            status, _, location = fetch(client, path)
            if status != 200:
                raise SystemExit(f"{name} {path} answered {status} {location}")
    figures = {}
    for name, (make, path) in pages.items():
        print(f"  {name} ({path}), load average {os.getloadavg()[0]:.1f}")
        figures[name] = measure_page(make, path, args.step, log)
    report(figures)
    print(f"  interleaved throughput ratios ({args.rounds} rounds of {args.step:.0f} s a page)")
    ratios = interleaved(pages, figures, args.rounds, args.step)
    soak_users = [sign_in(host, port, code) for code in people[:40]]
    pools = {"endpoint": (anonymous(10), "/healthz"),
             "home": (soak_users[:14], "/modules/today"),
             "step": (soak_users[14:28], facts["step"]),
             "forum": (soak_users[28:], "/forum/"), "dashboard": (staff, "/moderation/")}
    print(f"  {args.duration:.0f} s at {args.users} users, load average "
          f"{os.getloadavg()[0]:.1f}")
    tally = soak(pools, args.users, args.duration)
    print(f"    {len(tally.times)} requests ({len(tally.times) / args.duration:.1f} rps), "
          f"p95 {p95(tally.times) * 1000:.0f} ms, errors {len(tally.errors)} "
          f"{sorted(set(tally.errors))[:5]}")
    print(f"load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    results(figures, ratios, tally, args.duration)


def results(figures: dict, ratios: dict[str, list[float]], soaked: Tally,
            duration: float) -> None:
    """The RESULT lines: each page's median interleaved ratio, and every error."""
    for name, values in ratios.items():
        ramp = figures["endpoint"]["rps"] / figures[name]["rps"]
        print(f"  {name}: ramps {ramp:.2f}; rounds median {statistics.median(values):.2f} "
              f"(from {min(values):.2f} to {max(values):.2f})")
    for name, values in ratios.items():
        if name != "help":
            print(f"RESULT web_{name} ratio={statistics.median(values):.2f} goal={PAGE_GOAL}")
    for name in ratios:
        if name != "help":
            ratio = figures[name]["server_p95"] / figures["endpoint"]["server_p95"]
            print(f"RESULT web_p95_{name} ratio={ratio:.2f} goal={P95_GOAL}")
    ramp_errors = sum(figure["errors"] for figure in figures.values())
    print(f"  errors: {len(soaked.errors)} in the {duration:.0f} s run, {ramp_errors} in "
          "the ramps and rounds")
    print(f"RESULT web_errors ratio={len(soaked.errors) + ramp_errors} goal=0")


def report(figures: dict) -> None:
    base = figures["endpoint"]
    print(f"  {'page':<10} {'sat. rps':>9} {'client p95':>11} {'x endpoint':>11} "
          f"{'server p95':>11} {'x endpoint':>11} {'rps ratio':>10}")
    for name, figure in figures.items():
        server = figure["server_p95"] / base["server_p95"]
        print(f"  {name:<10} {figure['rps']:9.1f} {figure['p95'] * 1000:9.1f}ms "
              f"{figure['p95'] / base['p95']:11.2f} {figure['server_p95'] * 1000:9.1f}ms "
              f"{server:11.2f} {base['rps'] / figure['rps']:10.2f}"
              f"{'' if server <= P95_GOAL else '  (server p95 over 3x)'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--duration", type=float, default=300.0)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--step", type=float, default=5.0, help="seconds per ramp step")
    parser.add_argument("--rounds", type=int, default=5,
                        help="interleaved throughput rounds (web_<page> is their median)")
    parser.add_argument("--page-cache-seconds", type=float, default=None,
                        help="PAGE_CACHE_SECONDS for the server (default: the app's own; "
                             "0 measures every page made afresh)")
    parser.add_argument("--database-url",
                        default="postgresql://kinship:kinship@127.0.0.1:5432/postgres",
                        help="a role with CREATEDB; the bench makes its own database")
    args = parser.parse_args()
    print(f"machine: {platform.machine()} {platform.system()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, PostgreSQL; load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    url, name = scratch_database(args.database_url)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            bench(args, url, Path(tmp))
    finally:
        drop_database(args.database_url, name)


if __name__ == "__main__":
    main()
