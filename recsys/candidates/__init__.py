"""Candidate generation: ALS, FAISS index, popularity fallback, co-visitation, batch top-N."""
