"""The scorer end to end: `low-metric score` through the Hub double on the built-in benchmark."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from low_metric.cli import main
from low_metric.scoring.cache import FeatureCache
from low_metric.sources.mini import load_mini

N_IMAGES = len(load_mini().images)  # distinct images; each is encoded natively (A) and framed (C)
CLI = [sys.executable, "-m", "low_metric.cli"]


def results(path: Path) -> dict[str, dict]:
    data = json.loads(path.read_text())
    assert data["format"] == "low_metric.results/1"
    return {r["encoder"]: r for r in data["results"]}


def run_cli(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, **kw)


@pytest.fixture(scope="module")
def family_results(model_repos, tmp_path_factory) -> dict[str, dict]:
    out = tmp_path_factory.mktemp("families") / "results.json"
    m = model_repos
    encoders = [m.clip224, m.dinov2, m.timm_vit, m.open_clip, f"{m.clip224}+{m.dinov2}"]
    proc = run_cli("score", *encoders, "--reference", m.clip224, "--output", str(out), "--cache-dir", str(out.parent / "cache"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return results(out)


def test_every_family_gets_finite_a_and_c(family_results, model_repos):
    assert len(family_results) == 5
    for name, r in family_results.items():
        assert np.isfinite(r["A"]["A"]) and 0 < r["A"]["A"] <= 1 + 1e-6, name
        assert 0 <= r["C"]["C"] <= 100, name
        assert r["C"]["pairs"] == len(load_mini().pairs)
        assert set(r["C"]["per_category"]) == {"face", "graffiti", "homography"}
        assert set(r["C"]["per_image"]) == {"pck@0.1", "pck@0.05", "pck@0.01"}
    assert family_results[model_repos.clip224]["A"]["A"] == pytest.approx(1.0, abs=1e-3)  # its own reference
    # a concatenation holding the reference can map back onto it; the others cannot
    assert family_results[f"{model_repos.clip224}+{model_repos.dinov2}"]["A"]["A"] == pytest.approx(1.0, abs=1e-3)
    others = [r["A"]["A"] for n, r in family_results.items() if model_repos.clip224 not in n]
    assert len(others) == 3 and max(others) < 1 - 1e-2


def test_records_carry_their_protocol(family_results, model_repos):
    r = family_results[model_repos.dinov2]
    p = r["protocol"]
    assert p["alignment"]["mode"] == "ridge" and p["alignment"]["ridge"] == 1e-3 and p["alignment"]["seed"] == 0
    assert [ref["id"] for ref in p["alignment"]["references"]] == [model_repos.clip224]
    assert len(p["alignment"]["references"][0]["revision"]) == 40  # resolved commit hash
    assert p["correspondence"]["P"] == 16 and p["correspondence"]["window"] == 5
    assert p["data"]["pairs"]["source"] == "built-in mini benchmark" and len(p["data"]["pairs"]["hash"]) == 64
    assert p["low_metric"]
    e = r["encoder_protocol"]
    assert e["layer"] == -2 and e["library"] == "transformers" and len(e["revision"]) == 40
    # encoders scored together share the protocol hash: their numbers are comparable
    assert len({x["protocol_hash"] for x in family_results.values()}) == 1
    assert len({x["result_hash"] for x in family_results.values()}) == 5


def test_same_inputs_give_the_same_numbers_from_the_cache(family_results, model_repos, tmp_path):
    out = tmp_path / "again.json"
    args = ["score", model_repos.dinov2, "--reference", model_repos.clip224, "--output", str(out)]
    first_cache = tmp_path / "cache"
    assert main([*args, "--cache-dir", str(first_cache)]) == 0
    again = results(out)[model_repos.dinov2]
    assert again["counts"]["encoded"] == 2 * N_IMAGES  # fresh cache: native + framed, each once
    assert main([*args, "--cache-dir", str(first_cache)]) == 0
    cached = results(out)[model_repos.dinov2]
    assert cached["counts"]["encoded"] == 0 and cached["counts"]["from_cache"] == 2 * N_IMAGES
    assert cached["A"] == again["A"] and cached["C"] == again["C"]
    assert again["A"]["A"] == pytest.approx(family_results[model_repos.dinov2]["A"]["A"], abs=1e-6)


def shard_keys(cache: Path) -> list[set[str]]:
    reader = FeatureCache(cache)
    return [set(reader._scan(shard)) for shard in sorted(cache.glob("shard-*.bin"))]


def test_two_processes_match_one_and_split_the_images(model_repos, tmp_path):
    args = ["score", model_repos.dinov2, "--reference", model_repos.clip224, "--no-alignment"]
    one = tmp_path / "one.json"
    assert main([*args, "--output", str(one), "--cache-dir", str(tmp_path / "c1")]) == 0
    two = tmp_path / "two.json"
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
              "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "low_metric.cli"]
    proc = subprocess.run([*launch, *args, "--output", str(two), "--cache-dir", str(tmp_path / "c2")], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r1, r2 = results(one)[model_repos.dinov2], results(two)[model_repos.dinov2]
    assert r1["C"]["C"] == pytest.approx(r2["C"]["C"], abs=1e-5)
    for cat, row in r1["C"]["per_category"].items():
        assert row["pck@0.1"] == pytest.approx(r2["C"]["per_category"][cat]["pck@0.1"], abs=1e-5)
    per_process = r2["counts"]["encoded_per_process"]
    assert len(per_process) == 2 and min(per_process) > 0 and sum(per_process) == N_IMAGES
    keys = shard_keys(tmp_path / "c2")
    assert len(keys) == 2 and not keys[0] & keys[1] and len(keys[0] | keys[1]) == N_IMAGES  # each image once


def test_killed_run_resumes_and_encodes_only_what_is_missing(model_repos, tmp_path):
    cache = tmp_path / "cache"
    args = ["score", model_repos.dinov2_focus_real, "--no-alignment", "--batch-size", "1", "--cache-dir", str(cache)]
    proc = subprocess.Popen([*CLI, *args, "--output", str(tmp_path / "killed.json")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if cache.is_dir() and any(cache.glob("shard-*.bin")) and len(FeatureCache(cache)) >= 5:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(FeatureCache(cache))
    assert 5 <= done < N_IMAGES, "the run was not killed partway"
    assert not (tmp_path / "killed.json").exists()  # no partial results file

    assert main([*args, "--output", str(tmp_path / "resumed.json")]) == 0
    resumed = results(tmp_path / "resumed.json")[model_repos.dinov2_focus_real]
    assert resumed["counts"]["encoded"] == N_IMAGES - done and resumed["counts"]["from_cache"] == done

    fresh_args = [a if a != str(cache) else str(tmp_path / "fresh") for a in args]
    assert main([*fresh_args, "--output", str(tmp_path / "fresh.json")]) == 0
    fresh = results(tmp_path / "fresh.json")[model_repos.dinov2_focus_real]
    assert resumed["C"] == fresh["C"]


def test_a_corrupt_cache_entry_is_recomputed(model_repos, tmp_path):
    cache = tmp_path / "cache"
    args = ["score", model_repos.timm_vit, "--no-alignment", "--cache-dir", str(cache), "--output", str(tmp_path / "r.json")]
    assert main(args) == 0
    before = results(tmp_path / "r.json")[model_repos.timm_vit]
    shard = next(cache.glob("shard-*.bin"))
    data = bytearray(shard.read_bytes())
    data[-100] ^= 0xFF  # flip a byte inside the last record's payload
    shard.write_bytes(bytes(data))
    assert main(args) == 0
    after = results(tmp_path / "r.json")[model_repos.timm_vit]
    assert after["counts"]["encoded"] == 1 and after["counts"]["from_cache"] == N_IMAGES - 1
    assert after["C"] == before["C"]


def test_calibrate_then_predict(model_repos, hub, tmp_path, capsys):
    from tests import model_repos as builders

    # small stand-ins served under the paper's Hub ids
    root = tmp_path / "paper"
    for repo_id, builder in [
        ("laion/CLIP-ViT-L-14-laion2B-s32B-b82K", "open_clip"),
        ("facebook/dinov2-large", "dinov2"),
        ("google/siglip-base-patch16-224", "siglip"),
    ]:
        hub.add_repo(repo_id, builders.build(builder, root))
    cal = tmp_path / "calibration.json"
    common = ["--cache-dir", str(tmp_path / "cache")]
    # the transformer anchors: random diffusion stand-ins could reverse the C map (refused, as it should be)
    vision = ["CLIP336", "CLIP224", "OpenCLIP", "DINOv2", "SigLIP", "CLIP224+DINOv2", "CLIP336+DINOv2"]
    assert main(["calibrate", "--output", str(cal), *common, *(f"--representation={n}" for n in vision)]) == 0
    calibration = json.loads(cal.read_text())
    assert len(calibration["representations"]) == 7 and len(calibration["laws"]) == 8
    assert all(np.isfinite(law["r2"]) for law in calibration["laws"].values())

    out = tmp_path / "scored.json"
    assert main(["score", model_repos.timm_vit, "--calibration", str(cal), "--output", str(out), *common]) == 0
    record = results(out)[model_repos.timm_vit]
    assert set(record["AC"]["predicted"]) == set(calibration["laws"]) and np.isfinite(record["AC"]["AC_mean"])
    capsys.readouterr()
    assert main(["predict", str(out), "--calibration", str(cal), "--json"]) == 0
    predicted = json.loads(capsys.readouterr().out)[model_repos.timm_vit]
    assert predicted["predicted"] == pytest.approx(record["AC"]["predicted"])

    other = tmp_path / "other.json"  # another protocol (P = 8): refused
    assert main(["score", model_repos.timm_vit, "--patch", "8", "--output", str(other), *common]) == 0
    capsys.readouterr()
    assert main(["predict", str(other), "--calibration", str(cal)]) == 2
    assert "differs from the calibration" in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["no-such-org/no-such-model"], "no-such-org/no-such-model"),
        (["{timm}", "--images", "{empty}"], "no image"),
        (["{timm}", "--spair", "{broken}"], "not found"),
        (["{timm}", "--cache-dir", "{notcache}"], "not a low_metric feature cache"),
        (["{timm}", "--output", "/proc/low_metric_results.json"], "not writable"),
    ],
)
def test_bad_input_one_line_nonzero_no_results(extra, message, model_repos, tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    broken = tmp_path / "spair"
    shutil.copytree(load_mini().root, broken)
    next((broken / "JPEGImages").rglob("*.jpg")).unlink()
    notcache = tmp_path / "notcache"
    notcache.mkdir()
    (notcache / "something.txt").write_text("x")
    fill = {"{timm}": model_repos.timm_vit, "{empty}": str(empty), "{broken}": str(broken), "{notcache}": str(notcache)}
    args = [fill.get(a, a) for a in extra]
    if "--output" not in args:
        args += ["--output", str(tmp_path / "out.json")]
    if "--cache-dir" not in args:
        args += ["--cache-dir", str(tmp_path / "cache")]
    capsys.readouterr()
    assert main(["score", "--reference", model_repos.clip224, *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "out.json").exists()


def test_projector_mode(model_repos, tmp_path):
    m = model_repos
    out = tmp_path / "projector.json"
    args = ["score", m.clip224, m.dinov2, "--reference", m.clip224, "--mode", "projector", "--no-correspondence",
            "--projector", f"{m.clip224}={m.projector}", "--projector", f"{m.dinov2}={m.projector}",
            "--cache-dir", str(tmp_path / "cache"), "--output", str(out)]
    assert main(args) == 0
    r = results(out)
    assert r[m.clip224]["A"]["A"] == pytest.approx(1.0, abs=1e-6)  # itself, through its own projector
    assert r[m.dinov2]["A"]["A"] < 0.99 and r[m.dinov2]["A"]["projector"] == m.projector
    protocol = r[m.dinov2]["protocol"]["alignment"]
    assert protocol["mode"] == "projector" and protocol["reference_projectors"] == {m.clip224: m.projector}
    assert "ridge" not in protocol


def test_projector_mode_needs_a_projector_per_encoder(model_repos, tmp_path, capsys):
    m = model_repos
    args = ["score", m.dinov2, "--reference", m.clip224, "--mode", "projector", "--no-correspondence",
            "--projector", f"{m.clip224}={m.projector}", "--cache-dir", str(tmp_path / "c"), "--output", str(tmp_path / "o.json")]
    assert main(args) == 2
    assert f"no projector given for {m.dinov2}" in capsys.readouterr().err
    assert not (tmp_path / "o.json").exists()


def test_hub_unreachable_is_one_line(tmp_path):
    env = {**os.environ, "HF_ENDPOINT": "http://127.0.0.1:9", "HF_HOME": str(tmp_path / "hf")}  # nothing listens on 9
    proc = run_cli("score", "some-org/some-encoder", "--cache-dir", str(tmp_path / "c"), "--output", str(tmp_path / "o.json"), env=env)
    assert proc.returncode == 1  # a runtime failure (the world), not a usage error (2)
    err = proc.stderr.strip().splitlines()
    assert err == ["low-metric: error: the Hub at http://127.0.0.1:9 is unreachable (loading 'some-org/some-encoder')"]
    assert not (tmp_path / "o.json").exists()


def test_a_warm_rerun_builds_no_model_and_decodes_no_image(model_repos, tmp_path):
    """Once a run has cached every feature, a rerun instantiates no encoder (scored or reference)
    and decodes no image: an image whose pixels change while its file keeps its size and
    modification time goes unnoticed, and the numbers are identical. Once its modification time
    changes, it is decoded again: new pixels, new features, the encoders loaded to compute them."""
    from low_metric.scoring.scorer import ScoreConfig, score_encoders
    from low_metric.sources import encoders
    from low_metric.sources.mini import mini_benchmark_root
    from low_metric.sources.spair import load_spair

    spair = tmp_path / "spair"
    shutil.copytree(mini_benchmark_root(), spair)
    config = ScoreConfig(spair=str(spair), limit=2, references=(model_repos.clip224,), cache_dir=str(tmp_path / "cache"))
    (cold,) = score_encoders([model_repos.timm_vit], config)
    assert cold["counts"]["encoded"] > 0
    loads = dict(encoders.LOADS)
    image = load_spair(spair, limit=2).images[0]
    stat = image.stat()
    data = bytearray(image.read_bytes())
    for i in range(len(data) // 2, len(data) // 2 + 16):
        data[i] ^= 0x55  # other (still decodable) pixels, same size
    image.write_bytes(bytes(data))
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    (warm,) = score_encoders([model_repos.timm_vit], config)
    assert dict(encoders.LOADS) == loads  # neither the scored encoder nor the reference was built
    assert warm["counts"]["encoded"] == 0 and warm["A"] == cold["A"] and warm["C"] == cold["C"]
    assert warm["encoder_protocol"] == cold["encoder_protocol"] and warm["protocol"] == cold["protocol"]
    os.utime(image)  # the file changed: decoded again
    (changed,) = score_encoders([model_repos.timm_vit], config)
    assert changed["counts"]["encoded"] == 2  # that image, natively (A) and framed (C)
    assert changed["protocol"]["data"] != cold["protocol"]["data"]  # the image set's hash moved with it
    assert encoders.LOADS[model_repos.timm_vit] == loads[model_repos.timm_vit] + 1
    assert encoders.LOADS[model_repos.clip224] == loads[model_repos.clip224] + 1  # the reference, for its A image
