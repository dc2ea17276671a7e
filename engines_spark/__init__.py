"""The Spark refresh engine (`recsys refresh --engine spark`, the optional `[spark]` extra).

Outside `recsys/` on purpose: the library never imports Spark (ARCHITECTURE.md), and only a shell
that was asked for this engine imports this package. `partition.py` is the executor side and imports
no Spark either (numpy, pyarrow, the library), so it is unit-tested without a JVM.
"""

from __future__ import annotations

from engines_spark.refresh import run_spark_refresh, spark_available

__all__ = ["run_spark_refresh", "spark_available"]
