"""The bootstrap lives in `recsys.bootstrap` (the ranker's champion/challenger comparison uses it too);
re-exported here for the evaluation's modules."""

from recsys.bootstrap import Interval, bootstrap_ci, paired_difference

__all__ = ["Interval", "bootstrap_ci", "paired_difference"]
