"""Strict settings from the environment: a bad value stops start-up with a clear message."""
import os
from pathlib import Path
from urllib.parse import unquote, urlparse


class ConfigError(ValueError):
    pass


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw in ("1", "true", "True", "yes"):
        return True
    if raw in ("0", "false", "False", "no"):
        return False
    raise ConfigError(f"{name}={raw!r}: expected true/false (or 1/0, yes/no)")


def env_int(name: str, default: int, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r}: expected an integer") from None
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name}={value}: must be at least {minimum}")
    return value


def env_secret(name: str, default: str) -> str:
    """NAME, or the contents of the file named by NAME_FILE (docker secrets)."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        return Path(path).read_text().strip()
    return os.environ.get(name, default)


def env_url(name: str, default: str, schemes: tuple[str, ...]) -> str:
    raw = os.environ.get(name) or default
    scheme = urlparse(raw).scheme
    if scheme not in schemes:
        raise ConfigError(f"{name}={raw!r}: scheme must be one of {', '.join(schemes)}")
    return raw


def database_from_url(url: str) -> dict:
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        # sqlite:///relative/path or sqlite:////absolute/path
        path = unquote(parsed.path[1:] if parsed.path.startswith("//") else parsed.path.lstrip("/"))
        if parsed.path.startswith("//"):
            path = "/" + path.lstrip("/")
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": path,
                "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE"},
                # One test database per test process, so parallel runs never share a file.
                "TEST": {"NAME": str(Path(path).with_name(f"test-{os.getpid()}-" + Path(path).name))}}
    if parsed.scheme in ("postgres", "postgresql", "pgsql"):
        return {"ENGINE": "django.db.backends.postgresql", "NAME": unquote(parsed.path.lstrip("/")),
                "USER": unquote(parsed.username or ""), "PASSWORD": unquote(parsed.password or ""),
                "HOST": parsed.hostname or "", "PORT": str(parsed.port or ""),
                "CONN_MAX_AGE": env_int("DB_CONN_MAX_AGE", 60, minimum=0),
                # JIT compiling a page's query cost 400 ms to save 0 (docs/review.md): short queries only here.
                "OPTIONS": {"options": "-c jit=off"}}
    raise ConfigError(f"DATABASE_URL={url!r}: use sqlite:///path or postgres://user@host:port/db")
