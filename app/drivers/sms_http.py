"""An HTTP SMS gateway: one POST per message, with the standard library only.

``POST <url>`` with ``Authorization: Bearer <key>`` and the JSON body ``{"to": "+86...",
"text": "..."}``. A 2xx answer with a JSON object is the gateway's word: ``{"ok": false, ...}``
or an ``"error"`` is a refusal; otherwise it took the message (``"parts"``, when it says, is
how many parts it sent; else they are counted here as a modem would send them).

- A non-2xx answer (redirects are not followed: the key goes to no other address) or a
  gateway that cannot be reached is ``SmsNotSent``: retried by the outbox.
- No answer in time, a connection broken after the request, or a 2xx answer that is no JSON
  object is ``SmsMaybeSent``: the gateway may have taken it, it is not sent again.

The key is read from a file of its own (mode 0600, never the database, a log or a command
line); ``write_key`` writes one whole, readable by its owner only.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from app.drivers.modem import mask_number
from app.drivers.sms_pdu import split_text
from app.drivers.sms_sender import SmsMaybeSent, SmsNotSent
from app.errors import ConfigError
from app.i18n import _

log = logging.getLogger("voltkeeper.drivers.sms_http")

#: At most this much of an answer is read.
MAX_ANSWER = 64 * 1024


def read_key(path: Path) -> str:
    """The gateway's key from ``path``; ConfigError when it is missing, readable by others
    or not one line of printable characters."""
    try:
        if os.name == "posix" and path.stat().st_mode & 0o077:
            raise ConfigError(_("the SMS gateway key {path} may be read by others: "
                                "chmod 600 {path}").format(path=path))
        key = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise ConfigError(_("there is no SMS gateway key at {path}: main.py sms key --db DB "
                            "writes one").format(path=path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(_("the SMS gateway key {path} cannot be read: {error}").format(
            path=path, error=type(exc).__name__)) from None
    if not key or not key.isascii() or not key.isprintable() or any(c.isspace() for c in key):
        raise ConfigError(_("the SMS gateway key {path} is not one line of printable "
                            "characters").format(path=path))
    return key


def write_key(path: Path, key: str) -> None:
    """Write the key to ``path`` (mode 0600), whole: a reader sees the old key or the new."""
    key = key.strip()
    if not key or not key.isascii() or not key.isprintable() or any(c.isspace() for c in key):
        raise ConfigError(_("an SMS gateway key is one line of printable characters"))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(key + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # the 3xx becomes an HTTPError


def _timed_out(reason: object) -> bool:
    return isinstance(reason, TimeoutError)


class HttpGatewaySender:
    name = "http"

    def __init__(self, url: str, key_file: Path, *, timeout: float = 15.0) -> None:
        self.url = url.strip()
        self.key_file = key_file
        self.timeout = timeout
        self._key: str | None = None
        self._opener = urllib.request.build_opener(_NoRedirect)

    def open(self) -> None:
        """Check the address and read the key (ConfigError when either is wrong)."""
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(_("the SMS gateway's address is not an http:// or https:// "
                                "address: {url!r}").format(url=self.url))
        self._key = read_key(self.key_file)

    def close(self) -> None:
        self._key = None

    def send(self, phone: str, text: str) -> int:
        if self._key is None:
            self.open()
        body = json.dumps({"to": phone, "text": text}, ensure_ascii=False).encode("utf-8")
        request = urllib.request.Request(self.url, data=body, method="POST", headers={
            "Authorization": f"Bearer {self._key}",
            "Content-Type": "application/json; charset=utf-8",
            "Accept": "application/json", "User-Agent": "VoltKeeper"})
        try:
            with self._opener.open(request, timeout=self.timeout) as answer:
                status, raw = answer.status, answer.read(MAX_ANSWER)
        except urllib.error.HTTPError as exc:
            exc.close()
            raise SmsNotSent(_("the SMS gateway answered HTTP {status}").format(
                status=exc.code)) from None
        except urllib.error.URLError as exc:
            if _timed_out(exc.reason):
                raise SmsMaybeSent(_("the SMS gateway did not answer within {s:g} s").format(
                    s=self.timeout)) from None
            raise SmsNotSent(_("the SMS gateway cannot be reached: {error}").format(
                error=exc.reason)) from None
        except TimeoutError:
            raise SmsMaybeSent(_("the SMS gateway did not answer within {s:g} s").format(
                s=self.timeout)) from None
        except (http.client.HTTPException, OSError) as exc:
            raise SmsMaybeSent(_("the connection to the SMS gateway broke: {error}").format(
                error=type(exc).__name__)) from None
        return self._parts(status, raw, phone, text)

    def _parts(self, status: int, raw: bytes, phone: str, text: str) -> int:
        try:
            answer = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            answer = None
        if not isinstance(answer, dict):
            raise SmsMaybeSent(_("the SMS gateway answered HTTP {status} without a JSON "
                                 "object").format(status=status))
        if answer.get("ok") is False or answer.get("error"):
            reason = str(answer.get("error") or answer.get("message") or "")[:200]
            raise SmsNotSent(_("the SMS gateway refused the message: {reason}").format(
                reason=reason or "-"))
        parts = answer.get("parts")
        if not isinstance(parts, int) or isinstance(parts, bool) or parts < 1:
            parts = len(split_text(text)[1])
        log.info("SMS to %s taken by the gateway: %d part(s)", mask_number(phone), parts)
        return parts
