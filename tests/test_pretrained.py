"""Real keypoints, real weights: a pretrained encoder beats the same architecture with random weights."""

import pytest

from low_metric.scoring.scorer import ScoreConfig, score_encoders


@pytest.mark.parametrize(("real", "random", "layer"), [
    ("dinov2_focus_real", "dinov2_focus_random", -6),  # saliency fine-tuning: middle layers keep correspondence
    ("effnet_real", "effnet_random", -2),
])
def test_pretrained_beats_random_weights_on_the_mini_benchmark(real, random, layer, model_repos, tmp_path):
    config = ScoreConfig(alignment=False, layer=layer, cache_dir=str(tmp_path))
    pretrained, untrained = score_encoders([getattr(model_repos, real), getattr(model_repos, random)], config)
    print(f"{real}: C = {pretrained['C']['C']:.2f}, random weights: C = {untrained['C']['C']:.2f}")
    print("per category", {k: round(v["pck@0.1"], 1) for k, v in pretrained["C"]["per_category"].items()},
          {k: round(v["pck@0.1"], 1) for k, v in untrained["C"]["per_category"].items()})
    assert pretrained["C"]["C"] > untrained["C"]["C"] + 10
    # on every category of real keypoints, not only on the synthetic homographies
    for cat in ("face", "graffiti", "homography"):
        assert pretrained["C"]["per_category"][cat]["pck@0.1"] > untrained["C"]["per_category"][cat]["pck@0.1"]
