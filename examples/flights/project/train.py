"""Training code of the flights example: a gradient-boosting classifier of "arrives late".

keel calls `train(ctx, features, target)` with the features `features.build` computed and the
label; `ctx` is the run's context: the configured params, the seed, and logging.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

#: Hyper-parameters used when keel.yaml does not set them (training.params).
DEFAULTS: Mapping[str, object] = {
    "max_iter": 200,
    "learning_rate": 0.1,
    "max_leaf_nodes": 31,
    "early_stopping": False,
}


def train(ctx, features: pd.DataFrame, target: pd.Series) -> HistGradientBoostingClassifier:
    """Fit the classifier on the training rows and log what describes the fit."""
    params = {key: ctx.params.get(key, default) for key, default in DEFAULTS.items()}
    # Params configured for the run are logged already; logging them again with the same value
    # is allowed, and the defaults filled in here are recorded too.
    ctx.log_params(params)

    model = HistGradientBoostingClassifier(
        max_iter=int(params["max_iter"]),
        learning_rate=float(params["learning_rate"]),
        max_leaf_nodes=int(params["max_leaf_nodes"]),
        early_stopping=_flag(params["early_stopping"]),
        # carrier, origin and dest arrive as integer codes and are split on as numbers. Native
        # categorical splits scored within 0.01 AUC of this here, and their fitted form holds
        # helper objects that keel's model format does not load (yet).
        categorical_features=None,
        random_state=ctx.seed,
    )
    model.fit(features, target)

    ctx.log_metric("train_rows", len(features))
    ctx.log_metric("train_late_share", float(target.mean()))
    ctx.log_metric("iterations", model.n_iter_)
    # On the training rows, so optimistic: the honest figure is keel's holdout evaluation.
    ctx.log_metric("train_roc_auc", roc_auc_score(target, model.predict_proba(features)[:, 1]))
    return model


def _flag(value: object) -> bool:
    """A boolean param, which may be written as true/false text."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text not in ("true", "false", "yes", "no", "1", "0", "on", "off"):
            raise ValueError(f"early_stopping: expected true or false, got {value!r}")
        return text in ("true", "yes", "1", "on")
    return bool(value)
