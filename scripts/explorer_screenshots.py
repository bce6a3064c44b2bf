"""Screenshots of `vaekit explore` for the docs: the page of each run given, at a laptop's window size.

    python scripts/explorer_screenshots.py RUN OUT.png [--view 'a=3&b=2&steps=8'] [RUN OUT.png ...]

Each RUN is served on a free local port, opened in Debian's Chromium through Playwright, left to draw its map,
decoded code, interpolation and samples, clicked once on the map (--click X Y, canvas pixels) and saved.
"""
from __future__ import annotations

import argparse
import shutil


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("pairs", nargs="+", help="RUN OUT.png pairs")
    p.add_argument("--view", default="", help="URL hash to open the page on (a=, b=, steps=, seed=, ...)")
    p.add_argument("--click", nargs=2, type=int, default=None, help="click the map here first")
    p.add_argument("--size", nargs=2, type=int, default=[1280, 800], help="window width and height")
    args = p.parse_args()
    if len(args.pairs) % 2:
        p.error("give RUN OUT.png pairs")
    from playwright.sync_api import sync_playwright

    from vaekit.explorer import Explorer, open_space

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        for run, out in zip(args.pairs[::2], args.pairs[1::2]):
            with Explorer(open_space(run), port=0) as ex:
                page = browser.new_page(viewport={"width": args.size[0], "height": args.size[1]}, bypass_csp=True)
                page.goto(ex.url + ("#" + args.view if args.view else ""))
                page.wait_for_selector("body[data-ready='1']", timeout=60_000)
                if args.click:
                    n = int(page.evaluate("document.body.dataset.decodes"))
                    page.click("#map", position={"x": args.click[0], "y": args.click[1]})
                    page.wait_for_function(f"Number(document.body.dataset.decodes) > {n}")
                page.screenshot(path=out)
                page.close()
            print(out)
        browser.close()


if __name__ == "__main__":
    main()
