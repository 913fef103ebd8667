"""The case index (search attributes): what a step upserts, old way and lean way."""

from __future__ import annotations

from tests.workflows.test_steps import _dispatch, _handled
from workflows import search_attributes as sa
from workflows.model import Status
from workflows.state import CaseState


def _names(changed: dict) -> dict[str, object]:  # type: ignore[type-arg]
    return {k.name: v for k, v in changed.items()}


def _index(state: CaseState, lean: bool, close: bool = True) -> dict[str, object]:
    changed = sa.changed(state, lean, close)
    state.indexed.update({k.name: v for k, v in changed.items()})
    return _names(changed)


def test_the_lean_index_changes_at_dispatch_and_close_only_on_the_happy_path() -> None:
    state = _handled(_dispatch(1))
    first = _index(state, lean=True)
    assert first == {"HotlineStatus": "DISPATCHED", "HotlineOverdue": False,
                     "HotlineEscalationLevel": "UNIT", "HotlineTier": "T7D",
                     "HotlineCategory": "housing.lift", "HotlineDistrict": "朝阳区",
                     "HotlineLeadUnit": "u1"}
    for status in (Status.SIGNED, Status.IN_PROGRESS, Status.COMPLETED, Status.CALLBACK,
                   Status.EVALUATED):
        state.status = status
        assert _index(state, lean=True) == {}, status
    state.status = Status.CLOSED
    assert _index(state, lean=True) == {"HotlineStatus": "CLOSED"}


def test_every_status_change_is_indexed_the_old_way() -> None:
    state = _handled(_dispatch(1))
    _index(state, lean=False)
    for status in (Status.SIGNED, Status.IN_PROGRESS, Status.CALLBACK, Status.CLOSED):
        state.status = status
        assert _index(state, lean=False) == {"HotlineStatus": status.value}


def test_what_supervisors_filter_on_is_indexed_when_it_changes() -> None:
    state = _handled(_dispatch(1), _dispatch(2))
    _index(state, lean=True)
    state.status, state.level, state.overdue = Status.IN_PROGRESS, "DISTRICT", True
    assert _index(state, lean=True) == {"HotlineEscalationLevel": "DISTRICT",
                                        "HotlineOverdue": True}
    state.lead_dispatch_id = "C1-d2"
    assert _index(state, lean=True) == {"HotlineLeadUnit": "u2"}


def test_a_case_not_dispatched_is_indexed_once_when_it_closes() -> None:
    state = _handled(_dispatch(1))
    state.dispatches, state.lead_dispatch_id = {}, ""
    for status in (Status.ACCEPTED, Status.REJECTED, Status.WITHDRAWN):
        state.status = status
        assert _index(state, lean=True) == {}, status
    state.status = Status.CLOSED
    assert _index(state, lean=True)["HotlineStatus"] == "CLOSED"


def test_the_desk_is_a_phase() -> None:
    state = CaseState(status=Status.AWAITING_REVIEW)
    assert _index(state, lean=True)["HotlineStatus"] == "AWAITING_REVIEW"


def test_on_close_unindexed_the_close_is_left_to_the_execution_status() -> None:
    # A happy-path case indexes once (dispatched); its HotlineStatus stays DISPATCHED, and
    # a supervisor's filter for open cases adds ExecutionStatus = 'Running'.
    state = _handled(_dispatch(1))
    assert _index(state, lean=True, close=False)["HotlineStatus"] == "DISPATCHED"
    for status in (Status.SIGNED, Status.CALLBACK, Status.EVALUATED, Status.CLOSED):
        state.status = status
        assert _index(state, lean=True, close=False) == {}, status
    assert state.indexed["HotlineStatus"] == "DISPATCHED"
    # Unchanged the old way: every status, the close included.
    assert _index(state, lean=False, close=False) == {"HotlineStatus": "CLOSED"}
