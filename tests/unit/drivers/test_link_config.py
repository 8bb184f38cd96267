"""A bus's link written as one line, read back the same; a Windows industrial PC's COM port
either way it is written."""

from __future__ import annotations

import pytest

from app.drivers.modbus_link import LinkConfig
from app.errors import ConfigError


@pytest.mark.parametrize("url, device, baud, parity", [
    ("rtu:///dev/ttyUSB0?baud=9600&parity=E", "/dev/ttyUSB0", 9600, "E"),
    ("rtu://COM3", "COM3", 9600, "N"),
    ("rtu:///COM12?baud=19200", "COM12", 19200, "N"),
])
def test_serial_links_round_trip(url, device, baud, parity):
    cfg = LinkConfig.from_url(url)
    assert (cfg.transport, cfg.device, cfg.baud, cfg.parity) == ("rtu", device, baud, parity)
    assert LinkConfig.from_url(cfg.url()) == cfg


def test_tcp_links_and_bad_ones():
    cfg = LinkConfig.from_url("rtu-tcp://10.0.0.7:4001?baud=19200")
    assert (cfg.transport, cfg.host, cfg.port, cfg.baud) == ("rtu-tcp", "10.0.0.7", 4001, 19200)
    assert LinkConfig.from_url(cfg.url()) == cfg
    with pytest.raises(ConfigError):
        LinkConfig.from_url("http://10.0.0.7")
    with pytest.raises(ConfigError):
        LinkConfig.from_url("rtu:///dev/ttyS0?parity=X")
