"""Online experiments (DESIGN.md §10, docs/experiments.md): definitions, assignment, interleaving, analysis."""
