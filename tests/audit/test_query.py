"""Reading: records streamed in chain order, filters, stats."""

from __future__ import annotations

from bot.audit import Archive, Query, action_entry, message_entry, review_entry
from bot.audit.records import Stored, sender_reference
from bot.domain import Category
from tests.audit.helpers import entries, message, outcome


def test_records_are_streamed_in_chain_order_with_their_links(archive: Archive) -> None:
    archive.append(entries(3))
    stored: list[Stored] = list(archive.select())
    assert [s.seq for s in stored] == [1, 2, 3]
    assert stored[1].prev_hash == stored[0].hash


def test_filters_combine_and_a_category_brings_its_actions_and_reviews(
    archive: Archive,
) -> None:
    flagged = message(1, group="g1", sender="alice")
    archive.append(
        [
            message_entry(flagged, *outcome(Category.PII), screened_at=100.0, latency_ms=1.0),
            message_entry(message(2, group="g2"), *outcome(), screened_at=200.0, latency_ms=1.0),
            action_entry(flagged, "warn", "sent", {}, key="warn:sent"),
            review_entry(flagged.id, "officer", "resolved", "", conversation_id="g1"),
        ]
    )

    def seqs(query: Query) -> list[int]:
        assert archive.count(query) == len(list(archive.select(query)))
        return [s.seq for s in archive.select(query)]

    assert seqs(Query()) == [1, 2, 3, 4]
    assert seqs(Query(category="pii")) == [1, 3, 4]
    assert seqs(Query(category="advice")) == []
    assert seqs(Query(group="g2")) == [2]
    assert seqs(Query(since=100.0, until=200.0, kinds=("message",))) == [1]
    assert seqs(Query(sender_ref=sender_reference("alice", archive.ring))) == [1, 3]
    assert seqs(Query(message_id="m1", kinds=("action", "review"))) == [3, 4]
    assert archive.message_record("m2") == next(archive.select(Query(group="g2")))
    assert archive.message_record("m9") is None


def test_stats_count_without_decrypting(archive: Archive) -> None:
    archive.append(entries(3, at=1_700_000_000.0))
    archive.head()
    stats = archive.stats()
    assert (stats["records"], stats["by_kind"], stats["by_key_id"]) == (
        3,
        {"message": 3},
        {"k1": 3},
    )
    assert (stats["first_seq"], stats["last_seq"], stats["last_checkpoint_seq"]) == (1, 3, 3)
    assert stats["oldest"] == "2023-11-14T22:13:20+00:00"
    assert (stats["archive_id"], stats["format"]) == (archive.archive_id, 2)
    assert stats["purged_before_seq"] is None
    assert stats["bytes"] > 0
