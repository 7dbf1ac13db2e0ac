"""`lstmlab web`: serve the web lab (the memory games for people, inside a language model,
training in the browser) on 127.0.0.1, or write its static site to a folder (--out)."""

from __future__ import annotations

import argparse

from lstmlab.commands.options import positive_int


def port_number(text: str) -> int:
    """argparse type: a TCP port, 1..65535."""
    value = positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"must be a port number in 1..65535, got {text}")
    return value


def run(args: argparse.Namespace) -> None:
    from lstmlab.web.server import make_server, url_of, write_site

    if args.out:
        written = write_site(args.out, force=args.force)
        print(f"wrote the web lab ({len(written)} files) to {args.out}/; serve it with any "
              f"static web server (it needs .js served as text/javascript)")
        return
    server = make_server(args.host, args.port, quiet=args.quiet)
    print(f"the web lab: {url_of(server)}  (Ctrl-C stops it)", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add ``lstmlab web``."""
    from lstmlab.web.server import DEFAULT_HOST, DEFAULT_PORT

    p = commands.add_parser(
        "web", help="the web lab in your browser: memory games, inside a language model, "
                    "training in the browser",
        description="Serve the web lab, a static site of three pages: the memory games played "
                    "by you and then by an LSTM and an Elman RNN at growing lags; a language "
                    "model's next-character distribution and cell activations as you type; an "
                    "LSTM learning distracted sequence recall in your browser. Small default "
                    "models ship with lstmlab, so it works offline. Serves until Ctrl-C.")
    p.add_argument("--port", type=port_number, default=DEFAULT_PORT,
                   help=f"TCP port (default {DEFAULT_PORT})")
    p.add_argument("--host", default=DEFAULT_HOST,
                   help=f"address to listen on (default {DEFAULT_HOST}, this machine only; "
                        f"0.0.0.0 opens it to the network)")
    p.add_argument("--out", help="write the static site into this folder instead of serving")
    p.add_argument("--force", action="store_true", help="with --out: write into a non-empty "
                                                        "folder")
    p.add_argument("--quiet", action="store_true", help="do not log requests")
    p.set_defaults(run=run)
