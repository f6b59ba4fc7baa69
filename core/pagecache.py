"""Pages made again only when something they show has changed, kept in each process.

A view decorated ``@cached()`` (under its access decorator, so access is checked on every
request) is served from memory when the same signed-in session asks again for the same
URL and nothing the page shows has changed. The key is:

- the URL with its query string and the session row's id (each session has its own CSRF
  tokens in its forms; nothing is shared between viewers);
- every fact ``core.principal`` loaded with the session: consent, arm features, site
  settings, unread counts, the content version and the ``core.changes`` counters
  (``epoch``, ``forum``), all read in the one statement every request already runs;
- the participant's ``data_version`` (``core.changes`` moves it with anything of theirs);
- what the view's ``version()`` returns, for a page about other people (the caseload).

What only time changes (a greeting, a questionnaire coming due, "3 days ago") is at most
``PAGE_CACHE_SECONDS`` (default 30) old; a write through the ORM is seen at once. A page
is not kept when the request wrote anything, flashed a message, or answered other than
with a rendered page; nothing is served while messages wait to be flashed. Each process
keeps at most ``PAGE_CACHE_MEGABYTES`` (default 32) of pages, least recently used first
out; ``PAGE_CACHE_SECONDS=0`` turns the cache off.

Costs: a hit is a dictionary look-up and the view's ``version()``; a miss adds the key.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import current_app, g, request, session
from flask.globals import request_ctx

from core.changes import changed_in_request
from core.clock import utcnow

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class _Page:
    body: str
    made: float


class PageCache:
    """Rendered pages by key, least recently used first out, ``max_bytes`` in all."""

    def __init__(self, seconds: float, max_bytes: int) -> None:
        self.seconds = seconds
        self.max_bytes = max_bytes
        self._pages: OrderedDict[Hashable, _Page] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> str | None:
        with self._lock:
            page = self._pages.get(key)
            if page is None:
                return None
            if not 0 <= _now() - page.made <= self.seconds:
                self._drop(key)
                return None
            self._pages.move_to_end(key)
            return page.body

    def put(self, key: Hashable, body: str) -> None:
        size = len(body)
        if size > self.max_bytes:
            return
        with self._lock:
            if key in self._pages:
                self._drop(key)
            self._pages[key] = _Page(body, _now())
            self._bytes += size
            while self._bytes > self.max_bytes:
                self._drop(next(iter(self._pages)))

    def _drop(self, key: Hashable) -> None:
        self._bytes -= len(self._pages.pop(key).body)

    def __len__(self) -> int:
        return len(self._pages)


def _now() -> float:
    """Seconds by ``core.clock`` (tests that move the clock age the pages with it)."""
    return utcnow().timestamp()


def cache_of(app: Any) -> PageCache | None:
    """The app's page cache, made on first use; None when turned off."""
    seconds = float(app.config.get("PAGE_CACHE_SECONDS", 30))
    if seconds <= 0:
        return None
    found = app.extensions.get("kinship_pagecache")
    if found is None:
        megabytes = float(app.config.get("PAGE_CACHE_MEGABYTES", 32))
        found = app.extensions["kinship_pagecache"] = PageCache(seconds,
                                                                int(megabytes * 1024 * 1024))
    return found


def cached(version: Callable[[], Hashable] | None = None) -> Callable[[F], F]:
    """Serve the view's GET page from the cache while nothing it shows has changed;
    ``version()`` adds what only the view knows (see the module docstring)."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            cache = cache_of(current_app) if request.method == "GET" else None
            key = _key(version) if cache is not None and "_flashes" not in session else None
            if key is None:
                return view(*args, **kwargs)
            body = cache.get(key)
            if body is not None:
                return body
            result = view(*args, **kwargs)
            if isinstance(result, str) and not request_ctx.flashes and not changed_in_request():
                cache.put(key, result)
            return result

        return wrapper  # type: ignore[return-value]

    return decorate


def _key(version: Callable[[], Hashable] | None) -> Hashable | None:
    row = g.get("kinship_session_row")
    facts = g.get("kinship_facts")
    if row is None or facts is None or facts[0] != row.user_id or changed_in_request():
        return None
    participant = row.user.participant
    state = repr((sorted(facts[1].items()),
                  participant.data_version if participant is not None else None,
                  version() if version is not None else None))
    # a 128-bit digest keeps each key small (the settings alone are a JSON object)
    return request.full_path, row.id, hashlib.blake2b(state.encode(), digest_size=16).digest()
