"""Data contract: schema, validation, loaders, synthetic generator, evaluation splits."""

from recsys.data.loaders import Dataset, load_dataset
from recsys.data.schema import INTERACTION_SCHEMA, ITEM_SCHEMA

__all__ = ["Dataset", "load_dataset", "INTERACTION_SCHEMA", "ITEM_SCHEMA"]
