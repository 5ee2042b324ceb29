"""`python -m aim_demo screenshots [SITE_DIR]` (`make screenshots`): the screenshots in docs/, taken
from the site that `make demo` published.

SITE_DIR is the published site folder: by default the demo's export folder's `site/`
(.aim/exports/site, or $AIM_EXPORT_URL/site when AIM_EXPORT_URL is a local folder). The pages are
opened as file:// URLs (no server) in Debian's Chromium (/usr/bin/chromium) through Playwright,
1280 px wide, once charts.js has drawn the charts, and written as:

    docs/scorecard-demo.png    the top of the scorecard (index.html), 1280 x 900
    docs/scorecard.png         the whole scorecard page
    docs/open-data-page.png    the top of the open data page (data.html), 1280 x 900

Nothing is written unless both pages are there and every screenshot was taken.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from aim_demo import local

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--hide-scrollbars", "--font-render-hinting=none"]
VIEWPORT = {"width": 1280, "height": 900}
DOCS_DIR = local.PROJECT_ROOT / "docs"
# (page, file written in docs/, whole page or only its top)
SHOTS = (("index.html", "scorecard-demo.png", False),
         ("index.html", "scorecard.png", True),
         ("data.html", "open-data-page.png", False))
USAGE = "usage: python -m aim_demo screenshots [SITE_DIR]"


class ScreenshotError(Exception):
    """The screenshots cannot be taken; the message says why and what to do."""


def default_site_dir() -> Path:
    """The folder `make demo` publishes the site to: <exports>/site, the exports being
    $AIM_EXPORT_URL when it is a local folder, else .aim/exports. ScreenshotError for a remote
    AIM_EXPORT_URL (e.g. s3://...): pass the site folder instead."""
    exports = os.environ.get("AIM_EXPORT_URL") or str(local.STATE_DIR / "exports")
    parts = urlsplit(exports)
    if parts.scheme == "file":
        return Path(parts.path) / "site"
    if parts.scheme and len(parts.scheme) > 1:  # not a Windows drive letter
        raise ScreenshotError(f"AIM_EXPORT_URL={exports} is not a local folder: "
                              "pass the published site folder, e.g. `python -m aim_demo screenshots path/to/site`")
    return Path(exports) / "site"


def _check_site(site_dir: Path) -> None:
    if not (site_dir / "index.html").is_file():
        raise ScreenshotError(f"no published site in {site_dir} (index.html is missing): run `make demo` first")
    missing = [name for name, _, _ in SHOTS if not (site_dir / name).is_file()]
    if missing:
        raise ScreenshotError(f"{', '.join(missing)} missing in {site_dir}: the site was published without "
                              "the open data page; run `make demo` again")


def _browser(manager):
    if not Path(CHROMIUM).is_file():
        raise ScreenshotError(f"{CHROMIUM} is missing: run `make chromium` (Debian's chromium; "
                              "never `playwright install`)")
    try:
        return manager.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    except Exception as error:  # noqa: BLE001 - reported with what to do
        raise ScreenshotError(f"Chromium did not start: {error}") from error


def take_screenshots(site_dir: Path, docs_dir: Path = DOCS_DIR) -> list[Path]:
    """Screenshot the published site in `site_dir` into `docs_dir` (the files of SHOTS) and return
    the files written. Raises ScreenshotError, writing nothing, when a page is missing ("run make
    demo first") or Chromium or Playwright is not there."""
    site_dir = Path(site_dir).resolve()
    _check_site(site_dir)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as error:
        raise ScreenshotError("the playwright package is missing: run `make install`") from error
    docs_dir = Path(docs_dir)
    docs_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="aim-screenshots-") as tmp:
        taken = []
        with sync_playwright() as manager:
            browser = _browser(manager)
            try:
                context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1, color_scheme="light",
                                              reduced_motion="reduce")
                page = context.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                for name, file_name, full_page in SHOTS:
                    page.goto((site_dir / name).as_uri(), wait_until="load")
                    page.wait_for_function("() => !document.querySelector('script[src$=\"charts.js\"]') || "
                                           "document.documentElement.getAttribute('data-charts') === 'ready'",
                                           timeout=10000)
                    page.evaluate("() => document.fonts.ready")
                    shot = Path(tmp) / file_name
                    page.screenshot(path=str(shot), full_page=full_page, animations="disabled", caret="hide")
                    taken.append(shot)
                if errors:
                    raise ScreenshotError(f"the site raised errors in the browser: {errors}")
            finally:
                browser.close()
        written = []
        for shot in taken:
            target = docs_dir / shot.name
            shutil.move(shot, target)
            written.append(target)
    return written


def main(argv: list[str]) -> int:
    """Command line: `screenshots [SITE_DIR]`; prints the files written, or the reason and exits 1."""
    if len(argv) > 1 or (argv and argv[0].startswith("-")):
        print(USAGE, file=sys.stderr)
        return 2
    try:
        site_dir = Path(argv[0]) if argv else default_site_dir()
        written = take_screenshots(site_dir)
    except ScreenshotError as error:
        print(f"screenshots: {error}", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
