"""`recsys demo`: synthetic data → refresh → train-ranker → a sample top-10, on whatever store is configured."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from recsys.config import Settings
from recsys.data.loaders import ColumnMap, Dataset, load_dataset
from recsys.engines.local import RefreshResult, run_refresh
from recsys.engines.publish import serving_shape
from recsys.progress import NullProgress, Progress
from recsys.ranking.train import TrainResult, train_ranker
from recsys.serving.service import Recommendations, RecommendationService
from recsys.store import Store


@dataclass
class DemoResult:
    data_path: str
    refresh: RefreshResult
    ranker: TrainResult
    sample: Recommendations


def ensure_synthetic(path: Path, users: int, items: int, seed: int, progress: Progress) -> Path:
    """Generate the demo data set once; reuse it when the same parameters wrote it before."""
    from recsys.data.synthetic import write_synthetic

    marker = path / "synthetic.json"
    if marker.exists():
        cfg = json.loads(marker.read_text())
        if (cfg.get("n_users"), cfg.get("n_items"), cfg.get("seed")) == (users, items, seed):
            return path
    write_synthetic(path, users, items, seed, progress=progress.stage("synthetic data", users))
    return path


def run_demo(settings: Settings, store: Store, *, data: Path | None, users: int, items: int,
             progress: Progress | None = None, force: bool = False) -> DemoResult:
    """`--data` is read with the settings' column mapping (RECSYS_DATA__…); the synthetic set has the
    contract's names. The refresh and the ranker pass the same guardrails as their commands (`force`)."""
    progress = progress or NullProgress()
    if data is not None:
        dataset: Dataset = load_dataset(data, ColumnMap.from_config(settings.data))
        path = data
    else:
        path = ensure_synthetic(settings.artifacts_dir.parent / "generated" / "demo", users, items, settings.seed,
                                progress)
        dataset = load_dataset(path)
    refresh = run_refresh(settings, store, dataset, progress=progress, force=force)
    ranker = train_ranker(settings, dataset, progress=progress, force_promote=force,
                          serving=serving_shape(store))
    service = RecommendationService(settings, store)
    service.reload()
    sample_user = str(dataset.interactions["user_id"].sort()[0])
    return DemoResult(str(path), refresh, ranker, service.recommend(sample_user, 10))
