"""``python main.py simulate``: serve a simulated campus until SIGINT or SIGTERM.

The flags are a contract (tests and users script against them). Once every bus listens, one
line per bus is printed and flushed, ``bus 1 listening on tcp://127.0.0.1:5021 (27 meters,
acrel-ddsy1352)``, whose URL :meth:`app.drivers.modbus_link.LinkConfig.from_url` accepts.
With ``--state FILE`` the meters keep their memory across restarts (:mod:`app.simulator.state`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path

from app.drivers.profile import ProfileError, available_profiles, load_profile
from app.drivers.token import MasterKey, load_master_key, save_master_key
from app.errors import ConfigError
from app.i18n import _
from app.simulator.campus import MAX_UNIT, SimCampus
from app.simulator.clock import SimClock, parse_start
from app.simulator.faults import FaultSpecError, parse_faults
from app.simulator.server import TRANSPORTS, SimServer, SimulatorError, WireTiming
from app.simulator.state import StateFileError, StateKeeper

DEFAULT_PORT = 5020


def _int_in(lo: int, hi: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{value} is not within {lo}..{hi}")
        return value
    return parse


def _speed(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value <= 1_000_000:
        raise argparse.ArgumentTypeError("speed must be 0 (frozen) or more")
    return value


def _faults(text: str) -> str:
    try:
        parse_faults(text)
    except FaultSpecError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _start(text: str) -> float:
    try:
        return parse_start(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _profile(text: str) -> str:
    known = available_profiles()
    if text not in known:
        raise argparse.ArgumentTypeError(f"no meter profile {text!r} (known: {', '.join(known)})")
    return text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``simulate`` flags."""
    parser.add_argument("--buses", type=_int_in(1, 999), default=12,
                        help="number of buses (default 12)")
    parser.add_argument("--meters", type=_int_in(1, MAX_UNIT), default=27,
                        help="meters per bus, slave ids 1..M (default 27)")
    parser.add_argument("--transport", choices=TRANSPORTS, default="tcp",
                        help="tcp: Modbus-TCP; rtu-tcp: RTU frames over TCP (a serial device "
                             "server); pty: a pseudo-terminal per bus (default tcp)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=_int_in(0, 65535), default=DEFAULT_PORT,
                        help="bus k listens on PORT+k (default 5020; 0: free ports)")
    parser.add_argument("--profile", type=_profile, default="acrel-ddsy1352",
                        help=f"meter profile ({', '.join(available_profiles())})")
    parser.add_argument("--seed", type=int, default=1, help="seed for a repeatable campus")
    parser.add_argument("--wire-baud", type=_int_in(300, 115200), default=None,
                        help="pace every bus like an RS485 wire at this baud rate")
    parser.add_argument("--wire-parity", choices=("N", "E"), default="N",
                        help="parity of the paced wire: N (8N1) or E (8E1)")
    parser.add_argument("--faults", type=_faults, default="", metavar="SPEC",
                        help="e.g. '2:drop=0.1;2.7:offline;*:slow=40@0.5;1.3:crc=0.2'")
    parser.add_argument("--speed", type=_speed, default=1.0,
                        help="meter time runs SPEED times the clock (0 freezes it)")
    parser.add_argument("--start", type=_start, default=None, metavar="ISO",
                        help="meter time at start, e.g. 2026-03-02T20:00 (campus time UTC+8)")
    parser.add_argument("--key-file", type=Path, default=None,
                        help="master key for recharge tokens (default: the station's; created "
                             "if missing)")
    parser.add_argument("--state", type=Path, default=None, metavar="FILE",
                        help=_("keep the meters' memory (money, energy, purchases, relay, "
                               "settings) in FILE across restarts: read at start (missing: "
                               "fresh meters), saved while serving and at exit"))


def _master_key(path: Path | None) -> MasterKey:
    if path is None:
        from app.paths import default_key_file

        path = default_key_file()
    if not path.exists():
        key = MasterKey.generate()
        save_master_key(path, key)
        print(_("simulate: no master key at {path}; generated a new one (mode 0600)")
              .format(path=path), file=sys.stderr, flush=True)
        return key
    return load_master_key(path)


async def _serve(server: SimServer, profile: str, meters: int,
                 keeper: StateKeeper | None = None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # SIGHUP too: a terminal closed under the simulator still saves the meters' state
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        try:
            loop.add_signal_handler(getattr(signal, name), stop.set)
        except (AttributeError, NotImplementedError, RuntimeError):  # Windows: Ctrl+C ends
            pass                                                        # asyncio.run
    saving: asyncio.Task[None] | None = None
    served = False
    try:
        endpoints = await server.start()
        served = True
        if keeper is not None:
            saving = loop.create_task(keeper.run())
        for bus, url in enumerate(endpoints, start=1):
            print(f"bus {bus} listening on {url} ({meters} meters, {profile})", flush=True)
        await stop.wait()
    finally:
        if saving is not None:
            saving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await saving
        await server.close()
        if keeper is not None and served:
            keeper.save(final=True)  # the meters as the power goes off


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM. 0 on a clean stop, 1 if it cannot start."""
    if args.port and args.port + args.buses > 65535:
        print(_("simulate: ports {first}..{last} do not exist")
              .format(first=args.port + 1, last=args.port + args.buses), file=sys.stderr)
        return 2
    try:
        profile = load_profile(args.profile)
        key = _master_key(args.key_file)
    except (ProfileError, ConfigError) as exc:
        print(f"simulate: {exc}", file=sys.stderr)
        return 1
    campus = SimCampus(args.buses, args.meters, profile, seed=args.seed, master_key=key,
                       clock=SimClock(args.start, args.speed), faults=args.faults)
    keeper = None
    if getattr(args, "state", None) is not None:
        keeper = StateKeeper(campus, args.state)
        try:
            keeper.acquire()
            restored = keeper.load()
        except StateFileError as exc:
            keeper.release()
            print(f"simulate: {exc}", file=sys.stderr)
            return 1
        if restored:
            print(_("simulate: the meters' state restored from {path}").format(path=args.state),
                  file=sys.stderr, flush=True)
        else:
            print(_("simulate: no state in {path} yet; fresh meters, kept there from now on")
                  .format(path=args.state), file=sys.stderr, flush=True)
    wire = None
    if args.wire_baud:
        wire = WireTiming(args.wire_baud, args.wire_parity, profile.serial.turnaround_ms / 1000)
    server = SimServer(campus, args.transport, args.host, args.port, wire)
    try:
        asyncio.run(_serve(server, args.profile, args.meters, keeper))
    except SimulatorError as exc:
        print(f"simulate: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # where signals cannot be handled by the loop
        pass
    finally:
        if keeper is not None:
            keeper.release()
    return 0
