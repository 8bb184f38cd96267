"""The frame monitor's side of the frame feed (``core/frame_feed.py``): a subscription to the
polling process's frames, what the monitor needs to explain them (each slave id's profile and
room), and saving frames as text. Qt-free: the window drains ``FrameFeedClient.take``.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from app.core.frame_feed import SILENT_AFTER_S, Endpoint, FeedUnavailable, find_endpoint
from app.core.operators import Operator, Permission, require
from app.drivers.frames import RING_FRAMES, Frame, describe
from app.drivers.profile import MeterProfile, load_profile
from app.i18n import _
from app.storage import campus

log = logging.getLogger("voltkeeper.frame_feed")


# -- the client (in a window) ---------------------------------------------------------------------
class FrameFeedClient:
    """A subscription to a feed: frames arrive in a thread and wait (the last ``keep``) until
    ``take``. ``dropped``: frames the feed could not send this subscriber, and those that did
    not fit here."""

    def __init__(self, endpoint: Endpoint, buses: Iterable[str], *, keep: int = RING_FRAMES,
                 timeout_s: float = 3.0) -> None:
        self.endpoint = endpoint
        self.buses = list(buses)
        self.keep = keep
        self.timeout_s = timeout_s
        self.feed_buses: list[str] = []
        self.error = ""
        self._dropped_there = 0
        self._dropped_here = 0
        self._frames: list[Frame] = []
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        self._heard = time.monotonic()

    @property
    def dropped(self) -> int:
        return self._dropped_there + self._dropped_here

    @property
    def alive(self) -> bool:
        return (self._thread is not None and self._thread.is_alive()
                and time.monotonic() - self._heard < SILENT_AFTER_S)

    def open(self) -> FrameFeedClient:
        ep = self.endpoint
        if ep.hostname != socket.gethostname() and ep.host in ("127.0.0.1", "::1"):
            raise FeedUnavailable(_(
                "The buses are polled on another computer ({where}); its frames can be watched "
                "there only.").format(where=ep.describe()))
        try:
            sock = socket.create_connection((ep.host, ep.port), timeout=self.timeout_s)
        except OSError as exc:
            raise FeedUnavailable(_(
                "The polling process ({where}) does not answer for its frames: {error}. Is it "
                "still running?").format(where=ep.describe(), error=exc.strerror or exc)) from None
        try:
            sock.sendall(json.dumps({"secret": ep.secret, "buses": self.buses}).encode() + b"\n")
            buffered = b""
            while b"\n" not in buffered:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                buffered += chunk
            line, _nl, buffered = buffered.partition(b"\n")
            hello = json.loads(line or b"{}")
        except (OSError, ValueError) as exc:
            sock.close()
            raise FeedUnavailable(_("The polling process ({where}) sent no frames: "
                                    "{error}").format(where=ep.describe(), error=exc)) from None
        if "hello" not in hello:
            sock.close()
            raise FeedUnavailable(_("The polling process ({where}) refused the "
                                    "subscription.").format(where=ep.describe()))
        self.feed_buses = list(hello["hello"].get("buses", []))
        sock.settimeout(0.5)  # the reading thread looks at ``close`` this often
        self._sock = sock
        self._heard = time.monotonic()
        self._thread = threading.Thread(target=self._read, args=(buffered,),
                                        name="frame-feed-client", daemon=True)
        self._thread.start()
        return self

    def watch(self, buses: Iterable[str]) -> None:
        """Watch other buses from now on."""
        self.buses = list(buses)
        if self._sock is not None:
            try:
                self._sock.sendall(json.dumps({"buses": self.buses}).encode() + b"\n")
            except OSError as exc:
                self.error = str(exc)

    def _read(self, buffered: bytes) -> None:
        assert self._sock is not None
        while not self._closed.is_set():
            *lines, buffered = buffered.split(b"\n")
            self._lines(lines)
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError:
                if time.monotonic() - self._heard > SILENT_AFTER_S:
                    self.error = _("the polling process stopped sending")
                    return
                continue
            except OSError as exc:
                if not self._closed.is_set():
                    self.error = str(exc)
                return
            if not chunk:
                self.error = _("the polling process stopped publishing frames")
                return
            self._heard = time.monotonic()
            buffered += chunk

    def _lines(self, lines: list[bytes]) -> None:
        frames = []
        for line in lines:
            try:
                d = json.loads(line)
                if "frame" in d:
                    frames.append(Frame.from_json(d["frame"]))
                elif "dropped" in d:
                    self._dropped_there = int(d["dropped"])
            except (ValueError, KeyError, TypeError):
                log.debug("frame feed: a line not understood: %r", line[:200])
        if frames:
            with self._lock:
                self._frames.extend(frames)
                over = len(self._frames) - self.keep
                if over > 0:
                    del self._frames[:over]
                    self._dropped_here += over

    def take(self) -> list[Frame]:
        """The frames that came since the last ``take``."""
        with self._lock:
            frames, self._frames = self._frames, []
        return frames

    def close(self) -> None:
        self._closed.set()
        if self._sock is not None:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._sock.close()
        if self._thread is not None:
            self._thread.join(timeout=2)


# -- what the monitor needs to know ---------------------------------------------------------------
@dataclass
class MonitorSetup:
    """The buses, the meters on them (profile and name, by slave id) and the feed's address."""

    buses: list[str]
    meters: dict[str, dict[int, tuple[MeterProfile | None, str]]] = field(default_factory=dict)
    endpoint: Endpoint | None = None

    def meaning(self, frame: Frame) -> str:
        profile, label = self.meters.get(frame.bus, {}).get(frame.slave or -1, (None, ""))
        return describe(frame, profile, label)

    def connect(self, buses: Iterable[str]) -> FrameFeedClient:
        """A subscription to ``buses`` (raises FeedUnavailable)."""
        if self.endpoint is None:
            raise FeedUnavailable(_("No process publishes bus frames: the buses are not polled "
                                    "now (start the reading service, or let this window poll)."))
        return FrameFeedClient(self.endpoint, buses).open()


