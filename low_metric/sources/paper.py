"""The paper's protocol (Yang et al., arXiv 2408.16357): where its A images come from, and its
released stage-1 projectors.

A images: the official code saved the projected tokens of the first 100 images that lmms-eval fed
the model on each benchmark's task (``llava/eval/lmms-eval/run_embed_extract.sh`` of
bronyayang/Law_of_Vision_Representation_in_MLLMs). Dataset ids, configs, splits and image columns
below are lmms-eval's own task definitions (``lmms_eval/tasks/<task>/*.yaml`` and each task's
``doc_to_visual``), read at EvolvingLMMs-Lab/lmms-eval commit 75571cfe; its commit 4be7ee0e
(#1416) moved the datasets from ``lmms-lab/`` (the org of the paper's vendored copy, same names,
configs and splits) to ``lmms-lab-encoder/``. Two choices the task files leave open:

- the official run script names ``seed_all``, which is a metric of lmms-eval's ``seedbench`` task,
  not a task: SEED's A comes from that task (SEED-Bench, split ``test``, the first image of each
  question's ``image`` list);
- ``mmbench_en`` is a group of ``mmbench_en_dev`` and ``mmbench_en_test``: its first task's split
  (``dev``) is used; ``mmmu_val`` questions hold up to 7 images: ``image_1``, the first.

lmms-eval's LLaVA model orders its requests by descending prompt length (its ``Collator``), so the
paper's 100 images were the 100 longest prompts' images; that order needs the Vicuna tokenizer and
each task's prompt, so here the first 100 rows of the split are taken (recorded as ``"order":
"split"``).

Stage-1 projectors: the authors released each representation's LLaVA-1.5 stage-1 checkpoint as
``shijiay/llava_<tag>_stage1`` (tagged arxiv:2408.16357), holding ``mm_projector.bin`` (a pickle,
bf16). The tags of CLIP336 (``clip``), CLIP224, OpenCLIP, DINOv2, SigLIP, SDim, SD1.5, SDXL, DiT and
CLIP224+DINOv2 (``clipdino224``) were seen on the Hub; those of SD3, SD2.1 and CLIP336+DINOv2
follow the same naming (their stage-2 repos are ``llava_sd3_stage2``, ``llava_clipdino336_stage2``).
"""

from __future__ import annotations

from dataclasses import dataclass

LMMS_EVAL_COMMIT = "75571cfe"
PAPER_IMAGES_PER_BENCHMARK = 100


@dataclass(frozen=True)
class BenchmarkImages:
    """One benchmark's A images: the first ``count`` rows of a dataset split, one image column."""

    benchmark: str  # the paper's benchmark name (a column of paper_table.csv)
    task: str  # the lmms-eval task that feeds it
    dataset: str
    config: str | None
    split: str
    column: str  # a list-valued column gives its first image
    count: int = PAPER_IMAGES_PER_BENCHMARK

    def protocol(self) -> dict[str, object]:
        return {"task": self.task, "dataset": self.dataset, "config": self.config, "split": self.split,
                "column": self.column, "first": self.count, "order": "split", "lmms_eval": LMMS_EVAL_COMMIT}


PAPER_BENCHMARK_IMAGES: tuple[BenchmarkImages, ...] = (
    BenchmarkImages("mmbench_en", "mmbench_en_dev", "lmms-lab-encoder/MMBench", "en", "dev", "image"),
    BenchmarkImages("mme", "mme", "lmms-lab-encoder/MME", None, "test", "image"),
    BenchmarkImages("mmmu_val", "mmmu_val", "lmms-lab-encoder/MMMU", None, "validation", "image_1"),
    BenchmarkImages("ok_vqa", "ok_vqa_val2014", "lmms-lab-encoder/OK-VQA", None, "val2014", "image"),
    BenchmarkImages("textvqa_val", "textvqa_val", "lmms-lab-encoder/textvqa", None, "validation", "image"),
    BenchmarkImages("vizwiz_vqa_val", "vizwiz_vqa_val", "lmms-lab-encoder/VizWiz-VQA", None, "val", "image"),
    BenchmarkImages("scienceqa_img", "scienceqa_img", "lmms-lab-encoder/ScienceQA", "ScienceQA-IMG", "test", "image"),
    BenchmarkImages("seed_image", "seedbench", "lmms-lab-encoder/SEED-Bench", None, "test", "image"),
)

# the paper's representation name -> its released LLaVA-1.5 stage-1 checkpoint (mm_projector.bin)
PAPER_STAGE1_PROJECTORS = {
    "CLIP336": "shijiay/llava_clip_stage1",
    "CLIP224": "shijiay/llava_clip224_stage1",
    "OpenCLIP": "shijiay/llava_openclip_stage1",
    "DINOv2": "shijiay/llava_dinov2_stage1",
    "SigLIP": "shijiay/llava_siglip_stage1",
    "SDim": "shijiay/llava_sdim_stage1",
    "SD1.5": "shijiay/llava_sd1.5_stage1",
    "SDXL": "shijiay/llava_sdxl_stage1",
    "DiT": "shijiay/llava_dit_stage1",
    "SD3": "shijiay/llava_sd3_stage1",
    "SD2.1": "shijiay/llava_sd2.1_stage1",
    "CLIP224+DINOv2": "shijiay/llava_clipdino224_stage1",
    "CLIP336+DINOv2": "shijiay/llava_clipdino336_stage1",
}
