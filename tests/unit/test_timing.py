"""The stopwatch: stages accumulate, and stages timed elsewhere are recorded under a prefix."""

from __future__ import annotations

from recsys.timing import Stopwatch


def test_stages_accumulate_and_keep_their_order() -> None:
    watch = Stopwatch("job")
    for name in ("a", "b", "a"):
        with watch.stage(name):
            pass
    assert list(watch.wall) == ["a", "b"] == list(watch.cpu)
    assert all(v >= 0.0 for v in watch.wall.values())


def test_record_adds_a_sub_jobs_stages_under_a_prefix() -> None:
    watch = Stopwatch("job")
    watch.record({"als": 2.0, "faiss": 1.0}, {"als": 3.0}, prefix="candidates.")
    watch.record({"als": 0.5})
    watch.record({"als": 1.0}, prefix="candidates.")
    assert watch.wall == {"candidates.als": 3.0, "candidates.faiss": 1.0, "als": 0.5}
    assert watch.cpu == {"candidates.als": 3.0}