def monitor_setup(operator: Operator) -> MonitorSetup:
    """What the frame monitor needs (maintenance: watching a bus is commissioning work)."""
    require(operator, Permission.COMMISSION)
    buses = campus.buses()
    names = {b.id: b.name for b in buses}
    meters: dict[str, dict[int, tuple[MeterProfile | None, str]]] = {}
    for m, node in campus.meters_with_nodes():
        try:
            profile: MeterProfile | None = load_profile(m.profile)
        except Exception:  # the frames are shown all the same, undecoded
            profile = None
        label = (node.code or node.name) if node is not None else campus.bus_address(m, names)
        meters.setdefault(names.get(m.bus_id, str(m.bus_id)), {})[m.address] = (profile, label)
    return MonitorSetup([b.name for b in buses if b.enabled], meters, find_endpoint())


# -- saving ---------------------------------------------------------------------------------------
def frame_time(t: float) -> str:
    """``14:03:07.125``: a frame's time of day, to the millisecond."""
    return time.strftime("%H:%M:%S", time.localtime(t)) + f".{int(t * 1000) % 1000:03d}"


def frame_line(frame: Frame, meaning: str) -> str:
    fc = "" if frame.function is None else f"{frame.function:02X}"
    slave = "" if frame.slave is None else str(frame.slave)
    flag = f" [{frame.error}]" if frame.error else ""
    return (f"{frame_time(frame.t)} {frame.bus} {frame.direction.upper()} {slave:>3} {fc:>2} "
            f"{frame.data.hex(' ').upper()}{flag}  {meaning}")


def save_frames(path: Path, frames: list[Frame], meaning: Callable[[Frame], str]) -> int:
    """Write the frames as text, one a line (time, bus, direction, slave, function, bytes,
    error, meaning). Returns how many."""
    text = "".join(frame_line(f, meaning(f)) + "\n" for f in frames)
    Path(path).write_text(text, encoding="utf-8")
    return len(frames)
