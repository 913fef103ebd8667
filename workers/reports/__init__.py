"""Supervisor reports rendered from the ledger (the monthly HTML report and its CSV).

Used by ``hotline report monthly`` and by the demo; reads PostgreSQL only (STYLE.md: read
models come from events in PostgreSQL, never from Temporal visibility).
"""
