"""Auth helpers: where credentials come from, roles, and the session signature."""

from __future__ import annotations

from pathlib import Path

import bcrypt
import pytest
import yaml

from ui import auth
from ui.auth import AuthConfigError, Role


@pytest.fixture(autouse=True)
def _no_configured_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("VITALS_AUTH_FILE", "VITALS_COOKIE_KEY", "VITALS_DEMO"):
        monkeypatch.delenv(var, raising=False)


def test_demo_mode_without_configuration() -> None:
    cfg = auth.config()
    assert cfg.demo and cfg.source == "demo"
    users = cfg.credentials["usernames"]
    assert {u: auth.role_of(e) for u, e in users.items()} == {
        "leader": Role.VIEWER,
        "ops": Role.EDITOR,
        "admin": Role.ADMIN,
    }
    for entry in users.values():
        assert entry["password"] != auth.DEMO_PASSWORD  # hashed, never plain
        assert bcrypt.checkpw(auth.DEMO_PASSWORD.encode(), entry["password"].encode())
    assert len(cfg.cookie_key) >= 32
    assert auth.config().cookie_key == cfg.cookie_key  # one random key per process


def test_demo_mode_can_be_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VITALS_DEMO", "0")
    with pytest.raises(AuthConfigError, match="No credentials are configured"):
        auth.config()
    assert auth.is_demo() is False


def _write(tmp_path: Path, data: dict) -> Path:
    p = tmp_path / "auth.yaml"
    p.write_text(yaml.safe_dump(data), encoding="utf-8")
    return p


def test_credentials_from_a_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    hashed = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(rounds=4)).decode()
    path = _write(
        tmp_path,
        {
            "credentials": {
                "usernames": {
                    "Dana": {"name": "Dana", "password": hashed, "roles": ["editor"]},
                    "eve": {"name": "Eve", "password": "plain-text"},
                }
            },
            "cookie": {"name": "c", "key": "k" * 40, "expiry_days": 3},
        },
    )
    monkeypatch.setenv("VITALS_AUTH_FILE", str(path))
    cfg = auth.config()
    assert cfg.source == "file" and not cfg.demo
    users = cfg.credentials["usernames"]
    assert set(users) == {"dana", "eve"}  # usernames are case-insensitive
    assert users["dana"]["password"] == hashed
    assert bcrypt.checkpw(b"plain-text", users["eve"]["password"].encode())  # hashed on load
    assert (cfg.cookie_name, cfg.cookie_expiry_days) == ("c", 3.0)
    assert [(u.username, u.role) for u in auth.users()] == [
        ("dana", Role.EDITOR),
        ("eve", Role.VIEWER),
    ]


def test_a_file_without_a_cookie_key_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = _write(tmp_path, {"credentials": {"usernames": {"a": {"name": "A", "password": "x"}}}})
    monkeypatch.setenv("VITALS_AUTH_FILE", str(path))
    with pytest.raises(AuthConfigError, match="VITALS_COOKIE_KEY"):
        auth.config()
    monkeypatch.setenv("VITALS_COOKIE_KEY", "from-the-environment")
    assert auth.config().cookie_key == "from-the-environment"


def test_an_unreadable_file_says_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VITALS_AUTH_FILE", str(tmp_path / "nope.yaml"))
    with pytest.raises(AuthConfigError, match="cannot read"):
        auth.config()


@pytest.mark.parametrize(
    ("roles", "expected"),
    [
        (["viewer"], Role.VIEWER),
        (["editor", "viewer"], Role.EDITOR),
        ("admin", Role.ADMIN),
        ([], Role.VIEWER),
        (["superuser"], Role.VIEWER),
        (None, Role.VIEWER),
    ],
)
def test_role_of(roles: object, expected: Role) -> None:
    assert auth.role_of({"roles": roles}) is expected


def test_roles_are_ordered() -> None:
    user = auth.User("ops", "Ops", Role.EDITOR)
    assert user.can(Role.VIEWER) and user.can(Role.EDITOR) and not user.can(Role.ADMIN)
    assert Role.parse(" Admin ") is Role.ADMIN and Role.parse("root") is None


def test_the_signature_binds_user_and_session() -> None:
    a = auth.sign("ops", session_id="s1")
    assert a == auth.sign("OPS", session_id="s1")
    assert a != auth.sign("admin", session_id="s1")
    assert a != auth.sign("ops", session_id="s2")
