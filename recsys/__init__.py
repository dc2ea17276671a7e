"""Hybrid recommender: ALS + FAISS candidates, LightGBM LambdaMART reranking."""

__version__ = "0.1.0"
