"""`low-metric score ENCODER --protocol paper` end to end through the Hub double: the 8 benchmarks'
A images streamed from tiny datasets in lmms-eval's layout (ids, configs, splits, image columns), the
released stage-1 projectors (pickles, as on the Hub), C on an SPair-71k root, and the released law
predicting directly (the identity calibration)."""

from __future__ import annotations

import io
import json

import datasets
import numpy as np
import pytest
import torch
from PIL import Image

from low_metric import fit_law, paper_table
from low_metric.cli import main
from low_metric.metric import metric_file
from low_metric.scoring.calibration import paper_calibration, place
from low_metric.sources.encoders import load_encoder
from low_metric.sources.mini import load_mini, mini_benchmark_root
from low_metric.sources.paper import PAPER_BENCHMARK_IMAGES, PAPER_STAGE1_PROJECTORS
from low_metric.sources.projector import load_projector
from tests import model_repos as builders
from tests.conftest import WRITER_TOKEN

SCORED = "facebook/dinov2-large"  # a tiny DINOv2 served under the paper's id
ROWS = 100


def png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.convert("RGB").resize((64, 48)).save(buf, format="PNG")
    return buf.getvalue()


def parquet(columns: dict, features: datasets.Features) -> bytes:
    buf = io.BytesIO()
    datasets.Dataset.from_dict(columns, features=features).to_parquet(buf)
    return buf.getvalue()


def dataset_repo(spec, pictures: list[bytes]) -> dict[str, bytes | str]:
    """A dataset repo in the benchmark's layout: its config and split (plus a decoy split), its image column."""
    image = datasets.Image()
    cells = [{"bytes": pictures[i % len(pictures)], "path": None} for i in range(ROWS)]
    decoy = [{"bytes": pictures[-1], "path": None}] * 3
    if spec.column == "image_1":  # MMMU: several image columns, the first one feeds A
        features = datasets.Features({"image_1": image, "image_2": image, "question": datasets.Value("string")})
        data = {"image_1": cells, "image_2": cells[::-1], "question": ["q"] * ROWS}
        other = {"image_1": decoy, "image_2": decoy, "question": ["q"] * 3}
    elif spec.benchmark == "seed_image":  # SEED-Bench: a list of images per question
        features = datasets.Features({"image": datasets.List(image), "question": datasets.Value("string")})
        data = {"image": [[c, decoy[0]] for c in cells], "question": ["q"] * ROWS}
        other = {"image": [[d] for d in decoy], "question": ["q"] * 3}
    else:
        features = datasets.Features({"image": image, "question": datasets.Value("string")})
        data, other = {"image": cells, "question": ["q"] * ROWS}, {"image": decoy, "question": ["q"] * 3}
    folder = spec.config or "default"
    card = (f"---\nconfigs:\n- config_name: {folder}\n  data_files:\n  - split: {spec.split}\n    path: {folder}/main-*\n"
            f"  - split: decoy\n    path: {folder}/decoy-*\n---\n")
    return {"README.md": card, f"{folder}/main-00000-of-00001.parquet": parquet(data, features),
            f"{folder}/decoy-00000-of-00001.parquet": parquet(other, features)}


def projector_repo(dim: int, seed: int) -> dict[str, bytes | str]:
    """A released stage-1 checkpoint: config.json and a pickled bf16 mm_projector.bin."""
    state = {k: v.to(torch.bfloat16) for k, v in builders.projector_state(dim, hidden=64, seed=seed).items()}
    buf = io.BytesIO()
    torch.save(state, buf)
    return {"mm_projector.bin": buf.getvalue(), "config.json": json.dumps({"mm_projector_type": "mlp2x_gelu"})}


def errors(capsys) -> list[str]:
    """The error lines on stderr (download progress bars go there too)."""
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("low-metric: error: ")]


@pytest.fixture(scope="module")
def paper_setup(hub, model_repos, tmp_path_factory):
    root = tmp_path_factory.mktemp("paper_protocol")
    hub.add_repo(SCORED, builders.build("dinov2", root), write_tokens=[WRITER_TOKEN])
    for seed, name in enumerate(("CLIP224", "CLIP336", "DINOv2"), start=20):
        hub.add_repo(PAPER_STAGE1_PROJECTORS[name], projector_repo(32, seed), write_tokens=[WRITER_TOKEN])
    images = [png(Image.open(p)) for p in load_mini().images]
    for i, spec in enumerate(PAPER_BENCHMARK_IMAGES):  # three pictures per benchmark, a different three each
        hub.add_repo(spec.dataset, dataset_repo(spec, images[3 * i: 3 * i + 3]), repo_type="dataset",
                     write_tokens=[WRITER_TOKEN])
    out = root / "results.json"
    common = ["score", SCORED, "--protocol", "paper", "--spair", str(mini_benchmark_root()),
              "--cache-dir", str(root / "cache"), "--output", str(out)]
    return {"root": root, "out": out, "common": common, "images": images}


def test_pickled_projectors_need_the_users_consent(paper_setup, capsys):
    assert main(paper_setup["common"]) == 2
    (err,) = errors(capsys)
    assert "mm_projector.bin (a pickle)" in err and "--allow-pickle" in err
    assert not paper_setup["out"].exists()


