"""The HTML report of a run folder: one self-contained file with every section, the real-data
floor beside the quality curve, and a clear word wherever a piece of the run is missing; and the
page as a browser shows it (headless Chromium: every picture loads, nothing on the console)."""
from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml
from PIL import Image

from ganland.config import load_config
from ganland.errors import ConfigError
from ganland.report import (GIF_FRAMES, GIF_MAX_BYTES, GIF_MIN_WIDTH, GIF_WIDTH, animated_gif, pick_frames,
                            write_report)
from ganland.training.runs import train

SECTIONS = ("config", "curves", "quality", "samples", "generator", "scores", "guard", "epochs")
FAST = {"train.progress": False, "train.heldout_batches": 1}
TINY_IMAGES = {
    "data.name": "mnist", "model.name": "dcgan", "model.z_dim": 8, "model.options": {"g_width": 4, "d_width": 4},
    "model.conditional": True, "train.batch_size": 16, "train.steps": 20, "train.log_every": 2,
    "train.sample_every": 4, "train.checkpoint_every": 10, "eval.every": 10, "eval.n_samples": 64, **FAST,
}


# ---------------------------------------------------------------------------------------------
# Runs, trained once for the whole file (tests that change one work on a copy)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Three tiny runs: a 1-D toy scored while training, a 2-D toy never scored, and a conditional
    image model (fake MNIST) scored while training over more than one epoch."""
    from conftest import write_fake_mnist

    tmp = tmp_path_factory.mktemp("report-runs")
    with pytest.MonkeyPatch.context() as mp:  # module fixtures run before the per-test `offline` one
        mp.setenv("GANLAND_CACHE", str(tmp / "cache"))
        toy = train(load_config("gaussian-1d", {**FAST, "train.steps": 30, "train.log_every": 5,
                                                "train.sample_every": 5, "train.checkpoint_every": 15,
                                                "eval.every": 10, "eval.n_samples": 300}), str(tmp / "gaussian-1d"))
        ring = train(load_config("ring", {**FAST, "train.steps": 10, "train.log_every": 5, "train.sample_every": 5}),
                     str(tmp / "ring"))
        images = train(load_config(None, {**TINY_IMAGES, "data.root": str(write_fake_mnist(tmp / "mnist"))}),
                       str(tmp / "cgan"))
    return {"toy": toy.run_dir, "ring": ring.run_dir, "images": images.run_dir}


def copy_of(run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run, tmp_path / run.name))


# ---------------------------------------------------------------------------------------------
# Reading the page back


class Page(HTMLParser):
    """What the tests look at: every attribute that points somewhere, section ids, images, text."""

    def __init__(self, text: str):
        super().__init__()
        self.html, self.in_style = text, False
        self.links, self.ids, self.images, self.tags, self.chunks = [], [], [], [], []
        self.feed(text)
        self.text = " ".join(" ".join(self.chunks).split())

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        self.in_style = tag == "style"
        self.links += [v for k, v in attrs if k in ("src", "href", "srcset", "poster", "data", "action") and v]
        if "id" in a:
            self.ids.append(a["id"])
        if tag == "img":
            self.images.append(a)

    def handle_endtag(self, tag):
        self.in_style = False

    def handle_data(self, data):
        if not self.in_style:  # the page's words, not its style sheet
            self.chunks.append(data)

    def section(self, anchor: str) -> str:
        """The text of one section (by its id)."""
        body = re.search(rf'<section id="{anchor}">(.*?)</section>', self.html, re.S).group(1)
        return " ".join(re.sub(r"<[^>]+>", " ", body.replace("<wbr>", "")).split())


def read_page(path: Path) -> tuple[str, Page]:
    html = path.read_text(encoding="utf-8")
    return html, Page(html)


def assert_self_contained(html: str, page: Page) -> None:
    """Nothing outside the file: every link a data: URI or an anchor, no scripts, no CSS url()."""
    outside = [v[:60] for v in page.links if not (v.startswith("data:") or v.startswith("#"))]
    assert outside == []
    assert "script" not in page.tags and "url(" not in html and "@import" not in html
    for anchor in (v[1:] for v in page.links if v.startswith("#")):
        assert anchor in page.ids, f"link to #{anchor}, which is not on the page"


def embedded(img: dict) -> Image.Image:
    header, data = img["src"].split(",", 1)
    assert header in ("data:image/png;base64", "data:image/gif;base64")
    return Image.open(io.BytesIO(base64.b64decode(data)))


# ---------------------------------------------------------------------------------------------
# Pieces alone


def test_pick_frames_spreads_evenly_and_keeps_the_ends():
    frames = list(range(101))
    picked = pick_frames(frames, GIF_FRAMES)
    assert len(picked) == GIF_FRAMES and picked[0] == 0 and picked[-1] == 100
    assert picked == sorted(set(picked))
    assert pick_frames(frames[:7], GIF_FRAMES) == frames[:7]


def noise_pictures(folder: Path, n: int) -> list[Path]:
    """Noisy RGB pictures: the worst case for a GIF's size."""
    paths = []
    for i in range(n):
        paths.append(folder / f"step_{i:09d}.png")
        Image.effect_noise((900, 600), 80 + 10 * i).convert("RGB").save(paths[-1])
    return paths


