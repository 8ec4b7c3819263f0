"""The ``gankit`` command line: one module per command under :mod:`gankit.commands`.

A user's mistake (:class:`gankit.core.errors.GankitError`) prints ``error: ...``
and exits with code 2, without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings

from gankit.core.version import __version__
from gankit.core.errors import GankitError

# Each module defines NAME, HELP, add_arguments(parser) and run(args) -> int.
COMMANDS = ["run", "validate", "sample", "export", "plugins", "list", "compare", "report", "runs", "sweep", "eval",
            "weights", "new_plugin"]


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


def _show_plugin_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)  # before the plugin host: --help needs none of it
    from gankit.core.plugins import PluginWarning

    previous = warnings.showwarning
    warnings.showwarning = lambda m, c, *a, **k: (_show_plugin_warning(m, c, *a, **k) if issubclass(c, PluginWarning)
                                                   else previous(m, c, *a, **k))
    try:
        return args.func(args) or 0
    except GankitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # `gankit list | head`
        return 0
    finally:
        warnings.showwarning = previous


if __name__ == "__main__":
    sys.exit(main())
