"""The frame feed: the polling process publishes its buses' frames to the frame monitor.

Only the process that holds the polling lease talks to the meters (``serve``, or a window that
polls), so a window that does not poll cannot watch a bus by itself. The reading service runs a
``FrameFeed``: a small server on 127.0.0.1, on a port the system picks, whose address is
recorded in the database's ``Meta`` table under ``frames.endpoint`` (JSON: host, port, the
pid and host name of the process, and a secret a subscriber must present). A window finds it
there (``find_endpoint``), whether it polls itself or another process does, and subscribes with
a ``FrameFeedClient`` (``core/frame_client.py``).

The wire: newline-separated JSON. The subscriber sends ``{"secret": ..., "buses": [...]}``
(and may send ``{"buses": [...]}`` again to watch other buses); the feed answers
``{"hello": {"buses": [...], "pid": ...}}``, then ``{"frame": {...}}`` per frame
(``Frame.to_json``), ``{"dropped": N}`` when frames had to be dropped for this subscriber (its
total so far) and ``{"alive": t}`` every few seconds.

Costs: a bus's link gets its ``FrameTap`` only while someone watches that bus (``link.frames``
is None otherwise). A frame is put on each watching subscriber's bounded queue and never waits:
a subscriber that cannot keep up loses frames and is told how many. The endpoint is reachable
from this computer only; a window on another computer (PostgreSQL) is told where the feed is.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import secrets
import select
import socket
import threading
import time
import weakref
from collections.abc import Iterable
from dataclasses import dataclass

from app.drivers.frames import Frame, FrameTap
from app.errors import UserFacingError
from app.i18n import _
from app.storage import meta

log = logging.getLogger("voltkeeper.frame_feed")

ENDPOINT_KEY = "frames.endpoint"
#: Frames waiting for one subscriber before new ones are dropped.
QUEUE_FRAMES = 5000
MAX_SUBSCRIBERS = 8
ALIVE_EVERY_S = 2.0
#: The socket's own buffer for a subscriber: small, the queue above is the buffer that counts
#: (a subscriber that stops reading is seen soon, and its frames dropped).
SEND_BUFFER = 16384
#: A subscriber whose socket takes no bytes for this long is cut off.
SEND_TIMEOUT_S = 5.0
#: A feed not heard from (not even ``alive``) for this long is taken for gone.
SILENT_AFTER_S = 3 * ALIVE_EVERY_S + 1


class FeedUnavailable(UserFacingError):
    """No frames can be had from the polling process (none publishes, or it cannot be
    reached); the message says why."""


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    pid: int
    hostname: str
    secret: str

    def to_text(self) -> str:
        return json.dumps({"host": self.host, "port": self.port, "pid": self.pid,
                           "hostname": self.hostname, "secret": self.secret})

    @classmethod
    def from_text(cls, text: str) -> Endpoint | None:
        try:
            d = json.loads(text)
            return cls(str(d["host"]), int(d["port"]), int(d["pid"]), str(d["hostname"]),
                       str(d["secret"]))
        except (ValueError, KeyError, TypeError):
            return None

    def describe(self) -> str:
        return _("pid {pid} on {host}").format(pid=self.pid, host=self.hostname)


def find_endpoint() -> Endpoint | None:
    """Where the polling process serves its frames (None: no process publishes any)."""
    text = meta.get(ENDPOINT_KEY)
    return None if text is None else Endpoint.from_text(text)


# -- the server (in the polling process) ---------------------------------------------------------
class _Subscriber:
    def __init__(self, feed: FrameFeed, sock: socket.socket) -> None:
        self.feed = feed
        self.sock = sock
        self.queue: queue.Queue[Frame] = queue.Queue(maxsize=feed.queue_frames)
        self.buses: frozenset[str] = frozenset()
        self.dropped = 0
        self._drop_lock = threading.Lock()
        self._inbox = b""
        self.thread = threading.Thread(target=self.run, name="frame-feed-subscriber",
                                       daemon=True)

    def offer(self, frame: Frame) -> None:
        """Called in a bus's thread: never waits."""
        try:
            self.queue.put_nowait(frame)
        except queue.Full:
            with self._drop_lock:
                self.dropped += 1

    def _lines(self, timeout: float) -> list[dict] | None:
        """Requests that arrived (None: the subscriber hung up)."""
        ready, _w, _x = select.select([self.sock], [], [], timeout)
        if not ready:
            return []
        chunk = self.sock.recv(4096)
        if not chunk:
            return None
        self._inbox += chunk
        if len(self._inbox) > 65536:
            return None
        *lines, self._inbox = self._inbox.split(b"\n")
        out = []
        for line in lines:
            try:
                d = json.loads(line)
            except ValueError:
                return None
            if isinstance(d, dict):
                out.append(d)
        return out

    def _send(self, items: list[dict]) -> None:
        self.sock.sendall(b"".join(json.dumps(i, separators=(",", ":")).encode() + b"\n"
                                   for i in items))

    def _subscribe(self, requests: list[dict]) -> None:
        for d in requests:
            if isinstance(d.get("buses"), list):
                self.buses = frozenset(str(b) for b in d["buses"])
                self.feed._route()

    def run(self) -> None:
        try:
            self.sock.settimeout(SEND_TIMEOUT_S)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
            first: list[dict] | None = []
            deadline = time.monotonic() + SEND_TIMEOUT_S
            while first == [] and time.monotonic() < deadline:
                first = self._lines(max(0.0, deadline - time.monotonic()))
            if not first or not secrets.compare_digest(str(first[0].get("secret", "")),
                                                       self.feed.secret):
                self._send([{"error": "refused"}])
                return
            self._send([{"hello": {"buses": sorted(self.feed.buses()), "pid": os.getpid()}}])
            self._subscribe(first)
            told, last_sent = 0, time.monotonic()
            while not self.feed.stopping.is_set():
                requests = self._lines(0)
                if requests is None:
                    return
                self._subscribe(requests)
                out: list[dict] = []
                try:
                    out.append({"frame": self.queue.get(timeout=0.2).to_json()})
                    while len(out) < 500:
                        out.append({"frame": self.queue.get_nowait().to_json()})
                except queue.Empty:
                    pass
                if self.dropped != told:
                    told = self.dropped
                    out.append({"dropped": told})
                if not out and time.monotonic() - last_sent >= ALIVE_EVERY_S:
                    out.append({"alive": time.time()})
                if out:
                    self._send(out)
                    last_sent = time.monotonic()
        except OSError as exc:  # hung up, or too slow to take bytes at all
            log.info("frame subscriber gone: %s", exc)
        finally:
            self.buses = frozenset()
            self.feed._forget(self)
            try:
                self.sock.close()
            except OSError:
                pass


