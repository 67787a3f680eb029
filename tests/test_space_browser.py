"""The Space in a real headless browser (Debian's chromium, driven by Playwright's sync API).

A visitor signs in (gradio's local stand-in for the Hub's OAuth, giving WRITER_TOKEN), enters an id,
presses Score, sees the scores, the table and the plot, and opens a pull request on the model card.
The page must make no request beyond the app itself. Needs ``apt-get install -y chromium``.
"""

from __future__ import annotations

import io
import shutil
import time
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect, sync_playwright

from low_metric.scoring.scorer import ScoreConfig, score_encoders
from tests.conftest import WRITER_TOKEN
from tests.space_support import add_results_dataset, copy_repo, launched, load_app

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
SCREENSHOT_COPY = Path("/tmp/space_screenshot.png")
app = load_app()


def signed_in_as_writer() -> dict:
    """What gradio's local OAuth stand-in puts in the session: here the double's WRITER_TOKEN."""
    return {"access_token": WRITER_TOKEN, "token_type": "bearer", "expires_in": 3600, "id_token": "x",
            "scope": "openid profile write-discussions", "expires_at": int(time.time()) + 3600,
            "userinfo": {"sub": "1", "name": "Writer", "preferred_username": "writer",
                         "profile": "https://example.invalid/writer", "picture": "", "website": ""}}


def session_pixels(png: bytes) -> int:
    """Pixels of the session's colour (red, #d62728) in a screenshot."""
    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    return int(((rgb[..., 0] > 170) & (rgb[..., 1] < 110) & (rgb[..., 2] < 110)).sum())


@pytest.fixture(scope="module")
def browser_space(hub, model_repos, tmp_path_factory):
    """The app (sign-in shown, a results dataset) and a headless chromium page with every request recorded."""
    root = tmp_path_factory.mktemp("space_browser")
    board = score_encoders([model_repos.timm_vit], ScoreConfig(cache_dir=str(root / "board_cache")))
    card = copy_repo(hub, model_repos.dinov2, "space-browser/dinov2-card")
    settings = app.Settings(cache_dir=str(root / "cache"), login=True, space_id="space-browser/low-metric",
                            dataset_id=add_results_dataset(hub, "space-browser/results", board))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NO_PROXY", "127.0.0.1,localhost")
        mp.setattr("gradio.oauth._get_mocked_oauth_info", signed_in_as_writer)
        with launched(settings) as url, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            requests: list[str] = []
            page.on("request", lambda request: requests.append(request.url))
            page.goto(url)
            yield SimpleNamespace(page=page, url=url, requests=requests, card=card)
            browser.close()


def test_visitor_scores_sees_the_plot_and_opens_a_pull_request(browser_space, hub, tmp_path):
    page = browser_space.page
    page.get_by_role("button", name="Sign in with Hugging Face").click()
    expect(page.get_by_role("button", name="Logout (writer)")).to_be_visible(timeout=30_000)

    plot = page.locator("#plot")
    expect(plot.locator("canvas, svg").first).to_be_visible(timeout=30_000)
    plot_before = session_pixels(plot.screenshot())  # the legend's symbol only
    page.locator("#encoder textarea, #encoder input").first.fill(browser_space.card)
    page.locator("#score").click()
    summary = page.locator("#summary")
    expect(summary).to_contain_text("Protocol hash", timeout=120_000)  # the scores replace the progress bars
    expect(summary).to_contain_text(browser_space.card)
    page.wait_for_timeout(1000)  # the plot redraws with the new point
    plot_after = session_pixels(plot.screenshot())
    assert plot_after > plot_before  # the encoder's point is drawn, in the session colour
    text = page.locator("body").inner_text()
    for expected in ("face", "graffiti", "homography", "PCK@0.1", "Where it stands", "tests/tiny-vit-reg4",
                     "1 results from the dataset"):
        assert expected in text, expected

    page.locator("#push").click()
    expect(page.locator("#push-status")).to_contain_text("Opened a pull request", timeout=60_000)
    (pr,) = hub.pull_requests(browser_space.card)
    card = hub.read(browser_space.card, "README.md", revision=pr.ref).decode()
    assert pr.author == "writer" and "config: correspondence" in card and "spaces/space-browser/low-metric" in card

    shot = tmp_path / "space.png"
    page.locator("#summary").scroll_into_view_if_needed()
    page.screenshot(path=str(shot), full_page=True)
    shutil.copy(shot, SCREENSHOT_COPY)
    assert shot.stat().st_size > 10_000


def test_page_makes_no_outside_request(browser_space):
    own = urlsplit(browser_space.url).netloc
    outside = [u for u in browser_space.requests if urlsplit(u).scheme in ("http", "https", "ws", "wss")
               and urlsplit(u).netloc != own]
    assert browser_space.requests and not outside, outside
