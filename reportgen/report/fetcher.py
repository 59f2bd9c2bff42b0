"""The PDF renderer's URL fetcher: ``data:`` URIs, the run's files and the fonts, nothing else."""

from __future__ import annotations

import logging
import mimetypes
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

from weasyprint.urls import URLFetcher, URLFetcherResponse

LOG = logging.getLogger(__name__)


class FetchRefused(ValueError):
    """The report's URL fetcher refused a resource."""


class RunFetcher(URLFetcher):
    """WeasyPrint URL fetcher confined to ``data:`` URIs, the run directory and the fonts.

    Everything else — other files, ``http(s)://``, ``../`` escapes, symlinks
    leading out of the run — raises :class:`FetchRefused` before any I/O.
    """

    def __init__(self, run_dir: Path, fonts: Sequence[Path]) -> None:
        super().__init__(allowed_protocols=("data", "file"), allow_redirects=False, timeout=5)
        self.root = run_dir.resolve()
        self.fonts = frozenset(path.resolve() for path in fonts)
        self.refused: list[str] = []

    def fetch(self, url: str, headers: Any = None) -> URLFetcherResponse:
        scheme = url.partition(":")[0].lower()
        if scheme == "data":
            return super().fetch(url, headers)
        if scheme == "file":
            path = self._allowed_path(url)
            if path is not None:
                media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                return URLFetcherResponse(
                    path.as_uri(), path.read_bytes(), {"Content-Type": media_type}
                )
        self.refused.append(url)
        LOG.warning("report: refused to fetch %s", url)
        raise FetchRefused(f"the report may only use data: URIs and files of its run: {url}")

    def _allowed_path(self, url: str) -> Path | None:
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            return None
        path = Path(url2pathname(parts.path)).resolve()
        if path in self.fonts:
            return path
        if path.is_relative_to(self.root) and path.is_file():
            return path
        return None
