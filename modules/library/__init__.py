"""The therapy content library: read a content folder into plain dataclasses and check it.

``load_library(root)`` reads ``pathways.yaml``, each module folder's ``module.yaml`` and
its step files (the format is ``modules/content/README.md``) and collects *every* problem
as a ``Problem``, printed ``path:line: message``, instead of stopping at the first.
Nothing here touches the database or renders HTML: ``modules.sync`` loads a library that
has no problems, and is the only writer.

For the pages: ``media_path(module_key, relative)`` resolves a picture, video or captions
file inside one module's folder (or None: never a path outside it), and
``media_url(module_key, relative)`` is the URL such a file is served at.
"""

from modules.library.loader import load_library
from modules.library.media import (
    DEFAULT_CONTENT_ROOT,
    MEDIA_URL_PREFIX,
    content_root,
    media_path,
    media_url,
)
from modules.library.sources import (
    DEFAULT_CHECK_AFTER_DAYS,
    DEFAULT_CHECKPOINT_QUESTION,
    DEFAULT_PASS_MARK,
    EVIDENCE,
    Library,
    ModuleSource,
    PathwaySource,
    Problem,
    StepSource,
)
from modules.library.steps import MarkdownImage, markdown_images

__all__ = [
    "DEFAULT_CHECK_AFTER_DAYS",
    "DEFAULT_CHECKPOINT_QUESTION",
    "DEFAULT_CONTENT_ROOT",
    "DEFAULT_PASS_MARK",
    "EVIDENCE",
    "MEDIA_URL_PREFIX",
    "Library",
    "MarkdownImage",
    "ModuleSource",
    "PathwaySource",
    "Problem",
    "StepSource",
    "content_root",
    "load_library",
    "markdown_images",
    "media_path",
    "media_url",
]
