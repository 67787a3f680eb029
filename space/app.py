"""The low_metric Space: score any Hub vision encoder in the browser (the page only: the checks, the
scoring and the formulas live in the library). ``python space/app.py`` runs it locally (deployed, the
Space carries the library's source next to this file); the host's settings come from ``LOW_METRIC_*``
variables (:class:`Settings`); tests call ``build_demo(Settings(...))``.

On ZeroGPU only :func:`run_scorer` runs on the GPU, in a worker forked from this process: the data and
the references are loaded at start-up, the visitor's repo is downloaded before the call, the duration
asked is computed from the work, and every failure inside becomes a ``gr.Error`` (the only exception
whose message crosses back from the worker).
"""

from __future__ import annotations

try:  # ZeroGPU: imported before torch, as `spaces` requires
    import spaces
except ImportError:  # a CPU Space or a local run
    spaces = None

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import gradio as gr
import pandas as pd

import low_metric
from low_metric.core.checks import whole_number
from low_metric.core.errors import LowMetricError, Refused, one_line
from low_metric.hub.card import HubIds
from low_metric.hub.guard import check_image_count, check_weights, public_encoder
from low_metric.hub.publish import PublishOutcome, publish_to_card, read_leaderboard
from low_metric.scoring.calibration import PAPER_ENCODERS, load_calibration, matches, predict
from low_metric.scoring.report import ac_note, category_rows, headline, paper_scale, prediction_rows
from low_metric.scoring.results import VERSION
from low_metric.scoring.scorer import ScoreConfig
from low_metric.scoring.service import prepare_request, score_within, warm_up
from low_metric.sources.tables import paper_table

logger = logging.getLogger("low_metric.space")
PAPER_SOURCE, SESSION_SOURCE = "paper (projector A)", "scored here (ridge A)"  # this Space scores in ridge mode
MAPPED_SOURCE = "scored here, on the paper's scale"  # with a calibration: the mapped (A, C)
PLOT_COLORS = {PAPER_SOURCE: "#1f77b4", SESSION_SOURCE: "#d62728", MAPPED_SOURCE: "#2ca02c"}
PREDICTION_COLUMNS = ["benchmark", "AC", "predicted score", "interval", "extrapolation"]
LEADERBOARD_COLUMNS = ["encoder", "A", "C", "AC", "mode", "data", "protocol_hash"]
LEADERBOARD_MAX_AGE = 60.0  # seconds a read of the results dataset serves page views before it is read again
T = TypeVar("T")
TRACK_TQDM = gr.Progress(track_tqdm=True)  # the scorer's tqdm bars (images encoded) become the page's progress bar


