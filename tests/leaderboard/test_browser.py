"""The built site in real headless Chromium, from file://: rows, sorting, images, console."""

from __future__ import annotations

import shutil

import pytest

from leaderboard.build import build_site
from competition.config import CompetitionConfig

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER),
                                reason="needs Debian's chromium and chromium-driver (.ci/run installs them)")


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,1000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def column_texts(driver, index: int) -> list[str]:
    from selenium.webdriver.common.by import By

    return [row.find_elements(By.TAG_NAME, "td")[index].text
            for row in driver.find_elements(By.CSS_SELECTOR, "#ranking tbody tr")]


def test_site_in_a_real_browser(results, tmp_path, browser):
    from selenium.webdriver.common.by import By

    index = build_site(results, tmp_path / "site", CompetitionConfig())
    browser.get(index.resolve().as_uri())
    assert browser.title == "MNIST GAN competition"
    assert column_texts(browser, 1)[:4] == ["beta", "vanilla baseline", "alpha", "gamma"]

    headers = browser.find_elements(By.CSS_SELECTOR, "#ranking th")
    recall = next(h for h in headers if h.text.startswith("mnist.recall"))
    recall.click()
    recalls = [float(t) for t in column_texts(browser, 5) if t]
    assert recalls == sorted(recalls)
    recall.click()
    recalls = [float(t) for t in column_texts(browser, 5) if t]
    assert recalls == sorted(recalls, reverse=True)
    teams = next(h for h in headers if h.text == "team")
    teams.click()
    assert column_texts(browser, 1)[0] == "alpha"

    browser.find_element(By.LINK_TEXT, "alpha").click()
    images = browser.find_elements(By.TAG_NAME, "img")
    assert len(images) == 3
    assert all(browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", img)
               for img in images)
    severe = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert severe == []
    screenshot = tmp_path / "team-page.png"
    assert browser.save_screenshot(str(screenshot)) and screenshot.stat().st_size > 0
    browser.back()
    browser.save_screenshot(str(tmp_path / "index.png"))
