"""Creating, listing and stopping experiments in the store (the admin API and the CLI call these).

Every replica's reload poller reads the same stored definitions (`load_running`), so a change reaches
all of them within one poll interval, without a restart.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from recsys.errors import ConfigError, ExperimentConflictError, ExperimentNotFoundError
from recsys.experiments.assignment import ExperimentSet, allocate_slot
from recsys.experiments.config import STOPPED, Experiment, parse_experiment
from recsys.store import Store

log = logging.getLogger(__name__)


def list_experiments(store: Store) -> list[Experiment]:
    """Every defined experiment, running first, newest first; a stored definition that no longer
    validates is skipped and logged (it cannot serve)."""
    out = []
    for name, value in store.experiments.all().items():
        try:
            out.append(parse_experiment(value))
        except ConfigError as exc:
            log.error("event=experiment_invalid name=%s error=%r", name, str(exc))
    return sorted(out, key=lambda e: (not e.running, -e.created_at))


def get_experiment(store: Store, name: str) -> Experiment:
    for e in list_experiments(store):
        if e.name == name:
            return e
    raise ExperimentNotFoundError(f"no experiment named {name!r} (`recsys experiments list` shows them)")


def create_experiment(store: Store, definition: dict[str, Any]) -> Experiment:
    """Validate, give it a free slice of the traffic, store it. The name must be new (a stopped experiment's
    name too: its impressions in the lake keep that name)."""
    draft = parse_experiment({**definition, "status": "running", "slot_start": 0.0, "created_at": time.time(),
                              "stopped_at": None})
    created: list[Experiment] = []

    def change(defs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        if draft.name in defs:
            raise ExperimentConflictError(f"an experiment named {draft.name!r} exists already (names are never "
                                          "reused: its impressions keep the name); choose another name")
        running = [e for e in (_parsed(v) for v in defs.values()) if e is not None and e.running]
        experiment = draft.model_copy(update={"slot_start": allocate_slot(running, draft.traffic)})
        created.append(experiment)
        return {**defs, experiment.name: experiment.to_dict()}

    store.experiments.update(change)
    log.info("event=experiment_created name=%s kind=%s traffic=%g slot_start=%g", created[0].name, created[0].kind,
             created[0].traffic, created[0].slot_start)
    return created[0]


def stop_experiment(store: Store, name: str) -> Experiment:
    """Stop serving it (its users go back to the default path); its definition stays for the report."""
    stopped: list[Experiment] = []

    def change(defs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        if name not in defs:
            raise ExperimentNotFoundError(f"no experiment named {name!r} (`recsys experiments list` shows them)")
        e = parse_experiment(defs[name])
        if e.running:
            e = e.model_copy(update={"status": STOPPED, "stopped_at": time.time()})
        stopped.append(e)
        return {**defs, name: e.to_dict()}

    store.experiments.update(change)
    return stopped[0]


def load_running(store: Store) -> ExperimentSet:
    """What a replica serves: the running experiments (StoreUnavailableError and CorruptValueError pass up:
    the poller keeps the set it has)."""
    return ExperimentSet(e for e in list_experiments(store) if e.running)


def _parsed(value: dict[str, Any]) -> Experiment | None:
    try:
        return parse_experiment(value)
    except ConfigError:
        return None

