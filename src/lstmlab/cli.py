"""lstmlab's command line: a thin face over library functions.

    lstmlab memory --quick            the memory suite's demonstration (what `make demo` runs)
    lstmlab memory TASK ... / lstmlab gradients TASK
    lstmlab lm train|sample|eval|inspect
    lstmlab classify train|eval|predict
    lstmlab tag train|eval|predict
    lstmlab music train|eval|generate
    lstmlab export onnx|web
    lstmlab translate train|eval|predict, lstmlab translate DIR [TEXT ...]
    lstmlab caption train|eval|describe
    lstmlab detect train|eval|show
    lstmlab study run|report|status
    lstmlab web [--port 8000]         the web lab in a browser
"""

from __future__ import annotations

import argparse
import sys

from lstmlab.commands import caption as caption_commands
from lstmlab.commands import classify as classify_commands
from lstmlab.commands import detect as detect_commands
from lstmlab.commands import export as export_commands
from lstmlab.commands import lm, memory
from lstmlab.commands import music as music_commands
from lstmlab.commands import study as study_commands
from lstmlab.commands import tag as tag_commands
from lstmlab.commands import translate as translate_commands
from lstmlab.commands import web as web_commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lstmlab", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    memory.add_commands(commands)
    lm.add_commands(commands)
    classify_commands.add_commands(commands)
    tag_commands.add_commands(commands)
    music_commands.add_commands(commands)
    export_commands.add_commands(commands)
    translate_commands.add_commands(commands)
    caption_commands.add_commands(commands)
    detect_commands.add_commands(commands)
    study_commands.add_commands(commands)
    web_commands.add_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = translate_commands.shorthand(sys.argv[1:] if argv is None else list(argv))
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # --help, or a bad option (argparse has said what was wrong)
        return int(stop.code or 0)
    try:
        args.run(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except ValueError as error:  # bad arguments: say what was wrong, no traceback
        print(f"lstmlab {args.command}: {error}", file=sys.stderr)
        return 2
    except FloatingPointError as error:  # training diverged: say so and how to avoid it
        print(f"lstmlab {args.command}: training diverged: {error}", file=sys.stderr)
        return 1
    except MemoryError:
        print(f"lstmlab {args.command}: out of memory; use a smaller model or batch",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