@dataclass(frozen=True)
class Settings:
    """What the host decides. :meth:`from_env` reads each from its ``LOW_METRIC_*`` variable."""

    max_model_gb: float = 4.0  # safetensors weights of one encoder, all parts (LOW_METRIC_MAX_MODEL_GB)
    max_images: int = 300  # distinct images one request encodes (LOW_METRIC_MAX_IMAGES)
    max_seconds: float = 900.0  # wall time of one scoring request off ZeroGPU (LOW_METRIC_MAX_SECONDS)
    max_gpu_seconds: float = 300.0  # GPU time one request may ask on ZeroGPU (LOW_METRIC_MAX_GPU_SECONDS)
    calibration: dict[str, Any] | None = None  # a checked calibration (LOW_METRIC_CALIBRATION: a path or hub:ORG/NAME)
    dataset_id: str | None = None  # results dataset of the leaderboard (LOW_METRIC_RESULTS_DATASET)
    spair: str | None = None  # SPair-71k root; None: the built-in mini benchmark (LOW_METRIC_SPAIR)
    ids: HubIds = HubIds()  # what pushed cards name (LOW_METRIC_MINI_DATASET, LOW_METRIC_SPAIR_DATASET)
    cache_dir: str | None = None  # feature cache; None: the scorer's default ($LOW_METRIC_CACHE/features)
    login: bool | None = None  # show "Sign in"; None: only on a Space (SPACE_ID set)
    space_id: str | None = None  # this Space (SPACE_ID): the source pushed cards cite
    zero_gpu: bool = False  # running on ZeroGPU (SPACES_ZERO_GPU, set by the Hub)

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        calibration = env.get("LOW_METRIC_CALIBRATION")
        return cls(
            max_model_gb=float(env.get("LOW_METRIC_MAX_MODEL_GB", cls.max_model_gb)),
            max_images=int(env.get("LOW_METRIC_MAX_IMAGES", cls.max_images)),
            max_seconds=float(env.get("LOW_METRIC_MAX_SECONDS", cls.max_seconds)),
            max_gpu_seconds=float(env.get("LOW_METRIC_MAX_GPU_SECONDS", cls.max_gpu_seconds)),
            calibration=load_calibration(calibration) if calibration else None,
            dataset_id=env.get("LOW_METRIC_RESULTS_DATASET") or None,
            spair=env.get("LOW_METRIC_SPAIR") or None,
            ids=HubIds(mini=env.get("LOW_METRIC_MINI_DATASET") or HubIds.mini,
                       spair=env.get("LOW_METRIC_SPAIR_DATASET") or None),
            space_id=env.get("SPACE_ID") or None,
            zero_gpu=env.get("SPACES_ZERO_GPU", "").lower() in ("1", "t", "true"),
        )

    @property
    def show_login(self) -> bool:
        return self.login if self.login is not None else bool(os.environ.get("SPACE_ID"))

    @property
    def source_url(self) -> str | None:
        """Where pushed scores come from: this Space's page."""
        from huggingface_hub import constants

        return f"{constants.ENDPOINT}/spaces/{self.space_id}" if self.space_id else None


@dataclass(frozen=True)
class Options:
    """The scoring options a visitor may set; everything else is the scorer's default."""

    layer: int = -2
    patch: int = 16
    window: int = 5
    alignment: bool = True
    pairs: int = 0  # pairs per category; 0: all

    RANGES: ClassVar[dict[str, tuple[int, int]]] = {"layer": (-64, 63), "patch": (2, 64), "window": (0, 15), "pairs": (0, 100_000)}

    @classmethod
    def from_inputs(cls, layer: Any, patch: Any, window: Any, alignment: Any, pairs: Any) -> Options:
        """Options from the page's widgets (numbers may arrive as floats or None): checked ranges."""
        values = {"layer": layer, "patch": patch, "window": window, "pairs": pairs}
        return cls(**{k: whole_number(v, k, *cls.RANGES[k], error=Refused) for k, v in values.items()},
                   alignment=bool(alignment))

    def config(self, settings: Settings) -> ScoreConfig:
        """The scorer's config: the CLI's ``score --layer --patch --window [--limit] [--no-alignment]``."""
        return ScoreConfig(spair=settings.spair, limit=self.pairs or None, patch=self.patch, window=self.window,
                           layer=self.layer, alignment=self.alignment, cache_dir=settings.cache_dir)


def _on_gpu(fn: Callable[..., T]) -> Callable[..., T]:
    """``spaces.GPU`` (asking the request's ``duration``) where ``spaces`` exists; else ``fn``."""
    if spaces is None:
        return fn
    return spaces.GPU(duration=lambda name, config, limit, duration: duration)(fn)


@_on_gpu
def run_scorer(name: str, config: ScoreConfig, limit: float, duration: float) -> dict[str, Any]:
    """One encoder's record from the scorer, within ``limit`` seconds (on ZeroGPU: in the GPU worker,
    asked for ``duration``). Failures leave as ``gr.Error``, whose message alone survives the worker."""
    try:
        return score_within(name, config, limit, whose="this Space's")
    except LowMetricError as exc:
        raise gr.Error(one_line(exc), print_exception=False) from None
    except Exception as exc:  # a failed request must leave the app serving the next one
        logger.exception("scoring %r failed", name)
        raise gr.Error(f"scoring failed: {one_line(exc)}", print_exception=False) from None


