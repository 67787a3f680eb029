"""The ac_score metric's Space: JSON in, JSON out, for each configuration of the metric.

Built with gradio directly (evaluate's ``launch_gradio_widget`` does not run on gradio 6). Run it
with ``python app.py``; tests call ``build_demo()`` and launch it themselves. The API endpoint
``/compute`` takes (configuration, JSON object of compute() arguments) and returns the result;
``/example`` returns an example payload for a configuration.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import evaluate
import gradio as gr
import numpy as np

METRIC_FILE = Path(__file__).resolve().with_name("ac_score.py")  # beside app.py, in the Space and in the package
CONFIGURATIONS = ("alignment", "correspondence", "ac")

EXAMPLES: dict[str, dict[str, Any]] = {
    "alignment": {
        "predictions": [[[1.0, 0.0], [0.0, 1.0]], [[0.6, 0.8], [0.8, 0.6], [1.0, 0.0]]],
        "references": [[[1.0, 0.0], [0.6, 0.8]], [[0.0, 1.0]]],
        "mode": "projector",
    },
    "correspondence": {
        "predictions": [[[104.0, 97.0], [360.0, 120.0]], [[421.0, 402.0]]],
        "references": [[[100.0, 100.0], [300.0, 120.0]], [[420.0, 400.0]]],
        "thresholds": [200.0, 500.0],
        "categories": ["cat", "dog"],
    },
    "ac": {
        "predictions": [{"A": 0.47, "C": 24.51}, {"A": 0.80, "C": 15.0}],
        "names": ["DINOv2-like", "CLIP-like"],
        "law": "paper",
    },
}

INTRO = """\
# AC score

Scores the vision encoder of a LLaVA-style multimodal LLM after *Law of Vision Representation in
MLLMs* (arXiv 2408.16357): **A** (alignment of its tokens with CLIP's), **C** (keypoint
correspondence, PCK@0.10 x 100) and **AC** (benchmark scores predicted from A and C by a fitted law).
Pick a configuration, edit the JSON (`predictions`, `references` and any `compute()` argument), and
press *Compute*. In code: `evaluate.load("ac_score", "<configuration>")`.
"""


def example(config: str) -> str:
    """The example payload of a configuration, as JSON text."""
    if config not in EXAMPLES:
        raise gr.Error(f"unknown configuration {config!r}; choose from {', '.join(CONFIGURATIONS)}")
    return json.dumps(EXAMPLES[config], indent=2)


def _plain(obj: Any) -> Any:
    """JSON-ready copy of a result (numpy scalars and arrays to Python)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def compute(config: str, payload: str) -> dict[str, Any]:
    """Run the metric's configuration on a JSON object of compute() arguments."""
    try:
        args = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise gr.Error(f"inputs are not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    if not isinstance(args, dict):
        raise gr.Error("inputs must be a JSON object: {\"predictions\": ..., \"references\": ..., <arguments>}")
    try:
        metric = evaluate.load(str(METRIC_FILE), config, keep_in_memory=True)
        return _plain(metric.compute(**args))
    except (ValueError, TypeError, KeyError) as exc:
        raise gr.Error(str(exc)) from None


def build_demo() -> gr.Blocks:
    with gr.Blocks(title="AC score") as demo:
        gr.Markdown(INTRO)
        with gr.Row():
            with gr.Column():
                config = gr.Dropdown(list(CONFIGURATIONS), value="alignment", label="configuration")
                payload = gr.Code(example("alignment"), language="json", label="inputs (JSON object)")
                run = gr.Button("Compute", variant="primary")
            with gr.Column():
                result = gr.JSON(label="result")
        config.change(example, config, payload, api_name="example")
        run.click(compute, [config, payload], result, api_name="compute")
    return demo


if __name__ == "__main__":
    import low_metric  # what ac_score.py imports: in the Space, the library's copy beside this file

    print(f"ac_score: low_metric {low_metric.__version__} ({Path(low_metric.__file__).parent})", flush=True)
    build_demo().queue().launch()
