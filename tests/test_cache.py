"""The content-addressed feature cache: round trip, kills mid-write, corruption, wrong folders."""

import json
import os

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


def test_get_stacked_reads_verified_records_and_detects_corruption(tmp_path):
    c = FeatureCache(tmp_path)
    c.put([(k, torch.full((3, 2), float(i))) for i, k in enumerate("abc")])
    back = FeatureCache(tmp_path)
    assert torch.equal(back.get_stacked(["c", "a"]), torch.stack([torch.full((3, 2), 2.0), torch.zeros(3, 2)]))
    assert back.get_stacked(["a", "missing"]) is None
    c.put([("d", torch.ones(5))])  # another shape: not stackable with the others
    assert FeatureCache(tmp_path).get_stacked(["a", "d"]) is None
    shard = next(tmp_path.glob("shard-*.bin"))
    data = bytearray(shard.read_bytes())
    data[-5] ^= 0xFF  # inside the payload of "d"
    shard.write_bytes(bytes(data))
    damaged = FeatureCache(tmp_path)
    assert damaged.verify("a") and not damaged.verify("d") and damaged.dropped == 1 and "d" not in damaged


def test_stat_memo_keeps_a_hash_while_its_file_is_unchanged(tmp_path):
    from low_metric.sources.statmemo import StatMemo, memoised

    image = tmp_path / "a.png"
    image.write_bytes(b"x" * 10)
    computed = []

    def compute() -> str:
        computed.append(1)
        return f"{len(computed):064x}"

    path = tmp_path / "memo.json"
    with StatMemo(path).active():
        first = memoised("pixels:a", [image], compute)
        assert memoised("pixels:a", [image], compute) == first and len(computed) == 1
    assert memoised("pixels:a", [image], compute) != first and len(computed) == 2  # no memo active: computed
    with StatMemo(path).active():  # a later run reads it back from the file
        assert memoised("pixels:a", [image], compute) == first and len(computed) == 2
    stat = image.stat()
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1000))  # touched: computed again
    assert StatMemo(path).lookup("pixels:a", [image], compute) != first and len(computed) == 3
    image.write_bytes(b"y" * 11)  # another size
    StatMemo(path).lookup("pixels:a", [image], compute)
    assert len(computed) == 4
    path.write_text("{damaged")  # ignored, then replaced
    memo = StatMemo(path)
    assert memo.entries == {}
    memo.lookup("pixels:a", [image], compute)
    memo.save()
    assert len(computed) == 5 and json.loads(path.read_text())["format"] == "low_metric.stat_memo/2"
    data = json.loads(path.read_text())
    data["entries"]["pixels:a"]["value"] = "f" * 64  # edited by hand: its checksum fails, so it is computed again
    path.write_text(json.dumps(data))
    assert StatMemo(path).lookup("pixels:a", [image], compute) == f"{6:064x}" and len(computed) == 6


def test_the_stat_memo_lives_beside_the_shards(tmp_path):
    from low_metric.scoring.cache import STAT_MEMO

    root = tmp_path / "cache"
    root.mkdir()
    (root / STAT_MEMO).write_text("{}")  # the memo even without a manifest (e.g. it was deleted)
    FeatureCache(root).put([("a", torch.ones(2))])
    assert FeatureCache(root).get("a") is not None
