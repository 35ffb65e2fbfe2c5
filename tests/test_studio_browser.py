"""The studio in a real browser (Debian's Chromium, driven by Playwright) on the lighthouse
example: the page loads clean, every take plays, the seams show the frames that were handed
over, Pick writes one line, a run from the page remakes the film, and the export plays from
file://.

Set STORYREEL_SCREENSHOT=1 to write the screenshot into docs/studio.png as well."""

from __future__ import annotations

import base64
import io
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from support_processes import simulator
from support_studio import render

from pipeline.cli import main
from pipeline.media.metrics import psnr
from pipeline.simulator.options import SimOptions
from pipeline.store import ObjectStore, store_root_for
from pipeline.studio.review import ReviewConfig
from pipeline.studio.server import Served, serving

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "lighthouse"
DOCS = Path(__file__).resolve().parent.parent / "docs"
STORMY = "sea=stormy"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.is_file():
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: .ci/run installs it")
        pytest.skip("needs Debian's chromium: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def lighthouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("browser") / "lighthouse"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns(".storyreel", "*.mp4",
                                                                   "*.lock"))
    render(folder / "lighthouse.yaml")
    return folder / "lighthouse.yaml"


@pytest.fixture(scope="module")
def studio(lighthouse: Path) -> Iterator[Served]:
    config = ReviewConfig(lighthouse, "lighthouse.yaml", simulator=SimOptions(latency=(0.0, 0.05)))
    with serving(config) as served:
        yield served


class Page:
    """A browser tab that records every console error, page error and failed request."""

    def __init__(self, browser: Any) -> None:
        self.context = browser.new_context(viewport={"width": 1440, "height": 900},
                                           color_scheme="dark")
        self.context.set_default_timeout(120_000)  # a busy machine, not a hung page
        self.tab = self.context.new_page()
        self.problems: list[str] = []
        self.tab.on("console", lambda m: m.type == "error" and self.problems.append(m.text))
        self.tab.on("pageerror", lambda e: self.problems.append(str(e)))
        self.tab.on("requestfailed", self._failed)
        self.tab.on("response", lambda r: r.status >= 400 and self.problems.append(
            f"{r.status} {r.url}"))

    def _failed(self, request: Any) -> None:
        # A video element drops its request when it has buffered enough, or the page moves on.
        if request.failure != "net::ERR_ABORTED":
            self.problems.append(f"{request.url}: {request.failure}")

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Page]:
    tab = Page(browser)
    try:
        yield tab
    finally:
        tab.close()


def open_studio(page: Page, studio: Served, variant: int = 0) -> Any:
    tab = page.tab
    tab.goto(f"{studio.url}?v={variant}" if variant else studio.url)
    tab.wait_for_selector("figure.take[data-take] video")
    return tab


_PLAYING = """([selector, index]) => {
    const v = document.querySelectorAll(selector)[index];
    if (!v) return false;
    if (v.paused && !v.dataset.asked) {
        v.dataset.asked = 1; v.scrollIntoView({block: "center"}); v.muted = true; v.play();
    }
    if (v.readyState >= 3 && v.currentTime > 0.2 && !v.paused) { v.pause(); return true; }
    return false;
}"""


def plays(tab: Any, selector: str, index: int = 0) -> None:
    """The index-th video matching `selector` reaches a playable state, and its time moves on
    once played (asked again if the page swapped the element meanwhile)."""
    tab.wait_for_function(_PLAYING, arg=[selector, index])


def test_the_studio_loads_with_no_console_errors(studio: Served, page: Page) -> None:
    tab = open_studio(page, studio)
    tab.wait_for_load_state("load")
    # Every image the page shows, posters included, decodes (lazy ones asked for now).
    tab.wait_for_function("""() => { for (const i of document.images) i.loading = "eager";
        return [...document.images].every(i => i.complete && i.naturalWidth); }""")
    assert tab.title().startswith("lighthouse")
    assert page.problems == []


