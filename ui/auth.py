"""Login, logout, the current user and role, and the server-side role check.

Who may do what:

- ``viewer`` (CS leadership): read every page and export.
- ``editor`` (CS ops): also edit scorecards, subjective scores and manual overrides.
- ``admin``: also the Admin page (users, roles, audit log).

Where credentials come from, first match wins (never from the repository):

1. ``st.secrets["auth"]`` (``.streamlit/secrets.toml``, git-ignored), or
2. the YAML file named by env ``VITALS_AUTH_FILE``.

Both hold streamlit-authenticator's shape::

    credentials: {usernames: {ops: {name: CS Ops, password: <bcrypt hash>, roles: [editor]}}}
    cookie: {name: vitals_auth, key: <random secret>, expiry_days: 7}

The cookie key may come from env ``VITALS_COOKIE_KEY`` instead. With neither source the app runs
in **demo mode** (unless env ``VITALS_DEMO=0``): the users ``leader`` (viewer), ``ops``
(editor) and ``admin`` (admin) with the password ``vitals-demo``, hashed when the process
starts, and a random cookie key per process (so a restart logs everyone out).

Why the role check cannot be forged: the role is looked up from the credentials by username,
and the username only counts when the session also holds an HMAC of (session id, username)
under a per-process secret. That signature is written only after streamlit-authenticator
accepted a password, or a re-login cookie whose JWT signature we verify ourselves. Setting
``st.session_state["username"] = "admin"`` (or any role key) without it gets nobody anywhere.
"""

from __future__ import annotations

import copy
import functools
import hmac
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from hashlib import sha256
from pathlib import Path
from typing import Any

import bcrypt
import streamlit as st
import streamlit_authenticator as stauth
import yaml

from ui import state

DEMO_PASSWORD = "vitals-demo"  # noqa: S105 (printed on the login page in demo mode)
DEMO_USERS: dict[str, tuple[str, str]] = {
    "leader": ("Casey Leader (CS leadership)", "viewer"),
    "ops": ("Morgan Ops (CS operations)", "editor"),
    "admin": ("Alex Admin", "admin"),
}
COOKIE_NAME = "vitals_auth"


class Role(IntEnum):
    """Ordered: a higher role can do everything a lower one can."""

    VIEWER = 1
    EDITOR = 2
    ADMIN = 3

    @classmethod
    def parse(cls, text: str) -> Role | None:
        try:
            return cls[str(text).strip().upper()]
        except KeyError:
            return None

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class User:
    username: str
    name: str
    role: Role
    email: str | None = None

    def can(self, role: Role) -> bool:
        return self.role >= role


@dataclass(frozen=True)
class AuthConfig:
    """The credentials (streamlit-authenticator's ``{"usernames": {...}}``), cookie settings
    and where they came from (``secrets``, ``file`` or ``demo``)."""

    credentials: Mapping[str, Any]
    cookie_name: str
    cookie_key: str
    cookie_expiry_days: float
    source: str

    @property
    def demo(self) -> bool:
        return self.source == "demo"


class AuthConfigError(RuntimeError):
    """No usable credentials: the message says what to configure."""


# --------------------------------------------------------------------------- configuration


def config() -> AuthConfig:
    """The credentials in force (see the module docstring). Raises :class:`AuthConfigError`
    when nothing is configured and demo mode is switched off."""
    raw, source = _configured()
    if raw is None:
        if os.environ.get("VITALS_DEMO", "1").strip().lower() in ("0", "false", "no", "off"):
            raise AuthConfigError(
                "No credentials are configured. Add an [auth] section to .streamlit/secrets.toml"
                " or set VITALS_AUTH_FILE to a credentials YAML file (see ui/auth.py), or unset"
                " VITALS_DEMO to use the demo users."
            )
        return AuthConfig(
            credentials=_demo_credentials(),
            cookie_name=COOKIE_NAME,
            cookie_key=_process_secret().hex(),
            cookie_expiry_days=1.0,
            source="demo",
        )
    creds = raw.get("credentials") or {}
    usernames = {str(k).lower(): dict(v) for k, v in dict(creds.get("usernames") or {}).items()}
    for entry in usernames.values():
        pw = str(entry.get("password", ""))
        if pw and not _is_bcrypt(pw):
            entry["password"] = _hash_plain(pw)
    cookie = dict(raw.get("cookie") or {})
    key = str(cookie.get("key") or os.environ.get("VITALS_COOKIE_KEY") or "")
    if not key:
        raise AuthConfigError(
            f"Credentials come from {source} but no cookie key is set: add cookie.key there or"
            " set VITALS_COOKIE_KEY to a long random string."
        )
    return AuthConfig(
        credentials={"usernames": usernames},
        cookie_name=str(cookie.get("name") or COOKIE_NAME),
        cookie_key=key,
        cookie_expiry_days=float(cookie.get("expiry_days", 7)),
        source=source,
    )