def score_encoder(text: str, options: Options, settings: Settings) -> dict[str, Any]:
    """Check, fetch, then score one encoder; adds ``AC`` (as ``low-metric score --calibration``) where
    the host's calibration was fitted under the same protocol."""
    refs = public_encoder(text)
    config = options.config(settings)
    check_image_count(config.spair, config.limit, settings.max_images)
    weights = check_weights(refs, settings.max_model_gb, limit="this Space scores models up to {max_gb:g} GB")
    request = prepare_request(refs, config, weight_bytes=weights, zero_gpu=settings.zero_gpu,
                              max_seconds=settings.max_seconds, max_gpu_seconds=settings.max_gpu_seconds)
    try:
        record = run_scorer(request.name, config, request.limit, request.duration)
    finally:
        request.release()  # the visitor's weights leave the Hub cache; the references stay
    record["encoder"] = request.asked
    if matches(record, settings.calibration):
        record["AC"] = predict(record, settings.calibration)
    return record


def summary(record: dict[str, Any], settings: Settings) -> str:
    """The headline numbers of a record, as Markdown."""
    head = headline(record)
    a = f"{head['A']:.4f}" if head["A"] is not None else "off"
    ac = f"{head['AC']:.3f}" if head["AC"] is not None else "n/a"
    mapped = paper_scale(record)
    scale = (f"\n\nOn the paper's scale: A = {mapped[0]:.4f} (mean over its 8 benchmarks), C = {mapped[1]:.2f}."
             if mapped else "")
    return (f"### {record['encoder']}\n\n| A | C | AC |\n|---|---|---|\n| {a} | {head['C']:.2f} | {ac} |{scale}\n\n"
            f"C: PCK at alpha 0.10, x 100, over {record['C']['pairs']} pairs. "
            f"{ac_note(record, settings.calibration)} Protocol hash `{record['protocol_hash'][:12]}`.")


def paper_points() -> list[dict[str, Any]]:
    """The paper's 13 representations: A (mean over the 8 benchmarks' A columns) and C."""
    table = paper_table()
    return [{"name": name, "A": float(a), "C": float(c), "source": PAPER_SOURCE, "protocol": "paper"}
            for name, a, c in zip(table.names, table.mean_a, table.c, strict=True)]


def add_to_history(history: list[dict[str, Any]], record: dict[str, Any]) -> list[dict[str, Any]]:
    """The session's plot points with ``record`` (needs A and C), replacing a same encoder and protocol.
    A calibrated record is placed on the paper's scale (its mapped A and C), beside the paper's points."""
    if "A" not in record:
        return history
    mapped = paper_scale(record)
    a, c = mapped if mapped else (record["A"]["A"], record["C"]["C"])
    point = {"name": record["encoder"], "A": a, "C": c, "source": MAPPED_SOURCE if mapped else SESSION_SOURCE,
             "protocol": record["protocol_hash"][:12]}
    same = (point["name"], point["protocol"], point["source"])
    return [p for p in history if (p["name"], p["protocol"], p["source"]) != same] + [point]


def placement(history: list[dict[str, Any]], calibrated: bool = False) -> pd.DataFrame:
    """The plot's points: the paper's, the session's, and points without coordinates that put the
    session's colours in the legend from the start (gradio fixes a plot's colours at its first value)."""
    sources = [SESSION_SOURCE, MAPPED_SOURCE] if calibrated else [SESSION_SOURCE]
    legend = [{"name": "", "A": None, "C": None, "source": source, "protocol": ""} for source in sources]
    return pd.DataFrame([*paper_points(), *legend, *history])


def leaderboard_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The results dataset's rows (as ``read_leaderboard`` orders them), short hashes, rounded numbers."""
    table = pd.DataFrame(rows, columns=LEADERBOARD_COLUMNS)
    table["protocol_hash"] = table["protocol_hash"].str[:12]
    return table.round({"A": 4, "C": 2, "AC": 3})


