"""Shared by the web lab's browser benchmarks (web_lm_speed.py, web_train.py): the lab's site
served on loopback (with extra folders mounted where a benchmark needs them), headless Debian
Chromium driven by Playwright, and the result file."""

from __future__ import annotations

import json
import shlex
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lm_common import machine

from lstmlab.web.server import ROOTS, make_server

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


@contextmanager
def served(extra: dict[str, Path] | None = None) -> Iterator[str]:
    """The lab's site (plus ``extra`` URL prefix -> folder) on a free loopback port: its URL."""
    server = make_server("127.0.0.1", 0, roots={**ROOTS, **(extra or {})}, quiet=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def chromium() -> Iterator[Any]:
    """Headless Debian Chromium (never a downloaded browser)."""
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(executable).exists():
        sys.exit(f"no Chromium at {executable}: apt-get install chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


def browser_version(browser: Any) -> str:
    return f"Chromium {browser.version} (headless)"


def write_result(name: str, document: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    document = {"benchmark": name, "command": " ".join(shlex.quote(a) for a in sys.argv),
                "finished": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": machine(),
                **document}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(document, indent=1) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")
    return path
