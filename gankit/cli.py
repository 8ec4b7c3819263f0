"""The ``gankit`` command line: one module per command under :mod:`gankit.commands`.

A user's mistake (:class:`gankit.errors.GankitError`) prints ``error: ...``
and exits with code 2, without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from gankit import __version__
from gankit.errors import GankitError

# Each module defines NAME, HELP, add_arguments(parser) and run(args) -> int.
COMMANDS = ["run", "validate", "sample", "plugins", "list", "compare", "report", "eval", "weights", "new_plugin"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gankit", description="A pluggable GAN research toolkit.")
    parser.add_argument("--version", action="version", version=f"gankit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"gankit.commands.{name}")
        p = sub.add_parser(module.NAME, help=module.HELP, description=module.__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(func=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except GankitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # `gankit list | head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
