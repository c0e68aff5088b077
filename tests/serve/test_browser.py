"""The page in a real browser: Debian's chromium, headless, driven by Selenium with the system chromedriver.

Nothing is downloaded (no Selenium Manager, no browser build); the test skips where chromium, chromedriver or
selenium is missing (``.ci/run`` installs them with apt-get when it can).
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

pytestmark = pytest.mark.slow

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")
webdriver = pytest.importorskip("selenium.webdriver")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver") or (
    "/usr/bin/chromedriver" if os.path.exists("/usr/bin/chromedriver") else None
)
if CHROMIUM is None or CHROMEDRIVER is None:
    pytest.skip("needs chromium and chromedriver (apt-get install chromium chromium-driver)", allow_module_level=True)

from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

from anyres.cli import main  # noqa: E402
from anyres.serve.app import create_app  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    port = _free_port()
    app = create_app(threads=1, root=tmp_path / "jobs")
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    end = time.monotonic() + 30
    while not srv.started and time.monotonic() < end:
        time.sleep(0.05)
    assert srv.started
    yield f"http://127.0.0.1:{port}/"
    srv.should_exit = True
    thread.join(timeout=30)


@pytest.fixture
def browser(tmp_path, monkeypatch):
    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager must never fetch a driver or a browser
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1200,900"):
        options.add_argument(arg)
    options.add_experimental_option(
        "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    )
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.downloads = downloads
    yield driver
    driver.quit()


def test_upload_upscale_compare_download(server, browser, tmp_path):
    rng = np.random.default_rng(0)
    src = tmp_path / "photo.png"
    Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(src)
    d, wait = browser, WebDriverWait(browser, 180)
    d.get(server)
    wait.until(lambda d: len(Select(d.find_element(By.ID, "model")).options) > 0)
    assert "(default)" in Select(d.find_element(By.ID, "model")).first_selected_option.text
    assert d.find_element(By.ID, "model-description").text  # the registry's one-line description

    d.find_element(By.ID, "file").send_keys(str(src))
    scale = d.find_element(By.ID, "scale")
    scale.clear()
    scale.send_keys("3")
    d.find_element(By.ID, "run").click()
    download = d.find_element(By.ID, "download")
    wait.until(lambda d: download.get_attribute("href") and "disabled" not in download.get_attribute("class"))
    wait.until(lambda d: d.find_element(By.ID, "stage").is_displayed())
    assert d.find_element(By.CSS_SELECTOR, "#jobs li").get_attribute("data-status") == "done"

    # The slider moves the divider: the result is clipped on the left at the slider's place on the image.
    after = d.find_element(By.ID, "after")
    clip_before = after.value_of_css_property("clip-path")
    slider = d.find_element(By.ID, "slider")
    ActionChains(d).move_to_element_with_offset(slider, -slider.size["width"] // 2 + 40, 0).click().perform()
    assert float(slider.get_attribute("value")) < 20
    assert after.value_of_css_property("clip-path") != clip_before
    # Zoom acts on both images at once: they share one transformed stage.
    d.find_element(By.ID, "zoom-in").click()
    assert d.find_element(By.ID, "zoom-level").text.endswith("%")
    assert d.find_element(By.ID, "before").find_element(By.XPATH, "..").get_attribute("id") == "stage"

    record = d.find_element(By.ID, "record").text
    assert '"command": "anyres upscale photo.png --model liif --scale 3 --seed 0"' in record

    download.click()
    end = time.monotonic() + 60
    got = d.downloads / "photo_anyres.png"
    while not got.exists() and time.monotonic() < end:
        time.sleep(0.1)
    out = tmp_path / "cli"
    result = CliRunner().invoke(main, ["upscale", str(src), "--scale", "3", "--out-dir", str(out), "--threads", "1"])
    assert result.exit_code == 0, result.output
    assert got.read_bytes() == (out / "photo.png").read_bytes()
    assert Image.open(got).size == (96, 72)
