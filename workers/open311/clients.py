"""Who may file through Open311: the API clients and their keys."""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from pathlib import Path

import yaml

from workers.open311.model import CHANNELS, ApiClient
from workers.runtime.settings import Settings


def load_clients(settings: Settings) -> list[ApiClient]:
    """API clients from ``open311_api_keys`` and ``open311_api_keys_file``.

    Raises:
        ValueError: naming the file and the bad entry.
    """
    clients = [ApiClient(name, key.get_secret_value())
               for name, key in settings.open311_api_keys.items()]
    path = settings.open311_api_keys_file
    if path is not None:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        for i, entry in enumerate(data.get("clients") or []):
            try:
                client = ApiClient(str(entry["name"]), str(entry["key"]),
                                   str(entry.get("channel", "APP")))
            except (KeyError, TypeError):
                raise ValueError(f"{path}: clients[{i}] needs a name and a key") from None
            clients.append(client)
    for c in clients:
        if c.channel not in CHANNELS:
            raise ValueError(f"Open311 client {c.name}: channel {c.channel!r} is not one of "
                             f"{', '.join(CHANNELS)}")
        if len(c.key) < 16:
            raise ValueError(f"Open311 client {c.name}: API key shorter than 16 characters")
    return clients


def find_client(clients: Sequence[ApiClient], key: str | None) -> ApiClient | None:
    """The client holding ``key``; every key is compared, in constant time each."""
    found = None
    for client in clients:
        if key is not None and hmac.compare_digest(client.key.encode(), key.encode()):
            found = client
    return found