def push_message(encoder: str, outcome: PublishOutcome) -> str:
    """What a push did, as Markdown."""
    if outcome.changed:
        return f"Opened a pull request on the card of {encoder}: [{outcome.pr_url}]({outcome.pr_url})"
    if outcome.pr_url:
        return f"An open pull request already holds this result: [{outcome.pr_url}]({outcome.pr_url})"
    return f"The card of {encoder} already holds this result: nothing to push."


class Handlers:
    """The page's event handlers, bound to the host's settings; plain methods that tests call directly."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def score(self, text: str, layer: float, patch: float, window: float, alignment: bool, pairs: float,
              history: list[dict[str, Any]], progress: gr.Progress = TRACK_TQDM) -> tuple:
        """Score one encoder: (summary, category table, predictions, plot, record JSON, record, history)."""
        progress(0, desc="checking the repo")
        try:
            record = score_encoder(text, Options.from_inputs(layer, patch, window, alignment, pairs), self.settings)
        except gr.Error:
            raise
        except LowMetricError as exc:
            raise gr.Error(one_line(exc), print_exception=False) from None
        except Exception as exc:  # a failed request must leave the app serving the next one
            logger.exception("scoring %r failed", text)
            raise gr.Error(f"scoring failed: {one_line(exc)}", print_exception=False) from None
        history = add_to_history(history, record)
        predicted = pd.DataFrame(prediction_rows(record), columns=PREDICTION_COLUMNS)
        return (summary(record, self.settings), pd.DataFrame(category_rows(record)), predicted,
                placement(history, calibrated=bool(self.settings.calibration)), record, record, history)

    def push(self, record: dict[str, Any] | None, oauth_token: gr.OAuthToken | None) -> str:
        """Open a pull request that adds the last result to the encoder's model card."""
        if not record:
            raise gr.Error("score an encoder first: its result is what gets pushed", print_exception=False)
        if oauth_token is None:
            raise gr.Error("sign in with Hugging Face first", print_exception=False)
        if self.settings.source_url is None:
            raise gr.Error("pushing needs the Space's id (SPACE_ID), which the cards cite as the scores' source",
                           print_exception=False)
        try:
            outcome = publish_to_card(record, create_pr=True, token=oauth_token.token, ids=self.settings.ids,
                                      source_url=self.settings.source_url)
        except Exception as exc:  # noqa: BLE001 - any failure is one line on the page (token hidden)
            message = f"push failed: {one_line(exc, secret=oauth_token.token)}"
            logger.warning("%s: %s", record["encoder"], message)
            raise gr.Error(message, print_exception=False) from None
        return push_message(record["encoder"], outcome)

    def leaderboard(self, max_age: float = LEADERBOARD_MAX_AGE) -> tuple[pd.DataFrame, str]:
        """The results dataset's rows (grouped by protocol, best AC, else C, first) and a note; a read
        less than ``max_age`` seconds old serves the page view."""
        dataset = self.settings.dataset_id
        if not dataset:
            return pd.DataFrame(), "No results dataset configured (LOW_METRIC_RESULTS_DATASET)."
        try:
            rows = read_leaderboard(dataset, max_age=max_age)
        except Exception as exc:  # noqa: BLE001 - an unreadable dataset must not break the page
            note = f"Could not read the results dataset {dataset}: {one_line(exc)}"
            logger.warning(note)
            return pd.DataFrame(), note
        note = f"{len(rows)} results from the dataset `{dataset}`; compare rows of equal protocol hash."
        return leaderboard_table(rows), note

    def refresh_leaderboard(self) -> tuple[pd.DataFrame, str]:
        """The leaderboard read afresh."""
        return self.leaderboard(max_age=0)


INTRO = """\
# Score a vision encoder: A, C and AC

After *Law of Vision Representation in MLLMs* (arXiv 2408.16357): **A** is how well the encoder's
tokens map onto CLIP's (ridge map onto CLIP@224 and CLIP@336, held-out images), **C** is keypoint
correspondence (PCK at alpha 0.10, x 100), and **AC** is what the paper's law predicts from them once a
calibration maps them onto the paper's scale: predicted benchmark scores, with intervals. Type a Hub model id (`org/name`, `org/name@revision`, or two joined by `+`), or pick one
of the paper's representations, and press **Score**. Public repos with safetensors weights only;
remote code is never run.
"""

