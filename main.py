"""VoltKeeper entry point: ``python main.py --help``."""

import sys

from app.cli import broken_pipe, main


def run() -> int:
    try:
        code = main()
        sys.stdout.flush()
        return code
    except BrokenPipeError:  # the reader of our output went away (``status | head``)
        return broken_pipe()


if __name__ == "__main__":
    sys.exit(run())