@pytest.fixture(scope="module")
def record(paper_setup):
    assert main([*paper_setup["common"], "--allow-pickle"]) == 0
    (rec,) = json.loads(paper_setup["out"].read_text())["results"]
    return rec


def test_the_protocol_is_recorded(record):
    p = record["protocol"]
    assert p["preset"] == "paper" and p["alignment"]["mode"] == "projector"
    assert p["alignment"]["reference_projectors"] == {"openai/clip-vit-large-patch14": "shijiay/llava_clip224_stage1",
                                                      "openai/clip-vit-large-patch14-336": "shijiay/llava_clip_stage1"}
    assert record["A"]["projector"] == "shijiay/llava_dinov2_stage1"
    assert record["encoder_protocol"]["dtype"] == "bfloat16"
    images = p["data"]["benchmark_images"]
    assert list(images) == [s.benchmark for s in PAPER_BENCHMARK_IMAGES] == paper_table().benchmarks
    for spec in PAPER_BENCHMARK_IMAGES:
        got = images[spec.benchmark]
        assert (got["dataset"], got["config"], got["split"], got["column"]) == (spec.dataset, spec.config, spec.split, spec.column)
        assert got["first"] == got["loaded"] == ROWS and got["skipped"] == 0 and len(got["hash"]) == 64
    assert p["data"]["pairs"]["source"] == "spair" and p["data"]["pairs"]["split"] == "test"


def reference_a(benchmark: str, images: list[bytes]) -> float:
    """SPEC 2 in numpy on the benchmark's first 100 images, each encoder through its own projector."""
    spec = next(s for s in PAPER_BENCHMARK_IMAGES if s.benchmark == benchmark)
    i = [s.benchmark for s in PAPER_BENCHMARK_IMAGES].index(benchmark)
    pictures = [Image.open(io.BytesIO(images[3 * i + r % 3])).convert("RGB") for r in range(ROWS)]

    def projected(encoder_id: str, projector: str) -> np.ndarray:
        encoder = load_encoder(encoder_id, dtype="bfloat16")
        tokens = encoder.forward(encoder.preprocess(pictures)).float()
        with torch.inference_mode():
            out = load_projector(projector, allow_pickle=True)(tokens).numpy()
        return out / np.linalg.norm(out, axis=-1, keepdims=True)

    target = projected(SCORED, PAPER_STAGE1_PROJECTORS["DINOv2"])
    scores = []
    for ref, name in (("openai/clip-vit-large-patch14", "CLIP224"), ("openai/clip-vit-large-patch14-336", "CLIP336")):
        r = projected(ref, PAPER_STAGE1_PROJECTORS[name])
        scores.append(np.mean([(t @ rr.T).max(axis=1).mean() for t, rr in zip(target, r)]))
    assert spec.count == ROWS
    return float(np.mean(scores))


def test_one_a_per_benchmark_on_its_own_images(record, paper_setup):
    per = record["A"]["per_benchmark"]
    assert list(per) == paper_table().benchmarks and all(v["images"] == ROWS for v in per.values())
    assert len({round(v["A"], 6) for v in per.values()}) == 8  # eight different image sets
    assert record["A"]["A"] == pytest.approx(np.mean([v["A"] for v in per.values()]))
    for benchmark in ("mmmu_val", "seed_image", "mmbench_en"):  # image_1; a list's first image; a config
        assert per[benchmark]["A"] == pytest.approx(reference_a(benchmark, paper_setup["images"]), abs=2e-5), benchmark


def test_the_released_law_predicts_directly(record, paper_setup, capsys):
    ac, table = record["AC"], paper_table()
    assert ac["method"] == "identity"
    a = {b: v["A"] for b, v in record["A"]["per_benchmark"].items()}
    c = record["C"]["C"]
    for b in table.benchmarks:
        assert ac["predicted"][b] == pytest.approx(fit_law(*table.benchmark(b)).predict(a[b], c)[0], rel=1e-9)
        assert ac["mapped"]["A"][b] == a[b] and ac["mapped"]["C"] == c
    assert ac == place(paper_calibration(), a, c)
    capsys.readouterr()
    assert main(["predict", str(paper_setup["out"]), "--calibration", "paper", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[SCORED]["predicted"] == ac["predicted"]
    import evaluate

    metric = evaluate.load(str(metric_file()), cache_dir=str(paper_setup["root"] / "metric_cache"))
    res = metric.compute(predictions=[{"A": a, "C": c}], law="paper")
    assert {b: v[0] for b, v in res["predicted"].items()} == pytest.approx(ac["predicted"], rel=1e-12)


@pytest.mark.parametrize(("extra", "message"), [
    (["--mode", "ridge"], "measures A in projector mode"),
    (["--limit", "2"], "whole SPair-71k test split"),
    (["--images", "x"], "fixes the A images"),
    (["--patch", "8"], "fixes patch"),
])
def test_leaving_the_protocol_is_refused(paper_setup, extra, message, capsys):
    assert main([*paper_setup["common"], "--allow-pickle", *extra]) == 2
    (err,) = errors(capsys)
    assert message in err, err
