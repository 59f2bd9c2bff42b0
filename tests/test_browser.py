"""report.html and compare.html in headless Chromium: one file each, no network, no script.

The browser is Debian's ``chromium``, driven through Debian's ``chromium-driver``
by Selenium. Both paths are given, so Selenium Manager (which would download
a browser) never runs. The network is blocked (a proxy where nothing listens,
a host resolver that resolves nothing), and every request the page makes is
read from Chrome DevTools performance logs, so a request that the block
stops still counts. ``inspect_page`` does the browser work; the tests assert
on its ``PageReport``.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageFile

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL_HINT = "apt-get install -y chromium chromium-driver; pip install -e '.[dev]'"

CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    # Every proxied request goes to the discard port, where nothing listens, and
    # no name resolves: a request that tries to leave the file fails, but is logged.
    "--proxy-server=127.0.0.1:9",
    "--proxy-bypass-list=<-loopback>",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--window-size=1280,1024",
)

# Tallest full-page screenshot taken; Chromium's compositor caps textures near 16k pixels.
MAX_SCREENSHOT_HEIGHT = 16000

# Runs in the page after load: what the DOM holds, as plain JSON.
PAGE_FACTS_JS = """
const links = Array.from(document.querySelectorAll('a[href^="#"]'));
const handlers = [];
for (const element of document.querySelectorAll('*')) {
  for (const attribute of element.attributes) {
    if (attribute.name.startsWith('on')) {
      handlers.push(`<${element.localName} ${attribute.name}>`);
    }
  }
}
return {
  images: Array.from(document.images).map(img => ({
    src: img.getAttribute('src') || '', complete: img.complete,
    width: img.naturalWidth, height: img.naturalHeight})),
  scripts: Array.from(document.scripts).map(
    script => `<script${script.src ? ' src=' + script.src : ''}>`).concat(
    handlers,
    Array.from(document.querySelectorAll('[href^="javascript:" i]')).map(
      element => `<${element.localName} href=javascript:…>`)),
  links: links.length,
  dangling: links.map(a => a.getAttribute('href')).filter(
    href => document.getElementById(decodeURIComponent(href.slice(1))) === null),
  text_length: document.body ? document.body.innerText.trim().length : 0,
};
"""


@dataclass(frozen=True)
class PageReport:
    """What Chromium saw when it loaded one file."""

    url: str  # the file:// URL that was loaded
    requests: list[str]  # every URL the page requested, in order (data: URIs shortened)
    image_count: int
    broken_images: list[str]  # "src (shortened): why" for each <img> that did not decode
    console_errors: list[str]  # browser log entries at level SEVERE
    scripts: list[str]  # <script> elements, on* handler attributes, javascript: URLs
    in_page_links: int  # a[href^="#"]
    dangling_links: list[str]  # in-page hrefs with no element of that id
    text_length: int  # characters of body text
    distinct_colours: int  # in the screenshot
    screenshot: Path

    @property
    def outside_requests(self) -> list[str]:
        """Return requests for anything but the file itself or a ``data:`` URI."""
        return [
            url
            for url in self.requests
            if not url.startswith("data:") and url.split("#", 1)[0] != self.url
        ]

    def problems(self) -> list[str]:
        """Return one line per broken promise of a self-contained page; empty when all hold."""
        found = [f"request leaves the file: {url}" for url in self.outside_requests]
        found += [f"broken image: {src}" for src in self.broken_images]
        found += [f"console error: {message}" for message in self.console_errors]
        found += [f"script: {script}" for script in self.scripts]
        found += [f"dangling in-page link: {href}" for href in self.dangling_links]
        if self.text_length < 500:
            found.append(f"nearly blank: {self.text_length} characters of text")
        if self.distinct_colours < 16:
            found.append(f"nearly blank: screenshot has {self.distinct_colours} colours")
        return found


def _short(url: str) -> str:
    """Return a ``data:`` URI cut to a readable length; any other URL whole."""
    if not url.startswith("data:") or len(url) <= 80:
        return url
    return f"{url[:60]}…({len(url)} chars)"


def _decoded_size(blob: bytes) -> tuple[int, int]:
    """Return an image's size after decoding it to its last row; raise if it is cut short."""
    # WeasyPrint, which reportgen imports, tells PIL to accept truncated files, process-wide.
    accepts_truncated = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with Image.open(io.BytesIO(blob)) as image:
            image.load()
            return image.size
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = accepts_truncated


