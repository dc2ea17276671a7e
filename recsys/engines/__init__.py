"""Refresh engines: build a candidate version and publish it (local: implicit ALS + FAISS in one process)."""
