"""The README's screenshot of ``anyres serve``: the page with a result and the before/after slider.

    python scripts/serve_screenshot.py                      # -> docs/serve.png
    python scripts/serve_screenshot.py --image photo.jpg --crop 0,0,200,130 --out /tmp/shot.png

Starts ``anyres serve --threads 1`` on a free port, opens the page in Debian's headless ``chromium`` through
Selenium with the system ``chromedriver`` (nothing is downloaded: Selenium Manager is kept offline), uploads a
crop of ``--image`` (default: the CC0 photo ``examples/chelsea.png``, a crop around the cat's eye), runs an
upscale by ``--scale`` (3) with the default model, waits for the result, zooms in ``--zoom-clicks`` times
(the page shows pixels unsmoothed from 200% up, as it does for any image), puts the slider at the middle and
saves a screenshot of the page's ``--window`` (1280x800: the browser window is grown by its own frame). The PNG is saved with Pillow's ``optimize``; if it is still over
``--max-kb`` it is reduced to 256 colours.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_IMAGE = ROOT / "examples" / "chelsea.png"
DEFAULT_CROP = "74,51,266,179"  # 192x128 around the cat's left eye


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int) -> subprocess.Popen:
    exe = shutil.which("anyres", path=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    cmd = ([exe] if exe else [sys.executable, "-m", "anyres.cli"]) + ["serve", "--port", str(port), "--threads", "1"]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    end = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/models", timeout=5) as r:
                json.loads(r.read())
            return server
        except OSError:
            if server.poll() is not None:
                raise RuntimeError(f"anyres serve exited: {server.stderr.read()}") from None
            if time.monotonic() > end:
                server.kill()
                raise TimeoutError("anyres serve did not answer in 120 s") from None
            time.sleep(0.1)


def save_png(png: bytes, out: Path, max_kb: float) -> None:
    image = Image.open(io.BytesIO(png)).convert("RGB")
    out.parent.mkdir(parents=True, exist_ok=True)
    image.save(out, optimize=True)
    if out.stat().st_size > max_kb * 1024:
        image.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(out, optimize=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    ap.add_argument("--crop", default=DEFAULT_CROP, help="left,top,right,bottom in pixels ('' for the whole image)")
    ap.add_argument("--scale", default="3")
    ap.add_argument("--zoom-clicks", type=int, default=2, help="clicks on the page's zoom-in button (x1.5 each)")
    ap.add_argument("--window", default="1280,800")
    ap.add_argument("--max-kb", type=float, default=300)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "serve.png")
    opts = ap.parse_args()

    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never fetch a driver or a browser
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    chromedriver = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if chromium is None or not Path(chromedriver).exists():
        sys.exit("needs chromium and chromedriver (apt-get install chromium chromium-driver)")

    work = Path(tempfile.mkdtemp(prefix="serve_screenshot-"))
    server = None
    driver = None
    try:
        image = Image.open(opts.image).convert("RGB")
        if opts.crop:
            image = image.crop(tuple(int(v) for v in opts.crop.split(",")))
        src = work / f"{opts.image.stem}.png"
        image.save(src)

        port = free_port()
        server = start_server(port)
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars"):
            options.add_argument(arg)
        width, height = (int(v) for v in opts.window.split(","))
        options.add_argument(f"--window-size={width},{height}")
        driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
        inner = driver.execute_script("return [window.innerWidth, window.innerHeight]")
        driver.set_window_size(2 * width - inner[0], 2 * height - inner[1])  # the page itself gets --window
        d, wait = driver, WebDriverWait(driver, 600)
        d.get(f"http://127.0.0.1:{port}/")
        wait.until(lambda d: len(Select(d.find_element(By.ID, "model")).options) > 0)
        d.find_element(By.ID, "file").send_keys(str(src))
        scale = d.find_element(By.ID, "scale")
        scale.clear()
        scale.send_keys(opts.scale)
        d.find_element(By.ID, "run").click()
        download = d.find_element(By.ID, "download")
        wait.until(lambda d: download.get_attribute("href") and "disabled" not in download.get_attribute("class"))
        wait.until(lambda d: d.find_element(By.ID, "stage").is_displayed())
        wait.until(lambda d: d.execute_script("return document.getElementById('after').complete"))
        for _ in range(opts.zoom_clicks):
            d.find_element(By.ID, "zoom-in").click()
        slider = d.find_element(By.ID, "slider")
        ActionChains(d).move_to_element(slider).click().perform()  # the middle of the slider
        value = float(slider.get_attribute("value"))
        assert 40 <= value <= 60, value
        time.sleep(0.5)
        save_png(d.get_screenshot_as_png(), opts.out, opts.max_kb)
        size = Image.open(opts.out).size
        print(f"wrote {opts.out} ({size[0]}x{size[1]}, {opts.out.stat().st_size / 1024:.0f} KB; slider at {value:g}%)")
    finally:
        if driver is not None:
            driver.quit()
        if server is not None:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