def _image_problem(img: dict[str, Any]) -> str | None:
    """Return why an ``<img>`` (as ``PAGE_FACTS_JS`` describes it) is broken, or None.

    Chromium shows a truncated PNG's first rows without complaint, so a ``data:``
    image is also decoded to its last row here and its size compared.
    """
    if not img["complete"] or img["width"] == 0:
        return "the browser could not decode it"
    header, _, payload = img["src"].partition(",")
    if not header.startswith("data:"):
        return None
    try:
        blob = base64.b64decode(payload, validate=True) if header.endswith(";base64") else b""
        size = _decoded_size(blob)
    except Exception as error:
        return f"does not decode completely ({error})"
    if size != (img["width"], img["height"]):
        return f"is {size[0]}×{size[1]} but shown as {img['width']}×{img['height']}"
    return None


def _requested_urls(performance_log: list[dict[str, Any]]) -> list[str]:
    """Return the URL of every request in a DevTools performance log."""
    urls = []
    for entry in performance_log:
        message = json.loads(entry["message"])["message"]
        params = message.get("params", {})
        if message["method"] == "Network.requestWillBeSent":
            urls.append(params["request"]["url"])
        elif message["method"] == "Network.webSocketCreated":
            urls.append(params["url"])
    return urls


def _full_page_png(driver: Any) -> bytes:
    """Return a PNG of the whole page (up to ``MAX_SCREENSHOT_HEIGHT`` pixels tall)."""
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {
        "x": 0,
        "y": 0,
        "width": size["width"],
        "height": min(size["height"], MAX_SCREENSHOT_HEIGHT),
        "scale": 1,
    }
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    return base64.b64decode(shot["data"])


def inspect_page(path: Path, screenshot: Path) -> PageReport:
    """Load ``path`` from disk in a fresh headless Chromium with the network blocked; report it.

    The screenshot of the whole page is written to ``screenshot``.
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    url = path.resolve().as_uri()
    with tempfile.TemporaryDirectory(prefix="reportgen-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
        driver = webdriver.Chrome(
            service=Service(executable_path=str(CHROMEDRIVER)), options=options
        )
        try:
            # Leave the start page (a new-tab page, still loading its own chrome://
            # resources) and drop its entries, so the log holds only this page's.
            driver.get("about:blank")
            driver.get_log("performance")
            driver.get(url)
            WebDriverWait(driver, 30).until(
                lambda d: d.execute_script(
                    "return document.readyState === 'complete'"
                    " && Array.from(document.images).every(img => img.complete)"
                )
            )
            facts = driver.execute_script(PAGE_FACTS_JS)
            png = _full_page_png(driver)
            requests = _requested_urls(driver.get_log("performance"))
            console = driver.get_log("browser")
        finally:
            driver.quit()
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    screenshot.write_bytes(png)
    with Image.open(io.BytesIO(png)) as image:
        rgb = image.convert("RGB")
        colours = rgb.getcolors(maxcolors=rgb.width * rgb.height) or []
    return PageReport(
        url=url,
        requests=[_short(request) for request in requests],
        image_count=len(facts["images"]),
        broken_images=[
            f"{_short(img['src'])}: {problem}"
            for img in facts["images"]
            if (problem := _image_problem(img))
        ],
        console_errors=[entry["message"] for entry in console if entry["level"] == "SEVERE"],
        scripts=facts["scripts"],
        in_page_links=facts["links"],
        dangling_links=facts["dangling"],
        text_length=facts["text_length"],
        distinct_colours=len(colours),
        screenshot=screenshot,
    )


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session", autouse=True)
def chromium() -> None:
    """Require Chromium, its driver and Selenium: fail under CI, skip elsewhere.

    Session-scoped so that it runs before the session's runs are made for nothing.
    """
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package")
    if missing:
        reason = f"the browser test needs {' and '.join(missing)} ({INSTALL_HINT})"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture(autouse=True)
def offline_selenium(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Make any use of Selenium Manager (which downloads browsers) an error."""
    from selenium.webdriver.common.selenium_manager import SeleniumManager

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("Selenium Manager ran: the driver path was not used")

    monkeypatch.setenv("SE_OFFLINE", "1")
    monkeypatch.setattr(SeleniumManager, "binary_paths", refuse)
    yield


