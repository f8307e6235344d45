"""Training code of the bikeshare example: a gradient-boosting regressor of rentals per hour.

keel calls `train(ctx, features, target)` with the features `features.build` computed and the
target; `ctx` is the run's context: the configured params, the seed, and logging.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor

#: Hyper-parameters used when keel.yaml does not set them (training.params).
DEFAULTS: Mapping[str, object] = {
    "max_iter": 300,
    "learning_rate": 0.1,
    "max_leaf_nodes": 31,
    # Rentals are counts: a Poisson loss fits their spread (busy hours vary more than quiet
    # ones) and never predicts fewer than zero.
    "loss": "poisson",
    "early_stopping": False,
}


def train(ctx, features: pd.DataFrame, target: pd.Series) -> HistGradientBoostingRegressor:
    """Fit the regressor on the training rows and log what describes the fit."""
    params = {key: ctx.params.get(key, default) for key, default in DEFAULTS.items()}
    # Params configured for the run are logged already; logging them again with the same value
    # is allowed, and the defaults filled in here are recorded too.
    ctx.log_params(params)

    model = HistGradientBoostingRegressor(
        loss=str(params["loss"]),
        max_iter=int(params["max_iter"]),
        learning_rate=float(params["learning_rate"]),
        max_leaf_nodes=int(params["max_leaf_nodes"]),
        early_stopping=_flag(params["early_stopping"]),
        # season, weekday and weathersit arrive as integer codes and are split on as numbers:
        # the fitted form of native categorical splits holds helper objects that keel's model
        # format does not load (yet).
        categorical_features=None,
        random_state=ctx.seed,
    )
    model.fit(features, target)

    ctx.log_metric("train_rows", len(features))
    ctx.log_metric("train_mean_rentals", float(target.mean()))
    ctx.log_metric("iterations", model.n_iter_)
    # On the training rows, so optimistic: the honest figure is keel's holdout evaluation.
    errors = model.predict(features) - target.to_numpy()
    ctx.log_metric("train_rmse", float(np.sqrt(np.mean(errors**2))))
    return model


def _flag(value: object) -> bool:
    """A boolean param, which may be written as true/false text."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text not in ("true", "false", "yes", "no", "1", "0", "on", "off"):
            raise ValueError(f"early_stopping: expected true or false, got {value!r}")
        return text in ("true", "yes", "1", "on")
    return bool(value)
