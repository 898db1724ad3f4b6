"""The ``convscope`` command: train, evaluate and predict; look inside models.

Only this package prints. Every subcommand has ``--help`` and exits non-zero with a
one-line reason (plus instructions where there is something to do) on bad input.
"""

from __future__ import annotations

import argparse
import os
import sys

from .process import Terminated, stop_on_sigterm


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="convscope",
        description="Build, train and look inside convolutional neural networks.")
    from .. import __version__
    parser.add_argument("--version", action="version", version=f"convscope {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    from . import inspect as inspect_commands
    from . import interop as interop_commands
    from . import lesson as lesson_commands
    from . import serve as serve_commands
    from . import train as train_commands
    train_commands.add_parsers(subparsers)
    inspect_commands.add_parsers(subparsers)  # they import matplotlib only when they run
    lesson_commands.add_parsers(subparsers)
    serve_commands.add_parsers(subparsers)  # it imports the web server only when it runs
    interop_commands.add_parsers(subparsers)  # onnx is imported only by export, when it runs
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one ``convscope`` command; its exit status. Ctrl-C (130) and SIGTERM (143) end it
    with one line, at any point from the first import on."""
    argv = sys.argv[1:] if argv is None else list(argv)
    said = {"command": next((a for a in argv if not a.startswith("-")), None)}
    with stop_on_sigterm():
        try:
            return _run(argv, said)
        except KeyboardInterrupt as stop:  # Terminated too
            how = "terminated (SIGTERM)" if isinstance(stop, Terminated) else "interrupted"
            print(f"convscope{' ' + said['command'] if said['command'] else ''}: {how}", file=sys.stderr)
            return getattr(stop, "exit_status", 130)


def _run(argv, said):
    from ..data import DatasetNotFoundError
    from ..io import ModelFileError
    from ..parallel import ParallelError
    from ..train import TrainingDiverged
    from .process import configure
    parser = build_parser()
    args = parser.parse_args(argv)
    said["command"] = args.command
    configure()
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        return args.run(args)
    except (DatasetNotFoundError, ModelFileError, TrainingDiverged, ParallelError, ValueError,
            FileNotFoundError) as error:
        print(f"convscope {args.command}: error: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # the reader of our output went away (`convscope ... | head`): not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more to flush at exit
        return 141
    except OSError as error:  # e.g. an output folder that cannot be written, a full disk
        where = f" {error.filename}" if error.filename else ""
        print(f"convscope {args.command}: error: cannot use{where}: {error.strerror or error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