@pytest.mark.parametrize("budget", [GIF_MAX_BYTES, 400_000, 80_000])
def test_animated_gif_loops_and_shrinks_to_its_budget(tmp_path, budget):
    paths = noise_pictures(tmp_path, 6)
    data, used = animated_gif(paths, budget)
    gif = Image.open(io.BytesIO(data))
    assert len(data) <= budget and gif.format == "GIF" and gif.info.get("loop") == 0
    assert gif.n_frames == len(used) and used[-1] == paths[-1]
    if budget == GIF_MAX_BYTES:  # fits at full width, every frame in
        assert gif.width == GIF_WIDTH and used == paths
    elif budget == 400_000:  # narrower, every frame in
        assert GIF_MIN_WIDTH <= gif.width < GIF_WIDTH and used == paths
    else:  # as narrow as it goes, then fewer frames
        assert gif.width == GIF_MIN_WIDTH and len(used) < len(paths)


def test_a_folder_that_is_not_a_run_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="no run folder"):
        write_report(tmp_path / "nope")
    with pytest.raises(ConfigError, match="no config.yaml"):
        write_report(tmp_path)


# ---------------------------------------------------------------------------------------------
# Whole reports


@pytest.mark.e2e
def test_toy_report_has_every_section_and_the_floor(runs, tmp_path):
    run = copy_of(runs["toy"], tmp_path)
    path = write_report(run)
    assert path == run / "report.html"
    html, page = read_page(path)
    assert_self_contained(html, page)
    assert all(s in page.ids for s in SECTIONS)
    for fact in ("gaussian-1d", "mlp", "non-saturating", "30 of 30", "training time"):
        assert fact in page.text, fact
    assert "config.yaml" in page.section("config") and "<details>" in html
    quality = page.section("quality")
    assert "real-data floor" in quality and "300 real samples" in quality and "w1" in quality
    gif = next(embedded(i) for i in page.images if i["src"].startswith("data:image/gif"))
    assert gif.n_frames == 6  # steps 5, 10, ..., 30
    assert "1-D samples" in page.section("samples") and "target density" in page.section("samples")
    assert "makes vectors, not images" in page.section("generator")
    scores = page.section("scores")
    assert scores.count("in-training, step") == 3 and "normal-1d" in scores
    assert "none" in page.section("guard")
    for img in page.images:
        assert embedded(img).size == (int(img["width"]), int(img["height"]))


@pytest.mark.e2e
def test_floor_can_be_skipped(runs, tmp_path):
    html, page = read_page(write_report(runs["toy"], tmp_path / "r.html", floor=False))
    quality = page.section("quality")
    assert "not computed" in quality and "real-data floor</th>" not in html
    assert "w1 of 3 in-training evaluations" in quality  # the curve is still there


@pytest.mark.e2e
def test_conditional_image_report(runs, tmp_path):
    html, page = read_page(write_report(runs["images"], tmp_path / "report.html"))
    assert_self_contained(html, page)
    assert "dcgan, conditional" in page.text and "mnist" in page.text
    quality = page.section("quality")
    assert "real-data floor" in quality and "fid" in quality and "mnist-cnn" in quality
    generator = page.section("generator")
    assert "One grid per class" in generator and "one column per class" in generator
    assert "Latent interpolations" in generator and "Rows, top to bottom: 0, 1, 2" in generator
    epochs = page.section("epochs")
    assert "heldout_loss_D_real" in epochs and "held-out − train" in epochs
    assert "class_histogram" in page.section("scores")
    # the training curves, the quality curve, the GIF, latest.png, one class grid, the walks
    assert len(page.images) == 6 and all(embedded(i).width > 100 for i in page.images)
    assert (tmp_path / "report.html").stat().st_size < 5_000_000


