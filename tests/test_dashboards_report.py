"""The HTML report, built from the smoke table's MLflow store and checked in headless Chromium."""

from __future__ import annotations

import io
import shutil

import numpy as np
import pytest
from PIL import Image

from dashboards.browser import open_page
from dashboards.report import build_report
from depthhints.data.kitti import KittiRawLayout
from depthhints.hint_report import hint_quality
from depthhints.paper import PAPER_RESULTS


@pytest.mark.slow
def test_report_shows_table_curves_frames_and_hint_quality_in_a_browser(smoke_table, tmp_path):
    root = smoke_table["out"] / "kitti_synthetic"
    store = root / "depth_hints"
    timing = (store / "timing.json").read_text()
    assert '"seconds_per_image_per_actor"' in timing
    hint_quality(store, KittiRawLayout(root), tracking_uri=smoke_table["uri"])

    report = build_report(tmp_path / "report.html", smoke_table["uri"])
    html = report.read_text()
    assert "<script" not in html and "http://" not in html and "https://" not in html
    copy = tmp_path / "moved" / "r.html"  # self-contained: it works anywhere, alone
    copy.parent.mkdir()
    shutil.move(report, copy)

    with open_page(copy.as_uri(), 1280, 900) as page:
        rows = page.locator("#results-table tbody tr")
        assert rows.count() == 8  # 2 rows x (eigen, eigen_benchmark) x (with, without pp)
        labels = rows.locator("td:first-child").all_inner_texts()
        assert sum(text.startswith("S_R18_192x64_nopt_hints") for text in labels) == 4
        # the eigen_pp rows face the paper's row; the difference is coloured and signed
        compared = page.locator("#results-table tr", has_text="vs paper · Depth Hints R50 640x192")
        assert compared.count() == 1
        cells = compared.locator("td.better, td.worse")
        text = compared.inner_text()
        assert cells.count() >= 3 and "0.102 ▼" in text
        assert "recipe differs: backbone, resolution, pretrained\nsynthetic data" in text
        assert page.locator("#paper-table tbody tr").count() == len(PAPER_RESULTS)
        modes = page.locator("#hints-table tbody tr td:first-child").all_inner_texts()
        assert modes == ["parity/parity"]
        assert page.locator("#throughput table").count() >= 3

        images = page.locator("img")
        assert images.count() == 5  # curves, losses per scale, 2 models' frames, hint cost
        for index in range(images.count()):
            image = images.nth(index)
            assert image.evaluate("i => i.complete && i.naturalWidth > 100"), index
            picture = np.asarray(Image.open(io.BytesIO(image.screenshot())).convert("L"))
            assert picture.std() > 10, f"image {index} renders blank"
        samples = page.locator("figure.sample img")
        assert samples.count() == 2
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    assert Image.open(tmp_path / "report.png").size[1] > 2000
