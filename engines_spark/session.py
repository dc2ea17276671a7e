"""The SparkSession the refresh runs on, from `SparkConfig` (RECSYS_SPARK__…)."""

from __future__ import annotations

import os
import shutil
import sys

from pyspark.sql import SparkSession

from recsys.config import SparkConfig


def java_available() -> bool:
    return shutil.which("java") is not None


def spark_session(config: SparkConfig, *, submitted: bool = False) -> SparkSession:
    """A session with the driver memory set before the JVM starts, no UI, Arrow on, and Python workers
    on this interpreter (they import the library and `engines_spark.partition`).

    `submitted`: started by `spark-submit` (engines_spark/submit.py), whose --master, memory and Python
    settings win; only the engine's own conf is added.
    """
    builder = SparkSession.builder.appName("recsys-refresh")
    if not submitted:
        # The JVM launches Python workers from this variable, not from the conf, in local mode.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = (builder.master(config.master)
                   .config("spark.driver.memory", config.driver_memory)
                   .config("spark.executor.memory", config.executor_memory)
                   .config("spark.pyspark.python", sys.executable)
                   .config("spark.pyspark.driver.python", sys.executable))
    builder = (builder.config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.execution.arrow.pyspark.enabled", "true")
               .config("spark.sql.execution.arrow.maxRecordsPerBatch", str(config.batch_users))
               # Spark's adaptive execution would coalesce the user partitions into one task on small data.
               .config("spark.sql.adaptive.coalescePartitions.enabled", "false"))
    if not submitted and config.master.startswith("local"):
        # One machine: no hostname lookups (containers often cannot resolve their own name).
        builder = builder.config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
    for key, value in config.conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    # Shuffles (the per-user grouping) get as many partitions as the users do, not Spark's 200: on a
    # small log 200 near-empty tasks cost more than the work.
    spark.conf.set("spark.sql.shuffle.partitions", str(partitions_of(spark, config)))
    return spark


def partitions_of(spark: SparkSession, config: SparkConfig) -> int:
    return config.partitions or int(spark.sparkContext.defaultParallelism)
