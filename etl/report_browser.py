"""Check a rendered report in a real browser: headless Chromium, offline, no driver protocol.

``check_in_browser(html, png)`` runs Chromium three times on ``file://`` URLs:

0. ``--dump-dom`` of a copy of the page with one line of script that writes the
   page's laid-out height into the DOM: ``--screenshot`` captures the window
   only, so the window is made that tall (at most ``MAX_HEIGHT``) and the PNG
   holds the whole page, every section, with no scrollbar.
1. ``--screenshot`` with ``--enable-logging=stderr --v=0``: Chromium prints
   every console message as ``INFO:CONSOLE…`` on stderr, uncaught exceptions
   included (``"Uncaught ReferenceError: …"``); any such line is a problem.
   ``--host-resolver-rules=MAP * ~NOTFOUND`` makes every host name unresolvable,
   so a page that tried to fetch something could not (and would look broken).
2. ``--dump-dom``: the DOM after loading, to confirm the browser parsed the
   sections and the inline SVG charts (not just that it wrote a PNG).

Failed loads of external resources are not console messages, so
``external_references`` checks the HTML itself: no ``src``/``href``/``url()``/
``@import`` that names a scheme other than ``#`` anchors and ``data:``.

Each run uses a fresh ``--user-data-dir`` (removed afterwards) so no profile,
extension or cache from the machine takes part.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from etl.errors import StageError

CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND",
)
#: The tallest screenshot taken (px); a taller page is cut there, and that is a problem.
MAX_HEIGHT = 16_384
_MEASURE = (
    "<script>document.documentElement.setAttribute('data-etl-height', "
    "Math.ceil(document.documentElement.getBoundingClientRect().height))</script>"
)
_HEIGHT = re.compile(r'data-etl-height="(\d+)"')
#: Section ids the page must contain once the browser parsed it.
SECTIONS = ("stages", "counts", "runs", "rejected", "load", "diff")
_EXTERNAL = re.compile(
    r"""(?:\b(?:src|href|action|poster)\s*=\s*["']?\s*(?!#|data:)[a-z][a-z0-9+.-]*:)"""
    r"""|(?:url\(\s*["']?\s*(?!data:|#)[a-z][a-z0-9+.-]*:)|(?:@import)""",
    re.IGNORECASE,
)


@dataclass
class BrowserCheck:
    """What the browser saw; ``ok`` when there is no problem."""

    png: Path
    #: the screenshot's height (px): the page's, up to ``MAX_HEIGHT``
    height: int = 0
    console: list[str] = field(default_factory=list)
    svgs: int = 0
    sections: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def find_chromium() -> Path | None:
    for candidate in CANDIDATES:
        if Path(candidate).is_file():
            return Path(candidate)
    found = shutil.which("chromium")
    return Path(found) if found else None


def external_references(html: str) -> list[str]:
    """Every place the page would reach outside itself (should be empty)."""
    return [m.group(0) for m in _EXTERNAL.finditer(html)]


def _run(chromium: Path, args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="etl-chromium-") as profile:
        cmd = [str(chromium), *FLAGS, f"--user-data-dir={profile}", *args]
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise StageError(f"Chromium did not finish within {timeout:.0f}s") from None


def page_height(chromium: Path, html: Path, width: int, timeout: float) -> int | None:
    """The laid-out height of ``html`` at ``width`` px (None if the browser did not say)."""
    with tempfile.TemporaryDirectory(prefix="etl-measure-") as work:
        copy = Path(work) / html.name
        copy.write_text(html.read_text(encoding="utf-8") + _MEASURE, encoding="utf-8")
        dom = _run(
            chromium, [f"--window-size={width},600", "--dump-dom", copy.as_uri()], timeout
        ).stdout
    found = _HEIGHT.search(dom)
    return int(found.group(1)) if found else None


def check_in_browser(
    html: Path,
    png: Path,
    *,
    chromium: Path | None = None,
    width: int = 1200,
    timeout: float = 90,
) -> BrowserCheck:
    """Screenshot the whole of ``html`` into ``png``; report console errors and what rendered."""
    chromium = chromium or find_chromium()
    if chromium is None:
        raise StageError(
            "Chromium is not installed, so the report cannot be checked in a browser",
            hint="install it (Debian: apt-get install -y chromium) or skip the check",
        )
    url = html.resolve().as_uri()
    png.parent.mkdir(parents=True, exist_ok=True)
    png.unlink(missing_ok=True)
    check = BrowserCheck(png=png)
    height = page_height(chromium, html, width, timeout)
    if height is None:
        check.problems.append("the browser did not report the page's height")
    elif height > MAX_HEIGHT:
        check.problems.append(
            f"the page is {height:,} px tall: the screenshot shows {MAX_HEIGHT:,}"
        )
    check.height = min(height or MAX_HEIGHT, MAX_HEIGHT)
    shot = _run(
        chromium,
        [
            "--enable-logging=stderr",
            "--v=0",
            "--hide-scrollbars",
            f"--screenshot={png.resolve()}",
            f"--window-size={width},{check.height}",
            url,
        ],
        timeout,
    )
    check.console = [
        line for line in shot.stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line
    ]
    if check.console:
        check.problems.append(f"{len(check.console)} console message(s), e.g. {check.console[0]}")
    if not png.is_file() or png.stat().st_size < 10_000:
        check.problems.append(f"no screenshot, or a blank one, at {png} (exit {shot.returncode})")
    dom = _run(chromium, ["--dump-dom", url], timeout).stdout
    check.svgs = dom.count("<svg")
    check.sections = [s for s in SECTIONS if f'id="{s}"' in dom]
    missing = [s for s in SECTIONS if s not in check.sections]
    if missing:
        check.problems.append(f"sections missing from the rendered page: {', '.join(missing)}")
    outside = external_references(html.read_text(encoding="utf-8"))
    if outside:
        check.problems.append(f"the page references outside resources: {outside[:3]}")
    return check
