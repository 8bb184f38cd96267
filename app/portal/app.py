"""The residents' portal: FastAPI + Jinja2, server-rendered, usable without JavaScript.

``create_app`` opens the station's database and returns the ASGI app; ``main.py portal`` runs
it under uvicorn. Every page is about the signed-in resident's own room (``core/residents``):
no room id is ever taken from a URL or a form, and a path that is not a page is a bare 404.

Security: the session cookie holds a random id signed with the portal's secret (a file, mode
0600), HttpOnly and SameSite=Strict; the database keeps only its hash. Every form carries a
CSRF token (per session; before sign-in, bound to a pre-session cookie) checked on POST.
Headers: a Content-Security-Policy without scripts, nosniff, no referrer, no framing (except
in kiosk mode, whose sessions end after ``KIOSK_IDLE_S`` idle). Jinja escapes everything.
Texts follow the ``lang`` cookie or the browser's Accept-Language (zh_CN or en).
"""

from __future__ import annotations

import gettext
import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.core import online_payments, residents
from app.core.money import format_cents
from app.core.queries import BOOKING_KIND_TEXT
from app.i18n import LANGUAGES, N_, load_catalogue
from app.paths import data_dir
from app.storage.db import open_database

HERE = Path(__file__).resolve().parent
SESSION_COOKIE = "vk_session"
PRE_COOKIE = "vk_pre"
LANG_COOKIE = "lang"
KIOSK_IDLE_S = 60
CHART_DAYS = 30


def default_secret_file() -> Path:
    return data_dir() / "portal.secret"


def _secret(path: Path) -> bytes:
    """The portal's signing key: read from ``path``, or made there (mode 0600) the first
    time."""
    try:
        data = path.read_bytes()
        if len(data) >= 32:
            return data
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    data = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return data


def _catalogues() -> dict[str, gettext.NullTranslations]:
    return {lang: load_catalogue(lang) for lang in LANGUAGES}


def _language(request: Request) -> str:
    chosen = request.cookies.get(LANG_COOKIE, "")
    if chosen in LANGUAGES:
        return chosen
    accept = request.headers.get("accept-language", "").lower()
    first = accept.split(",")[0].strip()
    return "zh_CN" if first.startswith("zh") else "en"


#: The kiosk's on-screen room pad (no JavaScript: each key submits the form).
PAD_KEYS = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "-", "0", "back")


def _pad(room: str, key: str) -> str:
    room = room[:residents.MAX_FIELD - 1]
    if key == "back":
        return room[:-1]
    return room + key if key in PAD_KEYS else room


def _chart(days: list[tuple[str, int]]) -> dict:
    """The bars of the daily-use chart in SVG user units (drawn by the template)."""
    width, height, top = 600, 200, 10
    peak = max((wh for _d, wh in days), default=0) or 1
    step = width / max(1, len(days))
    bars = []
    for k, (day, wh) in enumerate(days):
        h = round((height - top) * wh / peak, 1)
        bars.append({"x": round(k * step + 1, 1), "y": round(height - h, 1),
                     "w": round(step - 2, 1), "h": h, "day": day,
                     "kwh": f"{wh / 1000:.2f}"})
    return {"width": width, "height": height, "bars": bars,
            "peak_kwh": f"{peak / 1000:.2f}"}


