"""Scoring for a long-running service (the Space): one Scorer kept while requests repeat its
config, each request under a time limit, a failed request leaving nothing half-written behind."""

from __future__ import annotations

from typing import Any

from low_metric.scoring.scorer import ScoreConfig, Scorer
from low_metric.scoring.timelimit import call_with_time_limit

_SCORERS: dict[str, Scorer] = {}


def scorer_for(config: ScoreConfig) -> Scorer:
    """The Scorer of ``config`` (data and reference tokens load once). It reads public repos only:
    ``token=False`` never sends the host's own token."""
    key = repr(config)
    if key not in _SCORERS:
        _SCORERS.clear()
        _SCORERS[key] = Scorer(config, token=False)
    return _SCORERS[key]


def score_within(name: str, config: ScoreConfig, seconds: float, *, whose: str = "the") -> dict[str, Any]:
    """One encoder's record, or a :class:`Refused` once scoring has run ``seconds``."""
    try:
        return call_with_time_limit(seconds, lambda: scorer_for(config).score(name), whose=whose)
    except BaseException:
        _SCORERS.clear()  # a failed or interrupted run may leave its Scorer half-written: the next starts afresh
        raise
