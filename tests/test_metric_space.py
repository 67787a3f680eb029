"""The metric's Space app starts on 127.0.0.1 and answers through gradio_client.

Server and client run in a subprocess with the environment gradio needs offline
(GRADIO_ANALYTICS_ENABLED=False, HF_HUB_OFFLINE=1, HF_HUB_DISABLE_TELEMETRY=1 set before gradio is
imported), so this test never changes the environment of the test process itself.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import low_metric
from low_metric.metric import metric_file

DRIVER = r'''
import json, socket, sys, time
from gradio_client import Client
from low_metric.metric.app import EXAMPLES, build_demo

with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
demo = build_demo()
demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
out = {"examples": EXAMPLES}
try:
    client = Client(f"http://127.0.0.1:{port}/", verbose=False)
    out["api"] = sorted(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    for config in ("alignment", "correspondence", "ac"):
        out[config] = client.predict(config, json.dumps(EXAMPLES[config]), api_name="/compute")
    out["example"] = json.loads(client.predict("correspondence", api_name="/example"))
    try:
        client.predict("correspondence", json.dumps({"predictions": [[[1.0, 2.0]]], "references": [[[1.0, 2.0]]]}),
                       api_name="/compute")
        out["error"] = None
    except Exception as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"
    try:
        client.predict("alignment", "{not json", api_name="/compute")
        out["bad_json"] = None
    except Exception as exc:
        out["bad_json"] = f"{type(exc).__name__}: {exc}"
finally:
    demo.close()
print("RESULT " + json.dumps(out))
'''


@pytest.fixture(scope="module")
def space(tmp_path_factory):
    root = tmp_path_factory.mktemp("space")
    (root / "driver.py").write_text(DRIVER)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setenv("GRADIO_ANALYTICS_ENABLED", "False")
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
        mp.setenv("HF_EVALUATE_OFFLINE", "1")
        mp.setenv("HF_HOME", str(root / "hf_home"))
        mp.setenv("GRADIO_TEMP_DIR", str(root / "gradio_tmp"))
        mp.setenv("NO_PROXY", "127.0.0.1,localhost")
        proc = subprocess.run([sys.executable, str(root / "driver.py")], capture_output=True, text=True, timeout=300)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, (proc.stdout[-3000:], proc.stderr[-4000:])
    return json.loads(lines[-1][len("RESULT "):])


def test_space_lists_its_endpoints(space):
    assert {"/compute", "/example"} <= set(space["api"])


def test_space_answers_each_configuration(space):
    ex = space["examples"]["alignment"]
    target = [np.asarray(p, dtype=np.float32) for p in ex["predictions"]]
    assert space["alignment"]["A"] == low_metric.a_score(target, [np.asarray(r, dtype=np.float32) for r in ex["references"]])
    assert space["correspondence"]["C"] == 75.0
    assert space["correspondence"]["per_category"]["dog"]["pck@0.1"] == 100.0
    assert [round(x, 2) for x in space["ac"]["AC"]] == [0.72, 0.92]
    assert space["ac"]["names"] == ["DINOv2-like", "CLIP-like"]
    for config in ("alignment", "correspondence", "ac"):
        assert len(space[config]["protocol_hash"]) == 64
        assert space[config]["protocol"]["config"] == config
    assert space["example"] == space["examples"]["correspondence"]


def test_space_reports_bad_input(space):
    assert space["error"] is not None and "needs thresholds=" in space["error"]
    assert space["bad_json"] is not None and "not valid JSON" in space["bad_json"]


def test_app_sits_beside_the_metric():
    assert metric_file().with_name("app.py").is_file()
