"""The ``convscope`` command: train, evaluate and predict; look inside models.

Only this package prints. Every subcommand has ``--help`` and exits non-zero with a
one-line reason (plus instructions where there is something to do) on bad input.
"""

from __future__ import annotations

import argparse
import os
import sys

from ..data import DatasetNotFoundError
from ..io import ModelFileError
from ..train import TrainingDiverged


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="convscope",
        description="Build, train and look inside convolutional neural networks.")
    from .. import __version__
    parser.add_argument("--version", action="version", version=f"convscope {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    from . import inspect as inspect_commands
    from . import lesson as lesson_commands
    from . import serve as serve_commands
    from . import train as train_commands
    train_commands.add_parsers(subparsers)
    inspect_commands.add_parsers(subparsers)  # they import matplotlib only when they run
    lesson_commands.add_parsers(subparsers)
    serve_commands.add_parsers(subparsers)  # it imports the web server only when it runs
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from .process import configure
    configure()
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        return args.run(args)
    except (DatasetNotFoundError, ModelFileError, TrainingDiverged, ValueError, FileNotFoundError) as error:
        print(f"convscope {args.command}: error: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # the reader of our output went away (`convscope ... | head`): not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more to flush at exit
        return 141
    except OSError as error:  # e.g. an output folder that cannot be written
        where = f" {error.filename}" if error.filename else ""
        print(f"convscope {args.command}: error: cannot use{where}: {error.strerror or error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"convscope {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
