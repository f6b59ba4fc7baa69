"""Gunicorn settings for the Kinship web app (``gunicorn -c platform/gunicorn.conf.py wsgi:app``).

Every value can be overridden from the environment (systemd reads /etc/kinship/kinship.env),
so the same file serves every host. This folder is deliberately not a package: never add
``platform/__init__.py`` (it would shadow the standard library's ``platform`` module).
"""

import os


def _int(name, default):
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


def _cores():
    # sched_getaffinity honours CPU pinning (taskset, cgroup cpusets); cpu_count does not.
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


# nginx proxies to this address; keep it on loopback unless nginx runs on another host.
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")

# The usual 2 x cores + 1, capped: each worker keeps its own SQLAlchemy pool of PostgreSQL
# connections (up to 15 with the defaults) and an argon2 hash takes ARGON2_MEMORY_COST
# (64 MiB) while it runs, so an uncapped count on a big machine would exhaust
# max_connections (100 by default) and memory. GUNICORN_WORKERS sets an exact number.
max_workers = _int("GUNICORN_MAX_WORKERS", 9)
workers = _int("GUNICORN_WORKERS", min(2 * _cores() + 1, max_workers))
worker_class = "sync"

# A request that takes longer than this is stuck: the worker is killed and replaced.
# Exports and reports are the slow pages; raise it (and nginx's proxy_read_timeout) together.
timeout = _int("GUNICORN_TIMEOUT", 60)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = 5  # only nginx connects, over loopback

# Recycle workers now and then so a slow leak can never grow without bound; the jitter
# keeps them from all restarting at once.
max_requests = _int("GUNICORN_MAX_REQUESTS", 2000)
max_requests_jitter = max_requests // 10

# Off: each worker imports the app and creates its own database engine after the fork, so
# no connection is ever shared between processes, and `systemctl reload` (HUP) picks up
# new code.
preload_app = False

# Gunicorn trusts X-Forwarded-Proto (to know the request was HTTPS) only from these
# addresses: nginx on the same host by default. Comma-separated; never "*" unless the
# port is unreachable from anywhere but the proxy.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

proc_name = "kinship-web"

# Logs go to stdout/stderr, i.e. the systemd journal.
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")

# The access log records the path (%(U)s) but never the query string or the Referer:
# invite tokens, reset codes and search terms can travel there, and a mental-health
# platform must not copy them into logs. The client address is the one nginx passes on.
access_log_format = (
    '%({x-forwarded-for}i)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms "%(a)s"'
)

# Gunicorn >= 23 opens a control socket under $HOME by default; nothing here uses it, and
# the home directory is read-only under the systemd unit. (Unknown names are ignored by
# older versions.)
control_socket_disable = True
