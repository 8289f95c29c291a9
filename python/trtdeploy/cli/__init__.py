"""`trtdeploy` command line: one module per subcommand, each with add_parser() and run().

User mistakes (TrtDeployError) print one line and exit 1; -v shows details and tracebacks.
Subcommand modules import heavy dependencies inside run(), so `--help` always works. SIGTERM unwinds
like Ctrl-C (exit 143), so temporary files are removed and nothing partial reaches a final path.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

COMMANDS = ["inspect", "dynamic", "rename", "expose", "remove_node", "insert_cast", "simplify", "verify",
            "yolo", "fp16", "build", "bench", "doctor"]


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(prog="trtdeploy", description="PyTorch -> ONNX -> TensorRT deployment tools")
    parser.add_argument("--version", action="version", version=f"trtdeploy {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f".{name}", __name__)
        except ImportError as exc:  # a broken optional part shows up in --help, not as a crash
            p = sub.add_parser(name.replace("_", "-"), help=f"(unavailable: {exc})")
            p.set_defaults(_unavailable=str(exc))
            continue
        p = module.add_parser(sub)
        if not any("--verbose" in a.option_strings for a in p._actions):
            p.add_argument("-v", "--verbose", action="store_true", help="details and tracebacks")
        p.set_defaults(_run=module.run)
    return parser


class _Terminated(BaseException):
    """SIGTERM, raised where the process is, so that `finally` blocks clean up (like Ctrl-C)."""


def _on_sigterm(signum, frame):
    raise _Terminated()


def main(argv: list[str] | None = None) -> int:
    import signal

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 1
    if getattr(args, "_unavailable", None):
        print(f"trtdeploy {args.command}: error: unavailable: {args._unavailable}", file=sys.stderr)
        return 1
    verbose = getattr(args, "verbose", False)
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(message)s", stream=sys.stderr)
    from ..errors import TrtDeployError

    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return int(args._run(args) or 0)
    except TrtDeployError as exc:
        if verbose:
            import traceback

            traceback.print_exc()
        print(f"trtdeploy {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # output piped into `head` and friends
        return 0
    except KeyboardInterrupt:
        print(f"trtdeploy {args.command}: interrupted", file=sys.stderr)
        return 130
    except _Terminated:
        print(f"trtdeploy {args.command}: terminated", file=sys.stderr)
        return 143
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":  # python -m trtdeploy.cli
    sys.exit(main())