PLOT_CAPTION = ("Paper points: the paper's A (projector mode, mean over 8 benchmarks) and C. With a calibration, "
                "points scored here are mapped onto the paper's scale; without one they keep this Space's own A and C, "
                "comparable with each other only.")


def build_demo(settings: Settings | None = None) -> gr.Blocks:
    """The page, bound to ``settings`` (default: from the environment)."""
    settings = settings or Settings.from_env()
    handlers = Handlers(settings)
    with gr.Blocks(title="low_metric: score a vision encoder") as demo:
        gr.Markdown(INTRO)
        with gr.Row():
            with gr.Column(scale=2):
                encoder = gr.Textbox(label="Hub encoder id", placeholder="org/name", elem_id="encoder")
                gr.Examples([[i] for i in PAPER_ENCODERS.values()], inputs=encoder,
                            example_labels=[f"{n}: {i}" for n, i in PAPER_ENCODERS.items()],
                            label="The paper's representations")
                with gr.Accordion("Scoring options", open=False):
                    layer = gr.Number(-2, precision=0, label="layer (hidden-state index; -2 as LLaVA)")
                    patch = gr.Slider(2, 64, value=16, step=1, label="P: descriptor grid side")
                    window = gr.Slider(0, 15, value=5, step=1, label="soft-argmax window (0: nearest neighbour)")
                    alignment = gr.Checkbox(True, label="A score (alignment with CLIP)")
                    pairs = gr.Number(0, precision=0, label="pairs per category (0: all)")
                run = gr.Button("Score", variant="primary", elem_id="score")
            with gr.Column(scale=3):
                headline = gr.Markdown("Scores appear here.", elem_id="summary")
                categories = gr.Dataframe(label="Correspondence per category (PCK, %)")
                predicted = gr.Dataframe(label="Predicted MLLM benchmark scores, with intervals (with a calibration)")
        plot = gr.ScatterPlot(placement([], calibrated=bool(settings.calibration)), x="C", y="A", color="source", color_map=PLOT_COLORS,
                              tooltip=["name", "A", "C", "protocol"], x_lim=[0, 100], y_lim=[0, 1.05],
                              title="Where it stands: A against C", caption=PLOT_CAPTION, elem_id="plot")
        with gr.Accordion("Full record (JSON)", open=False):
            record_json = gr.JSON()
        gr.Markdown("## Leaderboard")
        board_note = gr.Markdown()
        board = gr.Dataframe(label="Results dataset")
        refresh = gr.Button("Refresh the leaderboard")
        gr.Markdown("## Add the result to the model card\nOpens a pull request on the encoder's repo, as you.")
        if settings.show_login:
            gr.LoginButton()
        push = gr.Button("Open a pull request with this result", elem_id="push")
        push_status = gr.Markdown(elem_id="push-status")
        record, history = gr.State(None), gr.State([])

        run.click(handlers.score, [encoder, layer, patch, window, alignment, pairs, history],
                  [headline, categories, predicted, plot, record_json, record, history],
                  api_name="score", concurrency_limit=1)
        push.click(handlers.push, record, push_status, api_name="push")
        refresh.click(handlers.refresh_leaderboard, None, [board, board_note], api_name="leaderboard")
        demo.load(handlers.leaderboard, None, [board, board_note])
    return demo


def main() -> None:
    """The Space's start-up: the default request's data and reference encoders are loaded before the
    page serves (on ZeroGPU, before any GPU worker forks), then the page."""
    settings = Settings.from_env()
    warm_up(Options().config(settings))
    print(f"low_metric {VERSION} ({Path(low_metric.__file__).parent}): data and references loaded", flush=True)
    build_demo(settings).queue(max_size=20).launch()


if __name__ == "__main__":
    main()
