"""Where a module's pictures, videos and captions live, and the URL the pages serve them at.

``media_path`` is the one door from a URL to a file: it only opens files of a media type
inside one module's folder (no ``..``, absolute paths, hidden files or symlinks out).
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from flask import current_app, has_app_context

from modules.library.sources import ID_PATTERN, MEDIA_SUFFIXES

#: the library shipped with Kinship; ``MODULES_CONTENT_DIR`` in the config overrides it
DEFAULT_CONTENT_ROOT = Path(__file__).resolve().parent.parent / "content"
#: the pages serve a module's files at ``<prefix>/<module key>/<path in the module folder>``
MEDIA_URL_PREFIX = "/modules/media"

WEB_ADDRESS = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|//)", re.IGNORECASE)


def content_root() -> Path:
    """The content folder the app serves from: ``MODULES_CONTENT_DIR`` or the shipped one."""
    configured = current_app.config.get("MODULES_CONTENT_DIR") if has_app_context() else None
    return Path(configured) if configured else DEFAULT_CONTENT_ROOT


def media_path(module_key: str, relative: str, *, root: Path | None = None) -> Path | None:
    """The picture, video or captions file ``relative`` inside module ``module_key``'s
    folder under ``root`` (default ``content_root()``), or None when there is no such
    file, it is not a media type, or the path would leave the module's folder."""
    if not ID_PATTERN.fullmatch(module_key or ""):
        return None
    normal = normal_relative(relative)
    if normal is None or PurePosixPath(normal).suffix.lower() not in MEDIA_SUFFIXES:
        return None
    return file_inside((root or content_root()) / module_key, normal)


def media_url(module_key: str, relative: str) -> str:
    """The URL the pages serve a module's file at (see ``MEDIA_URL_PREFIX``)."""
    return f"{MEDIA_URL_PREFIX}/{quote(module_key)}/{quote(relative)}"


def normal_relative(relative: str) -> str | None:
    """``relative`` as a clean path inside a folder, or None when it is absolute, goes up
    (``..``), names a hidden file or is a web address."""
    if not relative or "\\" in relative or "\0" in relative or WEB_ADDRESS.match(relative):
        return None
    path = PurePosixPath(relative)
    if path.is_absolute() or not path.parts:
        return None
    if any(part == ".." or part.startswith(".") for part in path.parts):
        return None
    return path.as_posix()


def file_inside(folder: Path, normal: str) -> Path | None:
    """The existing file ``folder/normal``, symlinks resolved, if it is still inside
    ``folder``."""
    base = folder.resolve()
    candidate = (base / normal).resolve()
    if not candidate.is_relative_to(base) or not candidate.is_file():
        return None
    return candidate