@pytest.mark.parametrize("variant", [0, 1])
def test_every_take_reaches_a_playable_state_and_plays(studio: Served, page: Page,
                                                       variant: int) -> None:
    tab = open_studio(page, studio, variant)
    takes = "figure.take[data-take] video"
    assert tab.locator(takes).count() == 6  # trail, three takes of approach, door, arrival
    for index in range(6):
        plays(tab, takes, index)
    assert page.problems == []


def _pixels_of(tab: Any, image: Any) -> np.ndarray:
    """The image as the browser decoded it, at its own size."""
    image.scroll_into_view_if_needed()
    tab.wait_for_function("i => i.complete && i.naturalWidth > 0", arg=image)
    data = image.evaluate("""i => { const c = document.createElement('canvas');
        c.width = i.naturalWidth; c.height = i.naturalHeight;
        c.getContext('2d').drawImage(i, 0, 0); return c.toDataURL('image/png'); }""")
    with Image.open(io.BytesIO(base64.b64decode(data.split(",", 1)[1]))) as decoded:
        return np.asarray(decoded.convert("RGB"))


def _decoded(path: Path, which: str) -> np.ndarray:
    """The first or last frame of a clip, by decoding every frame with PyAV."""
    import av

    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    return frames[0] if which == "first" else frames[-1]


def test_each_seam_shows_the_frame_handed_over_and_the_frame_that_took_it(
        studio: Served, page: Page, lighthouse: Path) -> None:
    tab = open_studio(page, studio)
    board = tab.request.get(f"{studio.url}api/board").json()
    store = ObjectStore(store_root_for(lighthouse))
    shots = {s["key"]: s for s in board["shots"]}
    seams = tab.query_selector_all("[data-seam]")
    names = [s.get_attribute("data-seam") for s in seams]
    assert names == [f"trail[{STORMY}]->approach[{STORMY}]",
                     f"approach[{STORMY}]->arrival[{STORMY}]", f"door[{STORMY}]->arrival[{STORMY}]"]
    for element, seam in zip(seams, [s for s in board["seams"] if STORMY in s["child"]],
                             strict=True):
        given, taken = element.query_selector_all("img")
        parent, child = shots[seam["parent"]], shots[seam["child"]]
        parent_clip = _clip(store, parent, seam["parent_take"])
        child_clip = _clip(store, child, child["pick"])
        expected_given = _decoded(parent_clip, seam["parent_frame"])
        expected_taken = _decoded(child_clip, seam["child_frame"])
        assert psnr(_pixels_of(tab, given), expected_given) > 45
        assert psnr(_pixels_of(tab, taken), expected_taken) > 45
        # and not the other end of the clip, which the simulator makes look different
        other = "first" if seam["parent_frame"] == "last" else "last"
        assert psnr(_pixels_of(tab, given), _decoded(parent_clip, other)) < 40
    assert page.problems == []


def _clip(store: ObjectStore, shot: dict[str, Any], take: int) -> Path:
    chosen = next(t for t in shot["takes"] if t["n"] == take)
    return store.path_for(chosen["sha256"], "mp4")


def test_pick_take_3_of_approach_then_run_and_watch_the_film_change(
        studio: Served, page: Page, lighthouse: Path, tmp_path: Path) -> None:
    """The review loop on the lighthouse: see the takes, pick, see what would re-render and
    at what cost, run from the page, watch the film change."""
    tab = open_studio(page, studio)
    approach = f'figure.take[data-shot="approach[{STORMY}]"]'
    assert len(tab.query_selector_all(approach)) == 3
    assert tab.get_attribute(f'{approach}[data-picked="true"]', "data-take") == "2"
    film_before = tab.get_attribute("video.film", "src")
    before = lighthouse.read_text()

    tab.click(f'{approach}[data-take="3"] button:text-is("Pick")')
    tab.wait_for_selector(f'{approach}[data-take="3"][data-picked="true"]')
    after = lighthouse.read_text()
    changed = [(a, b) for a, b in zip(before.splitlines(), after.splitlines()) if a != b]
    assert changed == [("    pick: 2", "    pick: 3")]
    assert len(before.splitlines()) == len(after.splitlines()) and after.endswith("\n")

    arrival = tab.locator(f'[data-status-for="arrival[{STORMY}]"]').first
    assert arrival.inner_text() == "pick changed"
    assert tab.locator("[data-next-run]").inner_text() == "2 shots · $0.30"
    _screenshot(tab, tmp_path)

    tab.click("#run")
    tab.wait_for_function("() => document.querySelector('#log').innerText.includes('run "
                          "finished')", timeout=300_000)
    tab.wait_for_function(f"() => document.querySelector('[data-status-for=\"arrival[{STORMY}]"
                          "\"]').innerText === 'cached'")
    assert tab.get_attribute("video.film", "src") != film_before
    assert tab.locator("[data-next-run]").inner_text() == "nothing to render"
    log = tab.locator("#log").inner_text()
    assert "run started (simulator)" in log and f"arrival[{STORMY}]: done" in log
    plays(tab, "video.film")
    assert lighthouse.read_text() == after  # a run never writes the storyboard
    assert page.problems == []


