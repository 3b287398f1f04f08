"""Sorted views of a sandbox collection stay equal to a fresh sort through every kind of write."""

from __future__ import annotations

import random

from sandbox.store import Collection, Record


def by_rank(record: Record) -> tuple[int, str]:
    return record["rank"], record["name"]


def fresh(collection: Collection) -> tuple[list[object], list[str]]:
    pairs = sorted((by_rank(r), str(r["id"])) for r in collection)
    return [p[0] for p in pairs], [p[1] for p in pairs]


def filled(size: int, rng: random.Random) -> Collection:
    collection = Collection()
    collection.put_many({"id": f"r{i}", "rank": rng.randint(0, 50), "name": f"n{i}"} for i in range(size))
    return collection


def test_views_follow_new_changed_and_in_place_records() -> None:
    rng = random.Random(3)
    collection = filled(2_000, rng)
    assert collection.view("rank", by_rank) == fresh(collection)
    for step in range(300):
        kind = step % 3
        if kind == 0:  # a new record
            collection.put({"id": f"new{step}", "rank": rng.randint(0, 50), "name": f"x{step}"})
        elif kind == 1:  # a changed copy, as HubSpot's writes store them
            old = collection.get(f"r{rng.randrange(2_000)}")
            assert old is not None
            collection.put({**old, "rank": rng.randint(0, 50)})
        else:  # the same object changed in place, then stored again, as Stripe's writes do
            record = collection.get(f"r{rng.randrange(2_000)}")
            assert record is not None
            record["rank"] = rng.randint(0, 50)
            collection.put(record)
        if step % 7 == 0:  # reads between writes see every write before them
            assert collection.view("rank", by_rank) == fresh(collection)
    assert collection.view("rank", by_rank) == fresh(collection)


def test_touch_rebuilds_after_changes_nobody_announced() -> None:
    collection = filled(500, random.Random(4))
    collection.view("rank", by_rank)
    for record in collection:
        record["rank"] = -record["rank"]
    collection.touch()
    assert collection.view("rank", by_rank) == fresh(collection)


def test_many_writes_between_reads_rebuild_the_view_whole() -> None:
    rng = random.Random(5)
    collection = filled(400, rng)
    collection.view("rank", by_rank)
    collection.put_many({"id": f"r{i}", "rank": rng.randint(0, 50), "name": f"m{i}"} for i in range(300))
    assert collection.view("rank", by_rank) == fresh(collection)


def test_views_of_different_sorts_are_kept_apart() -> None:
    collection = filled(300, random.Random(6))
    by_name = collection.view("name", lambda r: r["name"])
    collection.view("rank", by_rank)
    collection.put({"id": "r0", "rank": 99, "name": "zzz"})
    assert collection.view("rank", by_rank) == fresh(collection)
    keys, ids = collection.view("name", lambda r: r["name"])
    assert keys[-1] == "zzz" and ids[-1] == "r0" and len(ids) == len(by_name[1])
