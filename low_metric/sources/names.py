"""Encoder ids: the one parser of the names that the CLI, the scorer, the Space and publishing accept.

- ``org/name``: a Hub model repo; ``name@revision`` pins a branch, tag or commit.
- ``transformers:`` / ``timm:`` / ``open_clip:`` / ``diffusers:`` before an id force the library; ``hf-hub:`` (the
  timm / open_clip habit) may follow; ``timm:<architecture>[.<tag>]`` is timm's pretrained repo.
- a local folder (its path).
- ``X+Y`` concatenates encoders (SPEC.md section 1); each part is parsed as above.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from low_metric.core.errors import LowMetricError

LIBRARIES = ("transformers", "timm", "open_clip", "diffusers")
HF_HUB = "hf-hub:"


@dataclass(frozen=True)
class EncoderRef:
    """One part of an encoder id: a forced library (or None), the ``hf-hub:`` mark, the target (a
    Hub repo id, a local folder or a timm architecture) and a revision (or None)."""

    library: str | None
    hf_hub: bool
    target: str
    revision: str | None

    @property
    def name(self) -> str:
        """The part as written, normalised: ``[library:][hf-hub:]target[@revision]``."""
        prefix = (f"{self.library}:" if self.library else "") + (HF_HUB if self.hf_hub else "")
        return prefix + self.target + (f"@{self.revision}" if self.revision else "")

    @property
    def local(self) -> bool:
        """Whether the target is a folder on this machine (local folders win over Hub ids)."""
        return Path(self.target).is_dir()

    @property
    def repo_id(self) -> str | None:
        """The Hub repo id of the target, or None for a local folder or a bare timm architecture."""
        return None if self.local or "/" not in self.target else self.target


def parse_encoder_id(text: str, *, revision: str | None = None) -> list[EncoderRef]:
    """The parts of an encoder id (one, or several joined by ``+``); ``revision`` applies to a single
    part without ``@``. Malformed ids, unknown prefixes and invalid Hub ids are one-line errors."""
    if not isinstance(text, str) or not text.strip():
        raise LowMetricError(f"an encoder id must be a non-empty string, got {text!r}")
    if any(ch in text for ch in "\n\r\t\0"):
        raise LowMetricError(f"encoder id {text.strip()[:80]!r} contains a control character")
    parts = [part.strip() for part in text.split("+")]
    if len(parts) > 1 and revision is not None:
        raise LowMetricError("give each part of a concatenation its revision as name@revision, not revision=")
    if not all(parts):
        raise LowMetricError(f"encoder id '{text.strip()}' has an empty part around '+'")
    return [_parse_part(part, revision) for part in parts]


def _parse_part(part: str, revision: str | None) -> EncoderRef:
    library = None
    prefix, sep, rest = part.partition(":")
    if sep and prefix in LIBRARIES:
        library, part = prefix, rest
    hf_hub = part.startswith(HF_HUB)
    part = part.removeprefix(HF_HUB)
    if Path(part).is_dir():  # a local folder, whatever characters its path holds
        if revision is not None:
            raise LowMetricError(f"revision applies to Hub repos, not to the local folder {part}")
        return EncoderRef(library, hf_hub, part, None)
    if "://" in part:
        raise LowMetricError(f"'{part}' is a URL, not a Hub model id: use org/name")
    if ":" in part:
        raise LowMetricError(f"unknown library prefix '{part.split(':')[0]}:' in '{part}': use one of "
                             f"{', '.join(p + ':' for p in LIBRARIES)} or {HF_HUB}")
    target, at, pinned = part.partition("@")
    if at:
        if not pinned:
            raise LowMetricError(f"'{part}' has an empty revision after '@'")
        revision = pinned
    if Path(target).is_dir():
        raise LowMetricError(f"revision applies to Hub repos, not to the local folder {target}")
    if "/" in target or library != "timm":
        _check_repo_id(target)
    return EncoderRef(library, hf_hub, target, revision)


def _check_repo_id(target: str) -> None:
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(target)
    except HFValidationError:
        raise LowMetricError(f"'{target}' is not a valid Hub model id (org/name), nor a local folder") from None
