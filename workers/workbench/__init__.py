"""The workbench: web pages for unit staff, dispatchers and supervisors (``hotline workbench``).

Reads come from the ledger (and the case's filing from Temporal); every action is an event
on the contract, produced to Kafka like any unit system's (DESIGN.md "The workbench").
"""