@pytest.mark.e2e
def test_a_run_never_scored_says_how_to_get_a_quality_curve(runs, tmp_path):
    html, page = read_page(write_report(runs["ring"], tmp_path / "report.html"))
    assert_self_contained(html, page)
    assert "eval.every=500" in page.section("quality")
    assert "No metrics.jsonl" in page.section("scores")
    samples = page.section("samples")
    assert "2-D samples" in samples and "D's logit surface" in samples


@pytest.mark.e2e
def test_missing_checkpoints_stats_and_pictures_do_not_stop_the_report(runs, tmp_path):
    run = copy_of(runs["toy"], tmp_path)
    shutil.rmtree(run / "checkpoints")
    html, page = read_page(write_report(run))
    assert "No generator to draw from" in page.section("generator")
    assert "real-data floor" in page.section("quality")  # needs the config, not a checkpoint
    shutil.rmtree(run / "samples")
    (run / "stats.jsonl").unlink()
    (run / "metrics.jsonl").unlink()
    html, page = read_page(write_report(run))
    assert all(s in page.ids for s in SECTIONS)
    assert "no stats.jsonl" in page.section("curves")
    assert "No fixed-noise pictures" in page.section("samples")
    assert "not finished an epoch" in page.section("epochs")
    assert page.images == []


@pytest.mark.e2e
def test_unreadable_data_leaves_out_only_the_floor(runs, tmp_path):
    run = copy_of(runs["images"], tmp_path)
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    cfg["data"]["root"] = str(tmp_path / "gone")  # the data moved away since training (downloads are off)
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    html, page = read_page(write_report(run))
    quality = page.section("quality")
    assert "No real-data floor" in quality and "--no-floor" in quality
    assert "fid of 2 in-training evaluations" in quality  # the curve without its floor


@pytest.mark.e2e
def test_guard_events_are_listed(runs, tmp_path):
    run = copy_of(runs["toy"], tmp_path)
    event = {"kind": "guard", "step": 15, "epoch": 0, "detected_at": 20, "problem": "loss_D is nan",
             "action": "rolled back to step 15 (step_000000015.pt), retry 1 of 2 with both learning rates halved"}
    with open(run / "stats.jsonl", "a") as f:
        f.write(json.dumps(event) + "\n")
    html, page = read_page(write_report(run, floor=False))
    guard = page.section("guard")
    assert "1 event(s)" in guard and "loss_D is nan" in guard and "retry 1 of 2" in guard


# ---------------------------------------------------------------------------------------------
# In a real browser


@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    """A headless Chromium driven by the system chromedriver, or a skip saying what is missing.
    (Asked for before `runs`, so a machine without a browser skips before training anything.)"""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
    binary = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
    driver_path = shutil.which("chromedriver")
    if binary is None or driver_path is None:
        pytest.skip("no chromium or chromedriver on PATH (apt-get install chromium chromium-driver)")
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    # No background traffic: this machine has no network, and Chromium would flood refused connections.
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--hide-scrollbars", "--window-size=1200,900",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        driver = webdriver.Chrome(service=Service(driver_path), options=options)
    except WebDriverException as e:
        pytest.skip(f"chromium would not start under chromedriver: {str(e).splitlines()[0]}")
    yield driver
    driver.quit()


def screenshot(driver, report: Path, png: Path, max_height: int = 20_000) -> dict:
    """Open `report`, check it as a person would see it, and save a full-page screenshot 1200 px
    wide. Returns what the page showed: its images' natural sizes and the browser's log."""
    driver.get(report.resolve().as_uri())
    shown = driver.execute_script(
        "return {title: document.title, height: document.documentElement.scrollHeight,"
        " images: Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.alt])}")
    driver.set_window_size(1200, min(shown["height"], max_height) + 120)  # the window's frame takes some
    png.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(png))
    shown["log"] = driver.get_log("browser")
    return shown


@pytest.mark.e2e
def test_report_in_a_headless_browser(chromium, runs, tmp_path):
    for name in ("images", "toy"):
        report = write_report(runs[name], tmp_path / f"{name}.html")
        shown = screenshot(chromium, report, tmp_path / f"{name}.png")
        assert shown["title"].startswith("ganland report")
        assert shown["images"] and all(done and width > 0 for done, width, _ in shown["images"]), shown["images"]
        assert [e for e in shown["log"] if e["level"] == "SEVERE"] == []
        with Image.open(tmp_path / f"{name}.png") as png:
            assert png.width == 1200 and png.height > 2000
    keep = os.environ.get("GANLAND_REPORT_SCREENSHOT")  # a copy to look at, e.g. GANLAND_REPORT_SCREENSHOT=/tmp/r.png
    if keep:
        shutil.copyfile(tmp_path / "images.png", keep)
