"""Workflow ids: the one place that spells them.

A case's id is derived from the upstream complaint id (DESIGN.md), so a replayed or
duplicated intake event can never start a second workflow for the same complaint.
"""

COMPLAINT_PREFIX = "complaint-"
PLAN_PREFIX = "governance-plan-"


def complaint_workflow_id(complaint_id: str) -> str:
    """The case workflow's id; one per upstream complaint id, forever."""
    return f"{COMPLAINT_PREFIX}{complaint_id}"


def complaint_id_of(workflow_id: str) -> str | None:
    """The complaint id a case workflow's id spells, or None for another workflow's."""
    if workflow_id.startswith(COMPLAINT_PREFIX) and len(workflow_id) > len(COMPLAINT_PREFIX):
        return workflow_id[len(COMPLAINT_PREFIX):]
    return None


def plan_workflow_id(plan_id: str) -> str:
    """The governance plan's workflow id (一方案三清单)."""
    return f"{PLAN_PREFIX}{plan_id}"