def _configured() -> tuple[Mapping[str, Any] | None, str]:
    try:
        if "auth" in st.secrets:
            return _to_dict(st.secrets["auth"]), "secrets"
    except Exception:  # noqa: S110 (no secrets.toml at all is the normal demo case)
        pass
    path = os.environ.get("VITALS_AUTH_FILE")
    if path:
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except OSError as exc:
            raise AuthConfigError(
                f"VITALS_AUTH_FILE={path}: cannot read it ({exc.strerror})"
            ) from None
        if not isinstance(data, Mapping):
            raise AuthConfigError(f"VITALS_AUTH_FILE={path}: expected a mapping with credentials")
        return data, "file"
    return None, ""


def _to_dict(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {k: _to_dict(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_to_dict(v) for v in x]
    return x


def _is_bcrypt(text: str) -> bool:
    return text.startswith(("$2a$", "$2b$", "$2y$")) and len(text) == 60


@functools.lru_cache(maxsize=64)
def _hash_plain(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()


@functools.lru_cache(maxsize=1)
def _demo_credentials() -> dict[str, Any]:
    """Demo users, hashed once per process. The password is printed on the login page, so the
    bcrypt cost protects nothing here: a low cost keeps logins (and tests) fast."""
    usernames = {}
    for username, (name, role) in DEMO_USERS.items():
        hashed = bcrypt.hashpw(DEMO_PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
        usernames[username] = {
            "name": name,
            "email": f"{username}@demo.vitals",
            "password": hashed,
            "roles": [role],
        }
    return {"usernames": usernames}


@functools.lru_cache(maxsize=1)
def _process_secret() -> bytes:
    """A random secret per process: signs sessions (and the demo cookie)."""
    return secrets.token_bytes(32)


def role_of(entry: Mapping[str, Any]) -> Role:
    """The highest known role in a credentials entry's ``roles`` (a viewer when none)."""
    roles = entry.get("roles") or []
    if isinstance(roles, str):
        roles = [roles]
    found = [r for r in (Role.parse(x) for x in roles) if r is not None]
    return max(found) if found else Role.VIEWER


def users() -> list[User]:
    """Everyone in the credentials, for the Admin page (never the password hashes)."""
    cfg = config()
    out = []
    for username, entry in sorted(cfg.credentials["usernames"].items()):
        out.append(
            User(username, str(entry.get("name") or username), role_of(entry), entry.get("email"))
        )
    return out


# --------------------------------------------------------------------------- session binding


def _session_id() -> str:
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else ""


def sign(username: str, session_id: str | None = None) -> str:
    """HMAC of (session id, username) under the per-process secret."""
    sid = _session_id() if session_id is None else session_id
    msg = f"{sid}\x00{username.lower()}".encode()
    return hmac.new(_process_secret(), msg, sha256).hexdigest()


def _bind(username: str) -> None:
    st.session_state[state.AUTH_SIGNATURE] = sign(username)


def _on_login(event: Mapping[str, Any]) -> None:
    """streamlit-authenticator calls this after it accepted a password."""
    username = event.get("username")
    if event.get("widget") == "Login" and username:
        _bind(str(username))
        # The login page reruns the app at once, which would drop the cookie that
        # streamlit-authenticator is setting in this run: set it again on the next run.
        st.session_state[state.SET_COOKIE] = True


def _on_logout(_event: Mapping[str, Any]) -> None:
    st.session_state.pop(state.AUTH_SIGNATURE, None)


def _bind_from_cookie(cfg: AuthConfig) -> None:
    """After a cookie re-login, bind the session if (and only if) the cookie's JWT is valid
    under our key and names the same user."""
    import jwt

    username = st.session_state.get(state.AUTH_USERNAME)
    if not username or st.session_state.get(state.AUTH_SIGNATURE):
        return
    try:
        token = st.context.cookies.get(cfg.cookie_name)
    except Exception:
        token = None
    if not token:
        return
    try:
        payload = jwt.decode(token, cfg.cookie_key, algorithms=["HS256"])
    except jwt.PyJWTError:
        return
    if (
        str(payload.get("username", "")).lower() == str(username).lower()
        and float(payload.get("exp_date", 0)) > datetime.now().timestamp()
    ):
        _bind(str(username))


# --------------------------------------------------------------------------- per run


def init() -> stauth.Authenticate | None:
    """Create this run's authenticator (call once per run, from app.py, before the pages),
    try the re-login cookie, and render nothing. Returns None when no credentials are usable
    (the login page explains why)."""
    try:
        cfg = config()
    except AuthConfigError:
        st.session_state.pop(state.AUTHENTICATOR, None)
        return None
    authenticator = stauth.Authenticate(
        copy.deepcopy(dict(cfg.credentials)),
        cfg.cookie_name,
        cfg.cookie_key,
        cfg.cookie_expiry_days,
        auto_hash=False,
        login_sleep_time=0,  # we read cookies from st.context: nothing to wait for
    )
    st.session_state[state.AUTHENTICATOR] = authenticator
    if not st.session_state.get(state.AUTH_STATUS):
        try:
            authenticator.login(location="unrendered")
        except Exception:  # a stale cookie for a user who no longer exists, say
            st.session_state[state.AUTH_STATUS] = None
    if st.session_state.get(state.AUTH_STATUS):
        _bind_from_cookie(cfg)
        if current_user() is None:
            _forget()  # a session naming a user it cannot prove: treat it as signed out
        elif st.session_state.pop(state.SET_COOKIE, False):
            authenticator.cookie_controller.set_cookie()
    return authenticator


def _forget() -> None:
    for key in (state.AUTH_STATUS, state.AUTH_USERNAME, "name", "email", "roles"):
        st.session_state[key] = None
    st.session_state.pop(state.AUTH_SIGNATURE, None)


def authenticator() -> stauth.Authenticate | None:
    value = st.session_state.get(state.AUTHENTICATOR)
    return value if isinstance(value, stauth.Authenticate) else None


def login_form() -> User | None:
    """Render the login form (the login page). Returns the user once logged in."""
    auth = authenticator()
    if auth is None:
        return None
    try:
        auth.login(
            location="main",
            fields={
                "Form name": "Sign in to Vitals",
                "Username": "Username",
                "Password": "Password",
                "Login": "Sign in",
            },
            key="vitals_login",
            callback=_on_login,
        )
    except stauth.LoginError as exc:
        st.error(str(exc))
    if st.session_state.get(state.AUTH_STATUS) is False:
        st.error("Username or password is incorrect.")
    return current_user()


def logout_button() -> None:
    """The sign-out button (sidebar). After a click the session is anonymous at once."""
    auth = authenticator()
    if auth is None or current_user() is None:
        return
    auth.logout("Sign out", location="sidebar", key="vitals_logout", callback=_on_logout)
    if not st.session_state.get(state.AUTH_STATUS):
        st.session_state.pop(state.AUTH_SIGNATURE, None)


def current_user() -> User | None:
    """The signed-in user, or None. The role comes from the credentials, never from the
    session: a session only names a user when it holds that user's signature."""
    if st.session_state.get(state.AUTH_STATUS) is not True:
        return None
    username = st.session_state.get(state.AUTH_USERNAME)
    signature = st.session_state.get(state.AUTH_SIGNATURE)
    if not isinstance(username, str) or not isinstance(signature, str):
        return None
    if not hmac.compare_digest(signature, sign(username)):
        return None
    try:
        cfg = config()
    except AuthConfigError:
        return None
    entry = cfg.credentials["usernames"].get(username.lower())
    if entry is None:
        return None
    return User(
        username.lower(), str(entry.get("name") or username), role_of(entry), entry.get("email")
    )


def can(role: Role) -> bool:
    """Whether the current user has at least ``role`` (for showing or hiding controls; the
    write itself must still call :func:`require_role`)."""
    user = current_user()
    return user is not None and user.can(role)


def require_role(role: Role) -> User:
    """The current user if they have at least ``role``; otherwise an error and ``st.stop()``.

    Every page calls it first, and every write calls it again right before writing."""
    user = current_user()
    if user is None:
        st.error("Please sign in to continue.")
        st.stop()
        raise AssertionError("unreachable")  # st.stop raises; this keeps type checkers honest
    if not user.can(role):
        st.error(
            f"This needs the {role.label} role. You are signed in as {user.username}"
            f" ({user.role.label}). Ask an admin if you need access."
        )
        st.stop()
        raise AssertionError("unreachable")
    return user


def is_demo() -> bool:
    try:
        return config().demo
    except AuthConfigError:
        return False
