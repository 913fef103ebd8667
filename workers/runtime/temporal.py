"""The one way every hotline process connects to Temporal.

Address, namespace and transport security come from :class:`Settings`, so a TLS or
namespace setting reaches the worker, the bridges, the command line and the demo alike.
"""

from __future__ import annotations

import asyncio

from temporalio.client import Client
from temporalio.runtime import Runtime

from workers.runtime.security import temporal_connect_options
from workers.runtime.settings import Settings

# A command-line user waits this long for an answer before being told Temporal is away.
CONNECT_TIMEOUT_S = 10.0


async def connect_temporal(
    settings: Settings, *, runtime: Runtime | None = None,
    timeout: float | None = CONNECT_TIMEOUT_S,
) -> Client:
    """A Temporal client for ``settings`` (TLS included), bounded by ``timeout`` seconds.

    Args:
        settings: the process's settings (address, namespace, TLS).
        runtime: the process's Temporal runtime (metrics, logging), when it has one.
        timeout: seconds before :class:`TimeoutError`; ``None`` waits as long as it takes.
    """
    connecting = Client.connect(
        settings.temporal_address, namespace=settings.temporal_namespace,
        runtime=runtime, **temporal_connect_options(settings))
    if timeout is None:
        return await connecting
    return await asyncio.wait_for(connecting, timeout)