def _screenshot(tab: Any, tmp_path: Path) -> None:
    """The README's picture: the film, the strip, and the three takes of approach."""
    tab.set_viewport_size({"width": 1440, "height": 1360})
    tab.evaluate("() => window.scrollTo(0, 0)")
    tab.wait_for_function("() => [...document.images].every(i => i.complete)")
    shot = tmp_path / "studio.png"
    tab.screenshot(path=str(shot))
    tab.set_viewport_size({"width": 1440, "height": 900})
    with Image.open(shot) as image:
        assert image.size == (1440, 1360)
    if os.environ.get("STORYREEL_SCREENSHOT"):
        shutil.copyfile(shot, DOCS / "studio.png")


def test_the_export_opens_from_file_and_plays(lighthouse: Path, page: Page,
                                              tmp_path: Path) -> None:
    out = tmp_path / "for-the-director"
    result = CliRunner().invoke(main, ["review", str(lighthouse), "--export", str(out)])
    assert result.exit_code == 0, result.output
    tab = page.tab
    tab.goto((out / "index.html").as_uri())
    plays(tab, "video.film")
    picked = 'figure.take[data-picked="true"] video'
    assert tab.locator(picked).count() == 4
    for index in range(4):
        plays(tab, picked, index)
    tab.click("nav.variants a:text-is('sea=calm')")
    tab.wait_for_url("**/variant-1.html")
    plays(tab, "video.film")
    assert page.problems == []


def test_a_run_that_costs_money_shows_the_estimate_and_waits_for_a_yes(
        browser: Any, lighthouse: Path, tmp_path: Path) -> None:
    folder = tmp_path / "paid"
    shutil.copytree(lighthouse.parent, folder)
    story = folder / "lighthouse.yaml"
    story.write_text(story.read_text().replace("door in the storm", "door at night"))
    with simulator(tmp_path / "sim", latency=(0.0, 0.05)) as sim:
        environ = {"RUNWARE_API_KEY": "sk-browser-test", "RUNWARE_BASE_URL": sim.url}
        config = ReviewConfig(story, "lighthouse.yaml", backend="runware", environ=environ)
        with serving(config) as studio:
            page = Page(browser)
            try:
                tab = open_studio(page, studio)
                tab.click("#run")
                dialog = tab.wait_for_selector("dialog#confirm[open]")
                # door (one request for both variants) and the two arrivals that end on it
                assert "3 shots to render on Runware, estimated $0.450." in dialog.inner_text()
                tab.click("dialog#confirm button:text-is('Cancel')")
                assert sim.stats()["requests"].get("videoInference", 0) == 0
                tab.click("#run")
                tab.click("dialog#confirm button:text-is('Run for $0.45')")
                tab.wait_for_function("() => document.querySelector('#log').innerText"
                                      ".includes('run finished')", timeout=300_000)
                assert sim.stats()["requests"]["videoInference"] >= 1
                assert "sk-browser-test" not in tab.content()
                assert page.problems == []
            finally:
                page.close()
