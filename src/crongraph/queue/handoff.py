"""Hand-off at creation: a client's run created on this process goes straight to one of its worker slots.

A client's interactive run (priority 0, no `after_seconds`) created while this process's queue has a free slot
and its thread has nothing in flight is inserted already claimed: `running`, under this process's lease (owner,
a fresh token, expiry) with attempt 1, exactly what the producer's claim would write, in the transaction that
inserts it. After commit it is given to the queue, which executes it at once: no wake-up of the producer, no
`any_claimable` read, no claim statement and no RUNS notification.

Invariants (each is what a claim gives a run, so every later step treats both alike):
- The slot is reserved (counted as taken) from before the insert until the run's task exists or the reservation
  is released, so the producer never fills it meanwhile.
- Only the creating process executes a handed-off run: other replicas claim `pending` runs only.
- One running run per thread: the run is handed off only when, under the thread's row lock (PostgreSQL; SQLite
  has one writer), no run of the thread is pending or running; every insert of a run on an existing thread takes
  that lock, so none can slip in beside it.
- A cancel that arrives between commit and the task's start is recorded (`RunQueue.cancel_local`) and seen by the
  executor when it starts; the lease, renewal, fencing of every write and the reaper apply unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from crongraph.storage.common import Record


@dataclass(eq=False)
class Slot:
    """A worker slot reserved for one run being created. `run_id` is set once the run's row is built; `assistant`
    and `taken` once the run was inserted claimed (else the reservation is released after commit)."""

    owner: str
    token: str
    lease_until: datetime
    run_id: str | None = None
    assistant: Record | None = None
    taken: bool = False

    def claim(self, run: Record) -> None:
        """Make `run` (a row about to be inserted) what the producer's claim would have made it."""
        run.update(
            status="running",
            lease_owner=self.owner,
            lease_token=self.token,
            lease_expires_at=self.lease_until,
            attempt=1,
        )
        self.run_id = run["run_id"]
        self.taken = True


class Slots(Protocol):
    """What the run service needs of the queue (RunQueue implements it)."""

    def reserve(self) -> Slot | None: ...

    def release(self, slot: Slot) -> None: ...

    def hand_off(self, slot: Slot, run: Record) -> None: ...

    def is_executing(self, run_id: str) -> bool: ...