def keep(report: PageReport) -> None:
    """Copy the screenshot to ``$REPORTGEN_TEST_ARTIFACTS`` when that is set."""
    if target := os.environ.get("REPORTGEN_TEST_ARTIFACTS"):
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy2(report.screenshot, Path(target) / report.screenshot.name)


# --------------------------------------------------------------------------- the real pages


def test_report_html_is_self_contained(quick_run: Path, tmp_path: Path) -> None:
    page = inspect_page(quick_run / "report.html", tmp_path / "report.png")
    keep(page)
    problems = page.problems()
    assert not problems, "\n".join(problems)
    assert page.requests[0] == page.url
    assert page.image_count >= 10 and page.in_page_links >= 5


def test_compare_html_is_self_contained(quick_compare: Path, tmp_path: Path) -> None:
    page = inspect_page(quick_compare / "compare.html", tmp_path / "compare.png")
    keep(page)
    problems = page.problems()
    assert not problems, "\n".join(problems)
    assert page.requests[0] == page.url
    assert page.image_count >= 1


# --------------------------------------------------------------------------- the checks can fail


@pytest.mark.parametrize(
    ("breakage", "payload"),
    [
        # not base64 at all: Chromium refuses the URL and logs a console error
        pytest.param("invalid-base64", lambda png: "iVBORw0KGgoAAAAbroken", id="invalid-base64"),
        # base64 of bytes that are no PNG: Chromium shows a broken image, silently
        pytest.param(
            "garbage",
            lambda png: base64.b64encode(b"\x89PNG\r\n\x1a\nno image").decode(),
            id="garbage",
        ),
        # the first half of the real PNG: Chromium shows its top rows, silently
        pytest.param("truncated", lambda png: png[: len(png) // 8 * 4], id="truncated"),
    ],
)
def test_a_broken_data_uri_image_is_reported(
    quick_run: Path, tmp_path: Path, breakage: str, payload: Callable[[str], str]
) -> None:
    html = (quick_run / "report.html").read_text(encoding="utf-8")
    first = re.search(r'<img src="data:image/png;base64,([^"]+)"', html)
    assert first is not None
    broken_src = f"data:image/png;base64,{payload(first.group(1))}"
    page = tmp_path / f"{breakage}.html"
    page.write_text(html.replace(first.group(0), f'<img src="{broken_src}"', 1), encoding="utf-8")
    report = inspect_page(page, tmp_path / f"{breakage}.png")
    assert len(report.broken_images) == 1
    assert report.broken_images[0].startswith(f"{broken_src[:60]}")
    assert f"broken image: {report.broken_images[0]}" in report.problems()
    assert report.outside_requests == [] and report.scripts == [] and report.dangling_links == []


def test_a_request_leaving_the_file_is_reported(quick_run: Path, tmp_path: Path) -> None:
    html = (quick_run / "report.html").read_text(encoding="utf-8")
    remote = html.replace(
        "</head>", '<link rel="stylesheet" href="https://example.invalid/x.css">\n</head>', 1
    ).replace("</body>", '<img src="http://example.com/x.png" alt="remote">\n</body>', 1)
    page = tmp_path / "remote.html"
    page.write_text(remote, encoding="utf-8")
    report = inspect_page(page, tmp_path / "remote.png")
    assert sorted(report.outside_requests) == [
        "http://example.com/x.png",
        "https://example.invalid/x.css",
    ]
    problems = report.problems()
    assert "request leaves the file: https://example.invalid/x.css" in problems
    assert "broken image: http://example.com/x.png: the browser could not decode it" in problems
