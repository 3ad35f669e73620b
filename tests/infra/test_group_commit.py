"""Group commit: concurrent submits share a batch; each caller gets its own result or error."""

from __future__ import annotations

import asyncio

import pytest

from bot.infra.group_commit import GroupCommit


class Recorder:
    """An apply function that records its batches and can be made slow or failing."""

    def __init__(self, *, delay: float = 0.0) -> None:
        self.batches: list[list[int]] = []
        self.delay = delay
        self.fail_batch = False

    async def __call__(self, items: list[int]) -> list[int | BaseException]:
        self.batches.append(items)
        await asyncio.sleep(self.delay)
        if self.fail_batch:
            raise OSError("disk full")
        return [ValueError(f"bad {i}") if i < 0 else i * 10 for i in items]


async def test_items_arriving_while_a_batch_applies_share_the_next_one() -> None:
    apply = Recorder(delay=0.05)
    commits: GroupCommit[int, int] = GroupCommit(apply)
    results = await asyncio.gather(*(commits.submit(i) for i in range(50)))
    assert results == [i * 10 for i in range(50)]
    assert sum(len(b) for b in apply.batches) == 50
    assert len(apply.batches) < 50  # grouped: fewer applies than items


async def test_one_bad_item_fails_only_its_caller() -> None:
    commits: GroupCommit[int, int] = GroupCommit(Recorder())
    results = await asyncio.gather(
        commits.submit(1), commits.submit(-1), commits.submit(2), return_exceptions=True
    )
    assert results[0] == 10
    assert isinstance(results[1], ValueError)
    assert results[2] == 20


async def test_a_failed_batch_fails_every_caller_and_the_next_batch_still_runs() -> None:
    apply = Recorder()
    commits: GroupCommit[int, int] = GroupCommit(apply)
    apply.fail_batch = True
    results = await asyncio.gather(*(commits.submit(i) for i in range(3)), return_exceptions=True)
    assert all(isinstance(r, OSError) for r in results)
    apply.fail_batch = False
    assert await commits.submit(7) == 70


async def test_batches_never_exceed_the_weight_limit_but_a_heavy_item_still_goes() -> None:
    apply = Recorder(delay=0.01)
    weights = {i: 2 for i in range(9)} | {9: 7}
    commits: GroupCommit[int, int] = GroupCommit(apply, max_batch=4, weight=weights.__getitem__)
    await asyncio.gather(*(commits.submit(i) for i in range(10)))
    assert all(sum(weights[i] for i in batch) <= 4 for batch in apply.batches if 9 not in batch)
    assert [9] in apply.batches  # heavier than the limit: alone, not stuck
    assert sum(len(b) for b in apply.batches) == 10


async def test_a_cancelled_caller_does_not_cancel_the_batch_others_wait_on() -> None:
    apply = Recorder(delay=0.05)
    commits: GroupCommit[int, int] = GroupCommit(apply)
    first = asyncio.ensure_future(commits.submit(1))
    second = asyncio.ensure_future(commits.submit(2))
    await asyncio.sleep(0.01)
    first.cancel()
    assert await second == 20
    assert [1] in apply.batches or [1, 2] in apply.batches  # the cancelled item was applied
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_before_batch_runs_before_each_batch_and_flush_waits_for_all() -> None:
    calls: list[str] = []
    apply = Recorder()

    async def before() -> None:
        calls.append("before")

    commits: GroupCommit[int, int] = GroupCommit(apply, before_batch=before)
    pending = [asyncio.ensure_future(commits.submit(i)) for i in range(3)]
    await asyncio.sleep(0)  # let the three submits reach the queue
    await commits.flush()
    assert commits.idle
    assert sum(len(b) for b in apply.batches) == 3  # flush returned after all were applied
    assert calls == ["before"] * len(apply.batches)
    assert await asyncio.gather(*pending) == [0, 10, 20]
