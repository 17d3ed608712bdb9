"""Who may use the operator console, and the manners every console response keeps.

Sign-in takes one of API_TOKENS in a form (`token`), never in a URL. The session is
Flask's signed cookie, scoped to `/console`: `HttpOnly`, `SameSite=Strict`, `Secure` in
production, and it expires (CONSOLE_SESSION_MINUTES). It holds a fingerprint of the
token (never the token), its CSRF token and its expiry. Each request looks the
fingerprint up among today's API_TOKENS, so removing a token ends its sessions at once,
and the account scope comes from the configuration, not from the cookie.

The cookie's signing key is CONSOLE_SESSION_KEY, or else derived from API_TOKENS: every
worker and instance with the same tokens agrees, and no new secret has to be handed out.

Production with no API_TOKENS has no console (404). Development without tokens is open,
with a banner on every page. Every POST carries the session's CSRF token. Responses carry
a strict Content-Security-Policy (no inline script or style: htmx is a vendored file,
styles a stylesheet), and are never cached.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask, abort, g, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface, SessionMixin
from flask.wrappers import Request, Response

from ...config import Settings
from ...verifiers import first_equal, same

#: What console pages may load: their own scripts, styles and images, nothing inline.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
       "base-uri 'none'; frame-ancestors 'none'; form-action 'self'; connect-src 'self'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class Operator:
    """The signed-in operator (or development's open console)."""

    #: (vendor, account) the token may see, or None for every account.
    scope: tuple[str, str] | None
    csrf: str
    open_development: bool = False


def fingerprint(token: str) -> str:
    return hashlib.sha256(b"ingestion-console\0" + token.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def session_key(settings: Settings) -> bytes:
    configured = settings.console_session_key
    if configured:
        return configured.encode()
    material = "\n".join(token for token, _ in settings.api_tokens) or "development"
    return hmac.new(b"ingestion-console-session", material.encode("utf-8", "surrogatepass"), hashlib.sha256).digest()


#: The console's paths, and its cookie's.
PATH = "/console"


class ConsoleSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, opened only on the console's own paths.

    Flask opens the session of every request, and the signed cookie's opening builds an
    itsdangerous serializer each time: about 2% of a webhook's worker CPU (py-spy under
    `make bench`) for a session nothing outside the console reads. A browser sends the
    cookie only under its path (`/console`, RFC 6265 path-match), so elsewhere the
    session is Flask's null session: reading it finds nothing, writing to it fails loudly.
    """

    def open_session(self, app: Flask, request: Request) -> SessionMixin | None:
        path = request.path
        if path == PATH or path.startswith(PATH + "/"):
            return super().open_session(app, request)
        return self.make_null_session(app)


def configure(app: Flask, settings: Settings) -> None:
    """The session cookie's settings (the console is the app's only user of sessions)."""
    app.secret_key = session_key(settings)
    app.session_interface = ConsoleSessions()
    app.config.update(
        SESSION_COOKIE_NAME="ingestion_console",
        SESSION_COOKIE_PATH=PATH,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=not settings.development,
        PERMANENT_SESSION_LIFETIME=session_minutes(settings) * 60,
    )


def session_minutes(settings: Settings) -> int:
    return settings.console_session_minutes


def enabled(settings: Settings) -> bool:
    return bool(settings.api_tokens) or settings.development


def csrf_token() -> str:
    """This session's CSRF token (made on first use, also before sign-in)."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(24)
    return session["csrf"]


def check_csrf() -> None:
    sent = request.form.get("csrf_token", "")
    if not sent or not same(sent, session.get("csrf", "")):
        abort(403, "The form's CSRF token is missing or stale: reload the page and try again")


def sign_in(settings: Settings, token: str) -> bool:
    """Start a session for `token` when it is one of API_TOKENS."""
    place = first_equal(token, ((str(n), t) for n, (t, _) in enumerate(settings.api_tokens)))
    if place is None:
        return False
    found = settings.api_tokens[int(place)][0]
    session.clear()
    session.permanent = True
    session.update(who=fingerprint(found), csrf=secrets.token_urlsafe(24),
                   until=int(time.time()) + session_minutes(settings) * 60)
    return True


def current(settings: Settings) -> Operator | None:
    """The operator of this request, or None when nobody is signed in."""
    if not settings.api_tokens:
        return Operator(None, csrf_token(), open_development=True) if settings.development else None
    who, until = session.get("who"), session.get("until", 0)
    if not who or until < time.time():
        return None
    place = first_equal(who, ((str(n), fingerprint(t)) for n, (t, _) in enumerate(settings.api_tokens)))
    return Operator(settings.api_tokens[int(place)][1], csrf_token()) if place is not None else None


def console_page(settings: Settings) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """View decorator: a signed-in operator (else to the sign-in form), in `g.operator`;
    a POST must carry the session's CSRF token."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            if not enabled(settings):
                abort(404)
            operator = current(settings)
            if operator is None:
                if request.method != "GET" or request.headers.get("HX-Request"):
                    abort(401, "Sign in again: the console session is missing or expired")
                return redirect(url_for("console.login", next=request.full_path.rstrip("?")), code=303)
            if request.method == "POST":
                check_csrf()
            g.operator = operator
            return view(*args, **kwargs)

        guarded.console_auth = True  # type: ignore[attr-defined]  (tests/test_routes.py checks every page has it)
        return guarded

    return decorate


def add_security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response
