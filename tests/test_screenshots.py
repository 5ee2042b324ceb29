"""`make screenshots` (aim_demo/screenshots.py): the docs' screenshots from a published site.

The demo's site is not published in the tests (that is `make demo`); the screenshots are taken of
the site render_site writes from the test fixture (scorecard and open data page) into a temporary
folder, in Debian's Chromium, and written to a temporary docs folder: the checkout's docs/ is
never touched.
"""
from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from aim.publish.site import render_site
from aim_demo import local
from aim_demo.screenshots import ScreenshotError, default_site_dir, main, take_screenshots
from test_open_data_page import site_data

ROOT = Path(__file__).resolve().parents[1]


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG file's header."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    render_site(site_data(), out)
    return out


def test_screenshots_of_the_published_site(site, tmp_path):
    docs = tmp_path / "docs"
    written = take_screenshots(site, docs)
    assert written == [docs / "scorecard-demo.png", docs / "scorecard.png", docs / "open-data-page.png"]
    assert png_size(docs / "scorecard-demo.png") == (1280, 900), "the top of the scorecard"
    width, height = png_size(docs / "scorecard.png")
    assert width == 1280 and height > 3 * 900, "the whole scorecard page"
    assert png_size(docs / "open-data-page.png") == (1280, 900), "the top of the open data page"
    assert sorted(p.name for p in docs.iterdir()) == ["open-data-page.png", "scorecard-demo.png", "scorecard.png"]
    assert (docs / "scorecard-demo.png").read_bytes() != (docs / "open-data-page.png").read_bytes()


def test_an_unpublished_site_says_run_make_demo_first(tmp_path, capsys):
    docs = tmp_path / "docs"
    with pytest.raises(ScreenshotError, match="run `make demo` first"):
        take_screenshots(tmp_path / "site", docs)
    assert main([str(tmp_path / "site")]) == 1
    assert "run `make demo` first" in capsys.readouterr().err
    assert not docs.exists() or not any(docs.iterdir()), "nothing is written"


def test_a_site_without_the_open_data_page_writes_nothing(site, tmp_path):
    partial = tmp_path / "site"
    partial.mkdir()
    (partial / "index.html").write_bytes((site / "index.html").read_bytes())
    docs = tmp_path / "docs"
    with pytest.raises(ScreenshotError, match="data.html missing.*run `make demo` again"):
        take_screenshots(partial, docs)
    assert not docs.exists() or not any(docs.iterdir())


def test_the_default_site_is_the_demo_export_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("AIM_EXPORT_URL", raising=False)
    assert default_site_dir() == local.STATE_DIR / "exports" / "site"
    monkeypatch.setenv("AIM_EXPORT_URL", str(tmp_path / "exports"))
    assert default_site_dir() == tmp_path / "exports" / "site"
    monkeypatch.setenv("AIM_EXPORT_URL", (tmp_path / "exports").as_uri())
    assert default_site_dir() == tmp_path / "exports" / "site"
    monkeypatch.setenv("AIM_EXPORT_URL", "s3://aim-open-data/prod")
    with pytest.raises(ScreenshotError, match="not a local folder"):
        default_site_dir()


def test_make_screenshots_command_before_make_demo(tmp_path):
    """`python -m aim_demo screenshots`, as `make screenshots` runs it, with no site published yet."""
    env = {**os.environ, "AIM_EXPORT_URL": str(tmp_path / "exports"),
           "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT)])}
    result = subprocess.run([sys.executable, "-m", "aim_demo", "screenshots"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert f"no published site in {tmp_path / 'exports' / 'site'}" in result.stderr
    assert "run `make demo` first" in result.stderr
