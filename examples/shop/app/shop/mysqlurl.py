"""PyMySQL connection arguments from a `mysql://user:password@host:port/db` URL."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit


def connect_args(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    if parts.scheme != "mysql":
        raise ValueError(f"not a mysql:// URL: {parts.scheme}://...")
    return {
        "host": parts.hostname,
        "port": parts.port or 3306,
        "user": unquote(parts.username or ""),
        "password": unquote(parts.password or ""),
        "database": parts.path.lstrip("/"),
        "connect_timeout": 5,
    }
