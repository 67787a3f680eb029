"""Shared by the Space's tests: load ``space/app.py``, give it repos of its own on the Hub double, launch it."""

from __future__ import annotations

import importlib.util
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from low_metric.hub.leaderboard import dataset_card, record_row, result_path, row_file
from tests.conftest import WRITER_TOKEN
from tests.hub_double import HubDouble
from tests.scored import calibration_for  # noqa: F401  (the Space tests' calibrations)

APP_FILE = Path(__file__).resolve().parents[1] / "space" / "app.py"
REMOTE_CODE_CONFIG = '{"model_type": "custom-vit", "auto_map": {"AutoModel": "modeling_custom.CustomModel"}}'


def load_app(name: str = "low_metric_space") -> ModuleType:
    """``space/app.py`` as the module ``name`` (loaded once per name: another name, another module, e.g.
    one that imported a stand-in ``spaces``)."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, APP_FILE)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def copy_repo(hub: HubDouble, source: str, target: str, extra: dict[str, str] | None = None) -> str:
    """A new model repo holding ``source``'s files (plus ``extra``); WRITER_TOKEN may write to it."""
    files = {path: hub.read(source, path) for path in hub.files(source) if path != ".gitattributes"}
    hub.add_repo(target, {**files, **(extra or {})}, write_tokens=[WRITER_TOKEN])
    return target


def add_remote_code_repo(hub: HubDouble, source: str, target: str) -> str:
    """A copy of ``source`` whose config.json asks for its own modeling code (``auto_map``)."""
    return copy_repo(hub, source, target, {"config.json": REMOTE_CODE_CONFIG,
                                           "modeling_custom.py": "raise SystemExit('remote code ran')\n"})


def add_results_dataset(hub: HubDouble, dataset_id: str, records: list[dict[str, Any]]) -> str:
    """A results dataset in the layout ``low_metric.hub.publish`` writes and ``read_leaderboard`` reads."""
    files = {result_path(r): row_file(record_row(r, "2026-01-01T00:00:00Z")) for r in records}
    hub.add_repo(dataset_id, {"README.md": dataset_card(dataset_id), **files}, repo_type="dataset",
                 write_tokens=[WRITER_TOKEN])
    return dataset_id


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def launched(settings: Any) -> Iterator[str]:
    """The app built with ``settings``, served on 127.0.0.1; yields its URL."""
    demo = load_app().build_demo(settings)
    port = free_port()
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()