class FrameFeed:
    """Serves the frames of the buses of a reading service (see the module's doc)."""

    def __init__(self, *, host: str = "127.0.0.1", queue_frames: int = QUEUE_FRAMES,
                 publish: bool = True) -> None:
        self.host = host
        self.queue_frames = queue_frames
        self.publish = publish
        self.secret = secrets.token_hex(16)
        self.stopping = threading.Event()
        self.endpoint: Endpoint | None = None
        self._lock = threading.Lock()
        self._subscribers: list[_Subscriber] = []
        self._routes: dict[str, tuple[_Subscriber, ...]] = {}
        self._buses: set[str] = set()  # the buses this feed can show
        #: bus name -> its ModbusLinks alive, each with its own tap (a tap pairs a link's
        #: requests with their answers)
        self._links: dict[str, weakref.WeakKeyDictionary] = {}
        self._server: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def buses(self) -> list[str]:
        return sorted(self._buses)

    # -- the buses ---------------------------------------------------------------------------
    def attach(self, pollers: Iterable) -> None:
        """Watch these ``BusPoller``s: each link they make (now and after a restart) gets a
        tap while someone watches its bus."""
        for poller in pollers:
            bus = poller.bus.name
            with self._lock:
                self._buses.add(bus)
            make = poller.link_factory

            def factory(config, _make=make, _bus=bus):
                link = _make(config)
                self.attach_link(_bus, link)
                return link

            poller.link_factory = factory
            if poller.link is not None:
                self.attach_link(bus, poller.link)

    def attach_link(self, bus: str, link) -> None:
        """Show the frames of ``link`` (a ``ModbusLink`` on ``bus``) too: a link made outside
        the bus's poller, such as a scan's while it holds the bus."""
        framing = "tcp" if link.config.transport == "tcp" else "rtu"
        tap = FrameTap(bus, self._publish, framing)
        with self._lock:
            self._buses.add(bus)
            self._links.setdefault(bus, weakref.WeakKeyDictionary())[link] = tap
            link.frames = tap if bus in self._routes else None

    def _publish(self, frame: Frame) -> None:
        for sub in self._routes.get(frame.bus, ()):
            sub.offer(frame)

    def _route(self) -> None:
        """Who watches which bus; a bus nobody watches has no tap (no cost)."""
        with self._lock:
            routes: dict[str, list[_Subscriber]] = {}
            for sub in self._subscribers:
                for bus in sub.buses:
                    if bus in self._buses:
                        routes.setdefault(bus, []).append(sub)
            self._routes = {bus: tuple(subs) for bus, subs in routes.items()}
            for bus, links in self._links.items():
                for link, tap in list(links.items()):
                    link.frames = tap if bus in self._routes else None

    def _forget(self, sub: _Subscriber) -> None:
        with self._lock:
            if sub in self._subscribers:
                self._subscribers.remove(sub)
        self._route()

    def watched(self) -> list[str]:
        """The buses someone watches now."""
        return sorted(self._routes)

    # -- serving -----------------------------------------------------------------------------
    def start(self, pollers: Iterable = ()) -> Endpoint | None:
        """Serve the pollers' frames; record where (unless ``publish`` is off). A feed that
        cannot start is logged, never the reading service's failure."""
        self.attach(pollers)
        self.stopping.clear()
        try:
            server = socket.create_server((self.host, 0))
            server.settimeout(0.5)
        except OSError as exc:
            log.error("the frame feed cannot listen on %s: %s", self.host, exc)
            return None
        self._server = server
        host, port = server.getsockname()[:2]
        self.endpoint = Endpoint(host, port, os.getpid(), socket.gethostname(), self.secret)
        self._thread = threading.Thread(target=self._accept, name="frame-feed", daemon=True)
        self._thread.start()
        if self.publish:
            try:
                meta.put(ENDPOINT_KEY, self.endpoint.to_text())
            except Exception as exc:  # a busy database: the monitor says none is published
                log.warning("could not record the frame feed's address: %s", exc)
        log.info("frame feed on %s:%s", host, port)
        return self.endpoint

    def _accept(self) -> None:
        assert self._server is not None
        while not self.stopping.is_set():
            try:
                sock, _addr = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                if len(self._subscribers) >= MAX_SUBSCRIBERS:
                    sock.close()
                    continue
                sub = _Subscriber(self, sock)
                self._subscribers.append(sub)
            sub.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        if self._server is not None:
            self._server.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        with self._lock:
            subs = list(self._subscribers)
        for sub in subs:
            try:  # a send blocked on a subscriber that reads nothing ends now
                sub.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for sub in subs:
            sub.thread.join(timeout=5)
        with self._lock:
            for links in self._links.values():
                for link in list(links.keys()):
                    link.frames = None
        if self.publish and self.endpoint is not None and self._server is not None:
            try:
                meta.withdraw(ENDPOINT_KEY, self.endpoint.to_text())
            except Exception as exc:
                log.warning("could not withdraw the frame feed's address: %s", exc)
        self._server = None
