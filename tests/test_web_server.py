"""The web lab's server (lstmlab.web.server, `lstmlab web`): it serves only its own files, with
the right content types, binds loopback unless told otherwise, and says so in one line when the
port is taken; --out writes the same files."""

from __future__ import annotations

import http.client
import os
import socket
import threading
from pathlib import Path

import pytest

from lstmlab.cli import main
from lstmlab.web.server import DEFAULT_HOST, ROOTS, make_server, site_files, url_to_key, write_site


@pytest.fixture()
def roots(tmp_path: Path) -> dict[str, Path]:
    """A small site of two roots, a secret beside them and links that lead out."""
    site, models = tmp_path / "site", tmp_path / "models"
    (site / "sub").mkdir(parents=True)
    (models / "m").mkdir(parents=True)
    (site / "index.html").write_text("<p>home</p>")
    (site / "app.js").write_text("export const a = 1;")
    (site / "sub" / "page.css").write_text("p {}")
    (site / ".hidden.js").write_text("no")
    (site / "notes.py").write_text("no")  # an unknown suffix is not part of the site
    (models / "m" / "manifest.json").write_text("{}")
    (models / "m" / "weights.bin").write_bytes(b"\0\0\x80?")
    (models / "m" / "kernel.wasm").write_bytes(b"\0asm")
    (tmp_path / "secret.txt").write_text("secret")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "index.html").write_text("secret")
    os.symlink(tmp_path / "secret.txt", site / "link.txt")
    os.symlink(tmp_path / "outside", site / "linked")
    return {"/": site, "/models/": models}


@pytest.fixture()
def served(roots):
    server = make_server("127.0.0.1", 0, roots=roots, quiet=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def request(server, path: str, method: str = "GET") -> tuple[int, str, bytes]:
    """Send ``path`` exactly as written (no client-side normalisation)."""
    connection = http.client.HTTPConnection(*server.server_address[:2], timeout=5)
    connection.putrequest(method, path, skip_host=False, skip_accept_encoding=True)
    connection.endheaders()
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, response.getheader("Content-Type") or "", body


def test_site_files_are_the_roots_files_only(roots):
    files = site_files(roots)
    assert set(files) == {"/index.html", "/app.js", "/sub/page.css", "/models/m/manifest.json",
                          "/models/m/weights.bin", "/models/m/kernel.wasm"}


def test_the_shipped_site_has_its_pages_and_runtime():
    files = site_files()
    for page in ("/index.html", "/games.html", "/lm.html", "/train.html", "/games.js",
                 "/lm.js", "/train-page.js", "/train-worker.js", "/common.js", "/style.css"):
        assert page in files
    assert all(path.is_file() for path in files.values())
    assert set(ROOTS) == {"/", "/models/", "/runtime/"}


@pytest.mark.parametrize(("path", "kind"), [
    ("/", "text/html"), ("/index.html", "text/html"), ("/app.js", "text/javascript"),
    ("/sub/page.css", "text/css"), ("/models/m/manifest.json", "application/json"),
    ("/models/m/weights.bin", "application/octet-stream"),
    ("/models/m/kernel.wasm", "application/wasm"), ("/app.js?v=2", "text/javascript")])
def test_files_are_served_with_their_content_type(served, path, kind):
    status, content_type, body = request(served, path)
    assert status == 200 and content_type.startswith(kind) and body


@pytest.mark.parametrize("path", [
    "/../secret.txt", "/%2e%2e/secret.txt", "/%2E%2E%2Fsecret.txt", "/sub/../../secret.txt",
    "/sub/%2e%2e/%2e%2e/secret.txt", "/..%5csecret.txt", "/sub\\..\\..\\secret.txt",
    "//secret.txt", "/link.txt", "/linked/index.html", "/linked/", "/sub/", "/sub",
    "/models/", "/models/m/", "/.hidden.js", "/notes.py", "/index.html%00.js", "/%ff",
    "/models/../secret.txt", "secret.txt", "/missing.js"])
def test_nothing_else_is_served(served, path):
    status, _, body = request(served, path)
    assert status == 404, path
    assert b"secret" not in body


def test_head_and_other_methods(served):
    status, content_type, body = request(served, "/app.js", "HEAD")
    assert status == 200 and content_type.startswith("text/javascript") and body == b""
    assert request(served, "/app.js", "POST")[0] == 405


def test_a_file_swapped_for_a_link_after_start_is_refused(roots, served, tmp_path):
    target = roots["/"] / "app.js"
    target.unlink()
    os.symlink(tmp_path / "secret.txt", target)
    assert request(served, "/app.js")[0] == 404


def test_url_to_key():
    assert url_to_key("/") == "/index.html"
    assert url_to_key("/a/b/") == "/a/b/index.html"
    assert url_to_key("/a/./b.js") == "/a/b.js"
    assert url_to_key("/a/../b.js") is None
    assert url_to_key("/a%00.js") is None


def test_loopback_by_default(roots):
    server = make_server(port=0, roots=roots, quiet=True)
    try:
        assert DEFAULT_HOST == "127.0.0.1" and server.server_address[0] == "127.0.0.1"
    finally:
        server.server_close()
    from lstmlab.cli import build_parser

    args = build_parser().parse_args(["web"])
    assert args.host == "127.0.0.1" and args.port == 8000


def test_a_port_in_use_is_one_clear_line(capsys):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        with pytest.raises(ValueError, match=f"port {port} on 127.0.0.1 is in use"):
            make_server("127.0.0.1", port)
        assert main(["web", "--port", str(port)]) == 2
    finally:
        taken.close()
    err = capsys.readouterr().err.strip()
    assert err == f"lstmlab web: port {port} on 127.0.0.1 is in use; choose another with --port"


def test_bad_port_option(capsys):
    assert main(["web", "--port", "70000"]) == 2
    assert "port number" in capsys.readouterr().err


def test_out_writes_the_site_and_refuses_a_non_empty_folder(roots, tmp_path, capsys):
    out = tmp_path / "out"
    written = write_site(out, roots=roots)
    assert sorted(p.relative_to(out).as_posix() for p in written) == [
        "app.js", "index.html", "models/m/kernel.wasm", "models/m/manifest.json",
        "models/m/weights.bin", "sub/page.css"]
    with pytest.raises(ValueError, match="exists and is not empty"):
        write_site(out, roots=roots)
    assert len(write_site(out, force=True, roots=roots)) == 6
    full = tmp_path / "full"
    assert main(["web", "--out", str(full)]) == 0
    assert (full / "games.html").is_file() and (full / "runtime").is_dir()
    assert main(["web", "--out", str(full)]) == 2
    assert "--force" in capsys.readouterr().err
