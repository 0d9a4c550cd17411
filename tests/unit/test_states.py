"""The lifecycle table: every state accounted for, DESTROYED terminal, illegal moves raise."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vmpooler.errors import IllegalTransition
from vmpooler.states import ALLOWED, DOOMED_STATES, LIVE_STATES, VMState, can_move, check_move


def test_every_state_has_a_row_and_destroyed_is_terminal() -> None:
    assert set(ALLOWED) == set(VMState)
    assert ALLOWED[VMState.DESTROYED] == frozenset()
    assert set(LIVE_STATES) == set(VMState) - {VMState.DESTROYED}


def test_every_live_state_can_reach_destroyed() -> None:
    for start in LIVE_STATES:
        seen, frontier = {start}, [start]
        while frontier:
            for nxt in ALLOWED[frontier.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    frontier.append(nxt)
        assert VMState.DESTROYED in seen, f"{start} can never be destroyed: a VM would leak"


def test_only_doomed_states_lead_to_destroyed() -> None:
    assert {s for s in VMState if can_move(s, VMState.DESTROYED)} == set(DOOMED_STATES)


def test_a_checked_out_vm_can_only_be_returned_or_undone_by_its_handout_check() -> None:
    # READY and QUARANTINE only before the checkout's reply (api/services/handout.py), never after
    assert ALLOWED[VMState.RUNNING] == {VMState.COMPLETED, VMState.QUARANTINE, VMState.READY}
    with pytest.raises(IllegalTransition, match="running to pending"):
        check_move(VMState.RUNNING, VMState.PENDING)


def test_a_quarantined_vm_goes_back_to_ready_or_to_destruction() -> None:
    assert ALLOWED[VMState.QUARANTINE] == {VMState.READY, VMState.COMPLETED}
    with pytest.raises(IllegalTransition, match="quarantine to running"):
        check_move(VMState.QUARANTINE, VMState.RUNNING)


@given(st.sampled_from(list(VMState)), st.sampled_from(list(VMState)))
def test_check_move_agrees_with_the_table(source: VMState, target: VMState) -> None:
    if target in ALLOWED[source]:
        check_move(source, target)
    else:
        with pytest.raises(IllegalTransition):
            check_move(source, target)
