"""The kiosk page in a real headless Chromium: upload two LFW photos, read the decision, switch heatmaps, ask."""
from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edgefx.runtime.config import Settings
from edgefx.service.app import create_app
from live_server import lfw_pairs, real_engine, require_lfw, serving

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Without the background-networking flags Chromium keeps dialling out, which this closed network refuses.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
)


def _require_browser() -> None:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not shutil.which(p)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip)")
    if missing:
        message = f"browser test needs {', '.join(missing)}: apt-get install chromium chromium-driver; pip install selenium"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI installs them (make browser): a missing browser there is a failure
        pytest.skip(message)


@pytest.fixture(scope="module")
def kiosk_url() -> Iterator[str]:
    require_lfw()
    engine = real_engine(threads=2)
    settings = Settings.from_env(threads=2, workers=1, queue_size=4)
    with serving(create_app(engine, settings, token="")) as url:
        yield url


@pytest.fixture()
def browser(tmp_path: Path) -> Iterator[Any]:
    _require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    options.add_argument("--window-size=1280,800")
    # An explicit driver path: Selenium never tries to download a driver or a browser.
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _viewport(driver: Any, width: int, height: int) -> None:
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}
    )


def _number(text: str) -> float:
    return float(text.replace("%", "").strip())


def test_kiosk_verify_explain_and_ask(kiosk_url: str, browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    matched, _ = lfw_pairs(limit=1)
    photo_a, photo_b = matched[0]
    driver = browser
    _viewport(driver, 1280, 800)
    driver.get(kiosk_url + "/")
    wait = WebDriverWait(driver, 30)
    wait.until(ec.text_to_be_present_in_element((By.ID, "status"), "ready"))

    driver.find_element(By.ID, "file-a").send_keys(str(photo_a))
    driver.find_element(By.ID, "file-b").send_keys(str(photo_b))
    assert driver.find_element(By.ID, "explain").is_selected()
    wait.until(ec.element_to_be_clickable((By.ID, "verify"))).click()

    slow = WebDriverWait(driver, 180)  # explaining runs every saliency method on a 2-core CPU
    slow.until(lambda d: d.find_element(By.ID, "decision").text in ("MATCH", "NO MATCH"))
    assert driver.find_element(By.ID, "decision").text == "MATCH"  # a matched LFW pair
    score = _number(driver.find_element(By.ID, "score").text)
    threshold = _number(driver.find_element(By.ID, "threshold").text)
    confidence = _number(driver.find_element(By.ID, "confidence").text)
    assert score >= threshold and 0 <= confidence <= 100

    def heatmap_loaded(d: Any, image: str) -> str | bool:
        el = d.find_element(By.ID, f"heatmap-{image}")
        src = el.get_attribute("src") or ""
        return src if src.startswith("blob:") and d.execute_script("return arguments[0].naturalWidth", el) > 0 else False

    first = slow.until(lambda d: heatmap_loaded(d, "a"))
    slow.until(lambda d: heatmap_loaded(d, "b"))
    buttons = driver.find_elements(By.CSS_SELECTOR, "#methods button")
    assert [b.text for b in buttons] == ["S-", "G-", "S+", "G+", "Avg"]
    buttons[0].click()
    slow.until(lambda d: (heatmap_loaded(d, "a") or first) != first)
    assert "active" in buttons[0].get_attribute("class")

    rows = driver.find_elements(By.CSS_SELECTOR, "#table tbody tr")
    assert len(rows) == 10
    assert len(driver.find_elements(By.CSS_SELECTOR, "#table td.top")) >= 5  # a rank-1 region per method

    question = driver.find_element(By.ID, "question")
    question.send_keys("What is the similarity score?")
    driver.find_element(By.ID, "ask").click()
    answer = slow.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#chat .msg.a"))[0]
    shots = tmp_path / "screenshots"
    shots.mkdir()
    driver.save_screenshot(str(shots / "kiosk-1280x800.png"))
    print(f"screenshots in {shots}")
    assert "err" not in answer.get_attribute("class"), answer.text
    assert answer.text.strip()
    evidence = answer.find_elements(By.CSS_SELECTOR, ".evidence")
    assert evidence and evidence[0].text.strip(), f"an answer without its evidence: {answer.text!r}"
    shown_score = driver.find_element(By.ID, "score").text
    assert shown_score in answer.text, f"the answer {answer.text!r} does not give the score {shown_score} shown above"

    chips = driver.find_elements(By.CSS_SELECTOR, "#suggestions button")
    assert chips, "no suggested questions after an answer"
    suggested = chips[0].text
    chips[0].click()  # a suggestion is asked as it is (the chips are then replaced)
    slow.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#chat .msg.a")) == 2)
    assert driver.find_elements(By.CSS_SELECTOR, "#chat .msg.q")[1].text == suggested
    driver.save_screenshot(str(shots / "kiosk-1280x800.png"))

    _viewport(driver, 800, 480)
    overflow = driver.execute_script("return document.documentElement.scrollWidth")
    assert overflow <= 800, f"the page is {overflow} px wide at 800x480"
    driver.save_screenshot(str(shots / "kiosk-800x480.png"))
    assert (shots / "kiosk-1280x800.png").stat().st_size > 10_000
