"""A case's filing (the request as the caller gave it) from its workflow in Temporal.

The ledger keeps no request text (personal data stays with the case): the text is the
complaint workflow's input, the first event of its history. Any process that needs it
(the command line's correction export, the workbench) reads it the same way, through a
client from :func:`workers.runtime.temporal.connect_temporal`.
"""

from __future__ import annotations

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from workflows.ids import complaint_workflow_id
from workflows.model import Filing


async def read_filing(client: Client, complaint_id: str) -> Filing | None:
    """The filing of ``complaint_id``'s latest run; ``None`` when Temporal no longer has the
    workflow (past its retention) or its input is not a filing. Other errors (Temporal
    unreachable) are raised for the caller to report."""
    handle = client.get_workflow_handle(complaint_workflow_id(complaint_id))
    try:
        async for event in handle.fetch_history_events():
            payloads = list(event.workflow_execution_started_event_attributes.input.payloads)
            if not payloads:
                return None
            decoded = await client.data_converter.decode(payloads[:1], [Filing])
            filing = decoded[0]
            return filing if isinstance(filing, Filing) else None
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    return None
