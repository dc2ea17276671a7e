"""Offline evaluation: metrics, the session-holdout / global-time protocols and reports."""
