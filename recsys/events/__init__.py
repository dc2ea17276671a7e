"""The loop (DESIGN.md §9): event and impression log records, the API's log sinks, the lake ingest,
the micro-batch update and forgetting a user. See docs/loop.md."""
