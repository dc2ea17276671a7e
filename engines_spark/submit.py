"""`spark-submit` entry point of the Spark refresh (the same job as `recsys refresh --engine spark`).

    spark-submit --master spark://spark-master:7077 --driver-memory 8g \\
        --conf spark.executor.memory=16g --conf spark.executor.cores=4 \\
        engines_spark/submit.py --data /shared/interactions.parquet

Settings come from the environment as everywhere (RECSYS_STORE_URL, RECSYS_SPARK__…); spark-submit's
master, memory and Python settings win over RECSYS_SPARK__MASTER / DRIVER_MEMORY. Executors need the
package installed (`pip install 'recsys[spark]'` in their image), the store URL reachable, and
RECSYS_SPARK__WORK_DIR on a filesystem every executor mounts. Prints the result as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import logging

from engines_spark.refresh import run_spark_refresh
from engines_spark.session import spark_session
from recsys.config import get_settings
from recsys.logging_setup import configure_logging
from recsys.store import store_from_settings


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    ap.add_argument("--data", default=None, help="base interactions (default RECSYS_DATA_PATH), read with the lake")
    ap.add_argument("--force", action="store_true", help="publish over the guardrails (recorded)")
    args = ap.parse_args(argv)
    settings = get_settings()
    configure_logging(settings.log_level)
    spark = spark_session(settings.spark, submitted=True)
    try:
        result = run_spark_refresh(settings, store_from_settings(settings), args.data, force=args.force, spark=spark)
    finally:
        spark.stop()
    logging.getLogger(__name__).info("event=spark_submit_done version=%s", result.version)
    print(json.dumps({"version": result.version, "users": result.users, "items": result.items,
                      "bytes_per_user": round(result.bytes_per_user, 1),
                      "seconds": {k: round(v, 2) for k, v in result.seconds.items()}}))


if __name__ == "__main__":
    main()
