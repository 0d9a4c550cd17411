"""Property tests over the real store: whatever sequence of lifecycle steps and checkouts runs, every
VM is in exactly the state the model says, in one set only, and no VM is ever handed out twice."""

from __future__ import annotations

import asyncio

import redis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from tests.support.servers import RedisProcess, make_store
from vmpooler.states import LIVE_STATES, VMState
from vmpooler.store import keys

POOLS = ("a", "b")
#: VMs cloned per generated run, so the test can check the machine really ran
STEPS: list[int] = []


def make_machine(server: RedisProcess) -> type[RuleBasedStateMachine]:
    class StoreLifecycle(RuleBasedStateMachine):
        """Model: name -> state. Every rule applies one store operation and the same step to the model."""

        def __init__(self) -> None:
            super().__init__()
            redis.Redis(port=server.port).flushall()
            self.loop = asyncio.new_event_loop()
            self.store = make_store(server.port)
            self.model: dict[str, tuple[str, VMState]] = {}
            self.handed_out: set[str] = set()
            self.counter = 0

        def run(self, work):  # type: ignore[no-untyped-def]
            return self.loop.run_until_complete(work)

        def teardown(self) -> None:
            self.run(self.store.close())
            self.loop.close()

        def named(self, state: VMState) -> list[str]:
            return sorted(n for n, (_, s) in self.model.items() if s is state)

        @initialize()
        def start(self) -> None:
            assert not self.model
            STEPS.append(0)

        @rule(pool=st.sampled_from(POOLS))
        def clone(self, pool: str) -> None:
            STEPS[-1] += 1
            self.counter += 1
            name = f"vm{self.counter}"
            assert self.run(self.store.create_pending(pool, name, {"clone": "t"}))
            self.model[name] = (pool, VMState.PENDING)

        @precondition(lambda self: self.named(VMState.PENDING))
        @rule(data=st.data(), booted=st.booleans())
        def settle_pending(self, data: st.DataObject, booted: bool) -> None:
            name = data.draw(st.sampled_from(self.named(VMState.PENDING)))
            pool, _ = self.model[name]
            if booted:
                assert self.run(self.store.mark_ready(pool, name, 1e9, 1.0))
                self.model[name] = (pool, VMState.READY)
            else:
                assert self.run(self.store.move(pool, name, VMState.PENDING, VMState.FAILED))
                self.model[name] = (pool, VMState.FAILED)

        @rule(wanted=st.lists(st.sampled_from(POOLS), min_size=1, max_size=4))
        def checkout(self, wanted: list[str]) -> None:
            ready_per_pool = {p: len([n for n in self.named(VMState.READY) if self.model[n][0] == p]) for p in POOLS}
            taken = self.run(self.store.checkout([[p] for p in wanted], now=1e9))
            enough = all(wanted.count(p) <= ready_per_pool[p] for p in POOLS)
            if not enough:
                assert isinstance(taken, int), "a short batch must take nothing"
                return
            assert isinstance(taken, list) and [p for p, _ in taken] == wanted
            for pool, name in taken:
                assert self.model[name] == (pool, VMState.READY)
                assert name not in self.handed_out, f"{name} handed out twice"
                self.handed_out.add(name)
                self.model[name] = (pool, VMState.RUNNING)

        @precondition(lambda self: self.named(VMState.RUNNING) or self.named(VMState.READY))
        @rule(data=st.data())
        def retire(self, data: st.DataObject) -> None:
            name = data.draw(st.sampled_from(self.named(VMState.RUNNING) + self.named(VMState.READY)))
            pool, state = self.model[name]
            assert self.run(self.store.move(pool, name, state, VMState.COMPLETED))
            self.model[name] = (pool, VMState.COMPLETED)

        @precondition(lambda self: self.named(VMState.COMPLETED) or self.named(VMState.FAILED))
        @rule(data=st.data())
        def destroy(self, data: st.DataObject) -> None:
            name = data.draw(st.sampled_from(self.named(VMState.COMPLETED) + self.named(VMState.FAILED)))
            pool, state = self.model[name]
            assert self.run(self.store.mark_destroyed(pool, name, state, 1e9))
            self.model[name] = (pool, VMState.DESTROYED)

        @rule(data=st.data())
        def stale_move_is_refused(self, data: st.DataObject) -> None:
            """A second actor moving a VM from a state it already left changes nothing."""
            if not self.model:
                return
            name = data.draw(st.sampled_from(sorted(self.model)))
            pool, state = self.model[name]
            if state is not VMState.PENDING:
                assert not self.run(self.store.move(pool, name, VMState.PENDING, VMState.FAILED))

        @invariant()
        def sets_match_the_model(self) -> None:
            client = redis.Redis(port=server.port, decode_responses=True)
            for pool in POOLS:
                for state in LIVE_STATES:
                    expected = {n for n, (p, s) in self.model.items() if p == pool and s is state}
                    assert client.smembers(keys.state_set(state, pool)) == expected, (pool, state)
            client.close()

    return StoreLifecycle


def test_store_lifecycle_properties(redis_server: RedisProcess) -> None:
    machine = make_machine(redis_server)
    machine.TestCase.settings = settings(
        max_examples=40, stateful_step_count=30, deadline=None, suppress_health_check=list(HealthCheck)
    )
    machine.TestCase().runTest()  # raises on any violated invariant or assertion
    assert len(STEPS) >= 40 and sum(STEPS) > 100, "the state machine did not exercise the store"
