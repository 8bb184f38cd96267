"""``python -m app.simulator``: the simulator on its own (same flags as ``simulate``)."""

from __future__ import annotations

import argparse
import sys

from app.simulator.cli import add_arguments, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m app.simulator",
        description="Serve a campus of simulated prepaid meters over Modbus.")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
