"""One error hierarchy for the whole program.

What the user sees is decided by the class: a ``UserFacingError`` carries a message written for
the operator (already translated); anything else is a defect, logged with its traceback and shown
as a short generic message. Drivers and storage raise their own subclasses so callers can
react (retry a bus, mark a meter offline) without parsing strings.
"""

from __future__ import annotations


class VoltKeeperError(Exception):
    """Base of every error VoltKeeper raises on purpose."""


class UserFacingError(VoltKeeperError):
    """An error whose message is meant for the operator as it stands."""


class Cancelled(VoltKeeperError):
    """A long operation was cancelled by the user."""


class ConfigError(UserFacingError):
    """A configuration or data file is wrong; the message names the file and the key."""


class DriverError(VoltKeeperError):
    """The world outside (a bus, a meter, a modem) did not do what was asked."""


class LinkDown(DriverError):
    """The link itself is unusable: serial port missing, gateway refusing connections."""


class NoResponse(DriverError):
    """The meter stayed silent until the timeout."""


class CrcError(DriverError):
    """Bytes came back but the frame was corrupt (bad CRC, truncated, wrong length)."""


class MeterException(DriverError):
    """The meter answered with a Modbus exception response."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


class NotSupported(UserFacingError):
    """The meter's profile has no such point or control (e.g. tripping a metering-only meter)."""


class StorageError(VoltKeeperError):
    """The database refused or failed an operation."""


class CorruptDatabase(UserFacingError):
    """The database file is damaged (refused at start, nothing changed); the message names the
    command that restores the newest backup."""


class MissingDatabase(UserFacingError):
    """There is no database at the path given (a typo, or a station not set up yet)."""


class UsageError(UserFacingError):
    """A command was given without what it needs (the command line exits with 2, as for a wrong
    flag)."""
