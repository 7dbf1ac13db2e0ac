"""The web lab's static site and the small server that serves it (``lstmlab web``).

The site is assembled from three folders of the package, each under its own URL prefix:

    /            lstmlab/web/site/      the pages, their scripts and style
    /models/     lstmlab/web/models/    the shipped default models (web exports) and game decks
    /runtime/    lstmlab/export/js/     the plain-JavaScript runtime and trainer (ES modules)

``site_files()`` lists every file of the site once, as {URL path: file}. The server answers only
with a file of that table, looked up by its exact URL path, so nothing outside the three folders
can be reached: no ``..`` (plain or %-encoded), no symbolic link that leads out of its folder (the
listing skips it), no directory listing (a folder's URL gives its index.html or 404). The same
table is what ``write_site`` copies to a folder to host the lab anywhere.

    >>> server = make_server("127.0.0.1", 8000)     # loopback unless told otherwise
    >>> server.serve_forever()
"""

from __future__ import annotations

import errno
import posixpath
import shutil
import socket
import sys
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

PACKAGE = Path(__file__).resolve().parent.parent
ROOTS: dict[str, Path] = {
    "/": PACKAGE / "web" / "site",
    "/models/": PACKAGE / "web" / "models",
    "/runtime/": PACKAGE / "export" / "js",
}
"""URL prefix -> folder of the package it is served from."""

MIME_TYPES: dict[str, str] = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",  # ES modules are refused under any other type
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".bin": "application/octet-stream",
    ".wasm": "application/wasm",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/plain; charset=utf-8",
}
"""The content types the site uses; a file of any other suffix is not part of the site."""

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


def _inside(path: Path, folder: Path) -> bool:
    """Whether ``path``, all symbolic links followed, lies inside ``folder``."""
    try:
        path.resolve(strict=True).relative_to(folder.resolve())
    except (OSError, ValueError):
        return False
    return True


def site_files(roots: dict[str, Path] | None = None) -> dict[str, Path]:
    """{URL path: file} of every file of the site: regular files with a known suffix
    (``MIME_TYPES``) whose real location is inside their root folder. Hidden names (starting
    with '.') and Python caches are left out."""
    roots = ROOTS if roots is None else roots
    files: dict[str, Path] = {}
    for prefix, root in roots.items():
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*")):
            relative = path.relative_to(root)
            if any(part.startswith((".", "__")) for part in relative.parts):
                continue
            if path.suffix not in MIME_TYPES or not path.is_file() or not _inside(path, root):
                continue
            files[prefix + relative.as_posix()] = path
    return files


def url_to_key(raw: str) -> str | None:
    """The request target -> the URL path looked up in ``site_files`` ('/x/' -> '/x/index.html'),
    or None when it cannot name a site file (a NUL, a backslash, a '..' segment)."""
    path = unquote(urlsplit(raw).path, errors="strict") if raw.startswith("/") else None
    if path is None or "\x00" in path or "\\" in path:
        return None
    if ".." in path.split("/"):
        return None
    clean = posixpath.normpath(path)
    if path.endswith("/") and clean != "/":
        clean += "/"
    return clean + "index.html" if clean.endswith("/") else clean


class SiteHandler(BaseHTTPRequestHandler):
    """GET and HEAD of site files only; everything else is 404 (or 405 for other methods)."""

    server_version = "lstmlab-web"
    files: dict[str, Path] = {}
    roots: dict[str, Path] = {}
    quiet = False

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._send(body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._send(body=False)

    def _refuse(self) -> None:
        self.send_error(HTTPStatus.METHOD_NOT_ALLOWED, "the web lab only serves files")

    do_POST = do_PUT = do_DELETE = do_PATCH = _refuse  # noqa: N815

    def _lookup(self) -> Path | None:
        try:
            key = url_to_key(self.path)
        except UnicodeDecodeError:
            return None
        if key is None:
            return None
        path = self.files.get(key)
        if path is None:
            return None
        # the table was built at start; a file swapped for a link out since then is refused
        root = next(self.roots[p] for p in sorted(self.roots, key=len, reverse=True)
                    if key.startswith(p))
        return path if _inside(path, root) and path.is_file() else None

    def _send(self, body: bool) -> None:
        path = self._lookup()
        if path is None:
            self.send_error(HTTPStatus.NOT_FOUND, "not a file of the web lab")
            return
        try:
            data = path.read_bytes()
        except OSError:
            self.send_error(HTTPStatus.NOT_FOUND, "not a file of the web lab")
            return
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", MIME_TYPES[path.suffix])
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if body:
            self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (http.server's name)
        if not self.quiet:
            sys.stderr.write(f"{self.address_string()} - {format % args}\n")


def make_server(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *,
                roots: dict[str, Path] | None = None, quiet: bool = False) -> ThreadingHTTPServer:
    """A threading HTTP server of the site on ``host``:``port`` (port 0: any free port; read it
    from ``server.server_address``). Raises ValueError, naming the port, when it is in use or
    cannot be bound."""
    roots = ROOTS if roots is None else roots
    handler = type("Handler", (SiteHandler,), {"files": site_files(roots), "roots": roots,
                                               "quiet": quiet})
    server_class = ThreadingHTTPServer
    if ":" in host:  # an IPv6 address such as ::1
        server_class = type("Server6", (ThreadingHTTPServer,), {"address_family":
                                                                 socket.AF_INET6})
    try:
        server = server_class((host, port), handler)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise ValueError(f"port {port} on {host} is in use; choose another with --port"
                             ) from None
        if error.errno == errno.EACCES:
            raise ValueError(f"not allowed to bind port {port} on {host}; choose a port above "
                             f"1023 with --port") from None
        raise ValueError(f"cannot serve on {host}:{port}: {error.strerror or error}") from None
    server.daemon_threads = True
    return server


def url_of(server: ThreadingHTTPServer) -> str:
    """The address to open in a browser, e.g. http://127.0.0.1:8000/."""
    host, port = server.server_address[:2]
    shown = f"[{host}]" if ":" in str(host) else host
    return f"http://{shown}:{port}/"


def write_site(out: str | Path, force: bool = False, roots: dict[str, Path] | None = None
               ) -> list[Path]:
    """Copy every site file into folder ``out`` (the URL paths become relative paths), to host
    the lab with any static web server. An existing non-empty ``out`` is refused (ValueError)
    unless ``force``; then the site's files overwrite those of the same names. Returns the files
    written."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ValueError(f"--out {out} exists and is not empty; choose another folder or add "
                         f"--force")
    written = []
    for key, path in site_files(roots).items():
        target = out / key.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        written.append(target)
    return written