def create_app(db_path: Path | str, *, kiosk: bool = False, secret_file: Path | None = None,
               secure_cookies: bool = False, clock: Callable[[], float] = time.time) -> FastAPI:
    """The portal on the database at ``db_path`` (which must exist). ``secure_cookies``: the
    portal is reached over HTTPS (a TLS proxy in front), so cookies are sent only over it."""
    open_database(Path(db_path), create=False)
    key = _secret(Path(secret_file) if secret_file else default_secret_file())
    catalogues = _catalogues()
    idle_s = KIOSK_IDLE_S if kiosk else residents.IDLE_S
    env = Environment(loader=FileSystemLoader(HERE / "templates"),
                      autoescape=select_autoescape(("html", "xml"), default=True))
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    def sign(value: str) -> str:
        return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()

    def cookie_token(request: Request) -> str | None:
        raw = request.cookies.get(SESSION_COOKIE, "")
        token, _dot, mac = raw.rpartition(".")
        if token and hmac.compare_digest(mac, sign("s:" + token)):
            return token
        return None

    def current(request: Request) -> residents.Session | None:
        return residents.session(cookie_token(request), idle_s=idle_s, now=clock())

    def set_cookie(resp: Response, name: str, value: str) -> None:
        resp.set_cookie(name, value, httponly=True, samesite="strict", path="/",
                        secure=secure_cookies)

    def render(request: Request, name: str, status: int = 200, **ctx) -> HTMLResponse:
        lang = _language(request)
        cat = catalogues[lang]
        ctx.setdefault("session", None)
        html = env.get_template(name).render(
            _=cat.gettext, lang=lang, kiosk=kiosk, idle_s=idle_s + 1,
            money=lambda c: format_cents(c, symbol=True), **ctx)
        return HTMLResponse(html, status_code=status)

    def to(path: str) -> RedirectResponse:
        return RedirectResponse(path, status_code=303)

    def t(request: Request, msgid: str, **params) -> str:
        return catalogues[_language(request)].gettext(msgid).format(**params)

    def error_text(request: Request, e: residents.PortalError) -> str:
        return t(request, e.msgid, **e.params)

    def signed_in(request: Request, *, allow_must_change: bool = False):
        """The session, or the redirect to take instead."""
        sess = current(request)
        if sess is None:
            return None, to("/signin")
        if sess.resident.must_change and not allow_must_change:
            return None, to("/password")
        return sess, None

    async def form_of(request: Request) -> dict[str, str]:
        form = await request.form()
        return {k: str(v)[:4000] for k, v in form.items() if isinstance(v, str)}

    @app.middleware("http")
    async def headers(request: Request, call_next):
        resp = await call_next(request)
        csp = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
               "base-uri 'none'; frame-ancestors " + ("'self'" if kiosk else "'none'"))
        resp.headers["Content-Security-Policy"] = csp
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "no-referrer"
        if not kiosk:
            resp.headers["X-Frame-Options"] = "DENY"
        if not request.url.path.startswith("/static/"):
            resp.headers["Cache-Control"] = "no-store"
        return resp

    @app.exception_handler(StarletteHTTPException)
    async def bare_error(_request: Request, exc: StarletteHTTPException):
        return PlainTextResponse("", status_code=exc.status_code)

    # -- signing in and out --------------------------------------------------------------------
    def signin_page(request: Request, error: str = "", status: int = 200,
                    room: str = "", person_no: str = "") -> HTMLResponse:
        pre = request.cookies.get(PRE_COOKIE) or secrets.token_urlsafe(24)
        resp = render(request, "signin.html", status, error=error, room=room,
                      person_no=person_no[:residents.MAX_FIELD], pad=PAD_KEYS,
                      csrf=sign("p:" + pre))
        set_cookie(resp, PRE_COOKIE, pre)
        return resp

    @app.get("/signin", response_class=HTMLResponse)
    def signin_form(request: Request):
        if current(request) is not None:
            return to("/")
        return signin_page(request)

    @app.post("/signin")
    async def signin(request: Request):
        form = await form_of(request)
        pre = request.cookies.get(PRE_COOKIE, "")
        if not pre or not hmac.compare_digest(form.get("csrf", ""), sign("p:" + pre)):
            return PlainTextResponse("", status_code=403)
        if kiosk and "pad" in form:  # the on-screen room pad: edit the room, sign nobody in
            return signin_page(request, room=_pad(form.get("room", ""), form["pad"]),
                               person_no=form.get("person_no", ""))
        client = request.client.host if request.client else ""
        try:
            resident = await run_in_threadpool(
                residents.sign_in, form.get("room", ""), form.get("person_no", ""),
                form.get("password", ""), client=client, now=clock())
        except residents.PortalError as e:
            return signin_page(request, error_text(request, e), 401,
                               room=form.get("room", "")[:residents.MAX_FIELD])
        token = residents.start_session(resident, now=clock())
        resp = to("/password" if resident.must_change else "/")
        set_cookie(resp, SESSION_COOKIE, f"{token}.{sign('s:' + token)}")
        resp.delete_cookie(PRE_COOKIE, path="/")
        return resp

    @app.post("/signout")
    async def signout(request: Request):
        sess = await run_in_threadpool(current, request)
        form = await form_of(request)
        if sess is not None:
            if not residents.csrf_ok(sess, form.get("csrf")):
                return PlainTextResponse("", status_code=403)
            residents.end_session(cookie_token(request))
        resp = to("/signin")
        resp.delete_cookie(SESSION_COOKIE, path="/")
        return resp

    @app.get("/lang/{code}")
    def choose_language(code: str):
        resp = to("/")
        if code in LANGUAGES:
            resp.set_cookie(LANG_COOKIE, code, samesite="strict", path="/",
                            max_age=None if kiosk else 365 * 86400)
        return resp

    # -- pages ---------------------------------------------------------------------------------
    @app.get("/password", response_class=HTMLResponse)
    def password_form(request: Request):
        sess, away = signed_in(request, allow_must_change=True)
        if away:
            return away
        return render(request, "password.html", session=sess, csrf=sess.csrf)

    @app.post("/password")
    async def password(request: Request):
        sess, away = await run_in_threadpool(signed_in, request, allow_must_change=True)
        if away:
            return away
        form = await form_of(request)
        if not residents.csrf_ok(sess, form.get("csrf")):
            return PlainTextResponse("", status_code=403)
        error = ""
        if form.get("new", "") != form.get("again", ""):
            error = t(request, N_("the two new passwords differ"))
        else:
            try:
                await run_in_threadpool(residents.change_password, sess.resident,
                                        form.get("current", ""), form.get("new", ""))
            except residents.PortalError as e:
                error = error_text(request, e)
        if error:
            return render(request, "password.html", 400, session=sess, csrf=sess.csrf,
                          error=error)
        return to("/")

    @app.get("/", response_class=HTMLResponse)
    def home(request: Request):
        sess, away = signed_in(request)
        if away:
            return away
        h = residents.home(sess.resident)
        cat = catalogues[_language(request)]
        reasons = [{"text": cat.gettext(residents.REASON_TEXT.get(r.reason, r.reason)),
                    "todo": cat.gettext(residents.WHAT_TO_DO.get(
                        r.reason, residents.WHAT_TO_DO["operator"])).format(
                        time=r.until or "?")} for r in h.reasons]
        return render(request, "home.html", session=sess, csrf=sess.csrf, home=h,
                      reasons=reasons, page="home")

    @app.get("/daily", response_class=HTMLResponse)
    def daily(request: Request):
        sess, away = signed_in(request)
        if away:
            return away
        days = residents.daily_use(sess.resident, CHART_DAYS)
        return render(request, "daily.html", session=sess, csrf=sess.csrf,
                      chart=_chart(days), page="daily",
                      rows=[(d, f"{wh / 1000:.2f}") for d, wh in reversed(days)])

    @app.get("/ledger", response_class=HTMLResponse)
    def ledger(request: Request):
        sess, away = signed_in(request)
        if away:
            return away
        cat = catalogues[_language(request)]
        lines = [{"when": datetime.fromtimestamp(x.t).strftime("%Y-%m-%d %H:%M"),
                  "kind": cat.gettext(BOOKING_KIND_TEXT[x.kind])
                  if x.kind in BOOKING_KIND_TEXT else x.kind,
                  "memo": x.memo, "amount": format_cents(x.amount_cents, symbol=True)}
                 for x in residents.ledger_lines(sess.resident)]
        return render(request, "ledger.html", session=sess, csrf=sess.csrf, lines=lines,
                      page="ledger")

    def requests_page(request: Request, sess: residents.Session, status: int = 200,
                      error: str = "", text: str = "") -> HTMLResponse:
        cat = catalogues[_language(request)]
        rows = [{"kind": cat.gettext(residents.KIND_TEXT.get(r.kind, r.kind)),
                 "when": datetime.fromtimestamp(r.created_at).strftime("%Y-%m-%d %H:%M"),
                 "text": r.text, "answered": r.state == "answered", "answer": r.answer,
                 "answered_at": datetime.fromtimestamp(r.answered_at).strftime(
                     "%Y-%m-%d %H:%M") if r.answered_at else ""}
                for r in residents.requests_of(sess.resident)]
        return render(request, "requests.html", status, session=sess, csrf=sess.csrf,
                      rows=rows, error=error, text=text, page="requests",
                      kinds=[(k, cat.gettext(residents.KIND_TEXT[k]))
                             for k in residents.REQUEST_KINDS])

    @app.get("/requests", response_class=HTMLResponse)
    def requests_list(request: Request):
        sess, away = signed_in(request)
        if away:
            return away
        return requests_page(request, sess)

    @app.post("/requests")
    async def request_submit(request: Request):
        sess, away = await run_in_threadpool(signed_in, request)
        if away:
            return away
        form = await form_of(request)
        if not residents.csrf_ok(sess, form.get("csrf")):
            return PlainTextResponse("", status_code=403)
        try:
            await run_in_threadpool(residents.submit_request, sess.resident,
                                    form.get("kind", ""), form.get("text", ""))
        except residents.PortalError as e:
            return requests_page(request, sess, 400, error_text(request, e),
                                 form.get("text", ""))
        return to("/requests")

    @app.get("/pay", response_class=HTMLResponse)
    def pay(request: Request):
        sess, away = signed_in(request)
        if away:
            return away
        return render(request, "pay.html", session=sess, csrf=sess.csrf, page="pay")

    # -- the providers' asynchronous notifications (no session, no CSRF: the signature is the
    # proof; core/online_payments verifies, books once, refuses and alarms) ------------------
    @app.post("/pay/notify/alipay")
    async def notify_alipay(request: Request):
        form = await request.form()
        text, _outcome = await run_in_threadpool(
            online_payments.handle_alipay, {k: str(v) for k, v in form.items()})
        return PlainTextResponse(text)

    @app.post("/pay/notify/wechat")
    async def notify_wechat(request: Request):
        body = await request.body()
        status, answer, _outcome = await run_in_threadpool(
            online_payments.handle_wechat, dict(request.headers), body)
        return JSONResponse(answer, status_code=status)

    return app
