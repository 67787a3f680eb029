"""The content-addressed feature cache: round trip, kills mid-write, corruption, wrong folders."""

import json

import pytest
import torch

from low_metric import LowMetricError
from low_metric.scoring.cache import FeatureCache, cache_key


def test_round_trip_across_instances_and_appends(tmp_path):
    c = FeatureCache(tmp_path)
    c.put([(cache_key("enc", 1), torch.arange(6.0).reshape(2, 3)), (cache_key("enc", 2), torch.ones(4, dtype=torch.float64))])
    c.put([(cache_key("enc", 3), torch.zeros(2))])  # a second append to the same shard
    back = FeatureCache(tmp_path)
    assert len(back) == 3 and len(list(tmp_path.glob("shard-*.bin"))) == 1
    assert torch.equal(back.get(cache_key("enc", 1)), torch.arange(6.0).reshape(2, 3))
    assert back.get(cache_key("enc", 2)).dtype == torch.float64
    assert back.get("missing") is None
    assert cache_key("a", {"x": 1, "y": 2}) == cache_key("a", {"y": 2, "x": 1})  # canonical JSON


def test_a_record_cut_short_is_ignored(tmp_path):
    c = FeatureCache(tmp_path)
    c.put([("a", torch.ones(100)), ("b", torch.ones(100))])
    shard = next(tmp_path.glob("shard-*.bin"))
    shard.write_bytes(shard.read_bytes()[:-10])  # killed while writing "b"
    back = FeatureCache(tmp_path)
    assert "a" in back and "b" not in back


def test_corruption_is_detected_and_a_later_copy_wins(tmp_path):
    c = FeatureCache(tmp_path)
    c.put([("a", torch.ones(100))])
    shard = next(tmp_path.glob("shard-*.bin"))
    data = bytearray(shard.read_bytes())
    data[-5] ^= 0xFF
    shard.write_bytes(bytes(data))
    back = FeatureCache(tmp_path)
    assert back.get("a") is None and back.dropped == 1
    back.put([("a", torch.full((100,), 2.0))])  # recomputed into a new shard
    again = FeatureCache(tmp_path)
    assert torch.equal(again.get("a"), torch.full((100,), 2.0))


def test_wrong_folders_are_refused(tmp_path):
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(LowMetricError, match="not empty and not a low_metric feature cache"):
        FeatureCache(tmp_path / "other")
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "cache.json").write_text(json.dumps({"format": "low_metric.feature_cache/0"}))
    with pytest.raises(LowMetricError, match="not a low_metric feature cache of format"):
        FeatureCache(tmp_path / "old")
