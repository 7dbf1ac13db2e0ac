"""benchmarks/js_train.mjs in a browser: lstmlab's train.js against Synaptic's LSTM on the
distracted sequence recall task of Synaptic's web demo, in one Chromium page (headless, driven by
Playwright; Debian's /usr/bin/chromium, never a downloaded browser). The measurement is
benchmarks/js_train_core.mjs, the same code as under Node; the page serves the repository and
Synaptic's own dist/synaptic.js from a local HTTP server.

    python benchmarks/js_train_browser.py --synaptic /tmp/synaptic/node_modules/synaptic --runs 10

Synaptic is never vendored: install it outside the repository (npm install synaptic). Adds a
"browser" entry to benchmarks/results/js_train.json.
"""

from __future__ import annotations

import argparse
import functools
import json
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "js_train.json"
PAGE = """<!doctype html><meta charset="utf-8"><title>js_train</title>
<script src="/synaptic/dist/synaptic.js"></script>
<script type="module">
import { runBenchmark, table } from "/benchmarks/js_train_core.mjs";
setTimeout(() => {
  const report = runBenchmark({ runs: RUNS, synaptic: window.synaptic,
    synapticVersion: "VERSION" });
  window.report = report;
  window.lines = table(report, "Chromium " + navigator.userAgent.match(/Chrome\\/[\\d.]+/)[0]);
}, 0);
</script>"""


class Handler(SimpleHTTPRequestHandler):
    """The repository at /, Synaptic's package at /synaptic/, the benchmark page at /bench."""

    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, ".mjs": "text/javascript",
                      ".js": "text/javascript"}

    def __init__(self, *args, synaptic: Path, page: str, **kwargs):
        self.synaptic, self.page = synaptic, page
        super().__init__(*args, directory=str(ROOT), **kwargs)

    def do_GET(self):
        if self.path == "/bench":
            body = self.page.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def translate_path(self, path: str) -> str:
        if path.startswith("/synaptic/"):
            return str(self.synaptic / path[len("/synaptic/"):].split("?")[0])
        return super().translate_path(path)

    def log_message(self, *args) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synaptic", type=Path, required=True,
                        help="Synaptic's package folder (node_modules/synaptic)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    if not (args.synaptic / "dist" / "synaptic.js").is_file():
        parser.error(f"--synaptic: {args.synaptic}/dist/synaptic.js not found; install it with "
                     "npm install synaptic in a folder outside the repository")
    version = json.loads((args.synaptic / "package.json").read_text())["version"]
    page = PAGE.replace("RUNS", str(args.runs)).replace("VERSION", version)
    handler = functools.partial(Handler, synaptic=args.synaptic.resolve(), page=page)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
            tab = browser.new_page()
            errors: list[str] = []
            tab.on("pageerror", lambda e: errors.append(str(e)))
            tab.goto(f"http://127.0.0.1:{server.server_port}/bench")
            tab.wait_for_function("window.lines !== undefined || false", timeout=900_000,
                                  polling=1000)
            report, lines = tab.evaluate("[window.report, window.lines]")
            browser.close()
    finally:
        server.shutdown()
    if errors:
        raise SystemExit(f"the page failed: {errors[0]}")
    print("\n".join(lines))
    saved = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"benchmark": "js_train"}
    saved["browser"] = {**report, "where": lines[0].split("; ")[1],
                        "command": f"python benchmarks/js_train_browser.py --synaptic "
                                   f"SYNAPTIC --runs {args.runs}"}
    RESULTS.write_text(json.dumps(saved, indent=1) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
