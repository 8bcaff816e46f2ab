"""The built site in real headless Chromium, from file://: no sideways scroll at 1,366 px, sorting,
images, no console errors, a tie rendered as a tie, and the final standings beside the daily table."""

from __future__ import annotations

import shutil
from datetime import datetime, timezone

import pytest

from competition.config import CompetitionConfig
from leaderboard.build import build_site
from tests.leaderboard.conftest import write_result

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER),
                                reason="needs Debian's chromium and chromium-driver (.ci/run installs them)")


def chromium(profile, width: int = 1366, height: int = 900):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", f"--user-data-dir={profile}", f"--window-size={width},{height}",
                 "--hide-scrollbars"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(DRIVER), options=options)


@pytest.fixture
def browser(tmp_path):
    driver = chromium(tmp_path / "profile")
    yield driver
    driver.quit()


@pytest.fixture
def crowded(tmp_path):
    """Thirty teams, long names, a tie, flags, notes, failures, and a final round."""
    root = tmp_path / "results"
    for i in range(26):
        name = f"team-{i:02d}-" + "x" * (40 if i % 7 == 0 else 3)
        write_result(root, name, f"2026-11-{1 + i % 20:02d}T10:00:00", fid=2.0 + i * 0.5, precision=0.5 + i / 100,
                     recall=0.6 - i / 100, noise=0.01, flags=("memorisation",) if i == 5 else (),
                     requirements=[{"package": "tqdm", "problem": "missing", "severity": "warning",
                                    "detail": "tqdm is not installed"}] if i % 4 == 0 else ())
    write_result(root, "twin-a", "2026-11-02T10:00:00", fid=1.50, noise=0.05)
    write_result(root, "twin-b", "2026-11-03T10:00:00", fid=1.52, noise=0.05)
    write_result(root, "cheater", "2026-11-02T10:00:00", fid=0.9, flags=("rule_violation",))
    write_result(root, "crasher", "2026-11-02T10:00:00", verdict="CRASH")
    write_result(root, "vanilla", "2026-10-30T09:00:00", fid=2.5, baseline=True)
    write_result(root, "twin-a", "2026-12-20T10:00:00", fid=1.6, final_round="20261220T000000Z")
    write_result(root, "twin-b", "2026-12-20T10:05:00", fid=1.4, final_round="20261220T000000Z")
    return root


def texts(driver, selector: str, column: int) -> list[str]:
    from selenium.webdriver.common.by import By

    return [row.find_elements(By.TAG_NAME, "td")[column].text
            for row in driver.find_elements(By.CSS_SELECTOR, selector)]


def test_the_site_in_a_real_browser(crowded, tmp_path, browser):
    from selenium.webdriver.common.by import By

    config = CompetitionConfig(deadline=datetime(2026, 12, 15, tzinfo=timezone.utc))
    index = build_site(crowded, tmp_path / "site", config)
    browser.get(index.resolve().as_uri())
    assert browser.title == "MNIST GAN competition"
    width = browser.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"sideways scroll at 1366 px: {width}"

    ranks, teams = texts(browser, "#ranking tbody tr", 0), texts(browser, "#ranking tbody tr", 1)
    ranked = [(rank, team) for rank, team in zip(ranks, teams) if rank]
    assert ranked[0][0].startswith("1–2") and ranked[1][0].startswith("1–2") and "tie" in ranked[0][0]
    assert ranked[0][1].startswith("twin-a") and ranked[1][1].startswith("twin-b")  # the twins tie
    assert ranked[2][0] == "3"
    assert teams[0].startswith("cheater") and "rule violation" in teams[0] and ranks[0] == ""
    assert "crasher" not in " ".join(teams)
    assert "CRASH" in browser.find_element(By.ID, "apart-table").text

    headers = browser.find_elements(By.CSS_SELECTOR, "#ranking th")
    recall = next(h for h in headers if h.text.startswith("MNIST recall"))
    recall.click()
    values = [float(t) for t in texts(browser, "#ranking tbody tr", headers.index(recall)) if t]
    assert values == sorted(values)
    recall.click()
    values = [float(t) for t in texts(browser, "#ranking tbody tr", headers.index(recall)) if t]
    assert values == sorted(values, reverse=True)

    images = browser.find_elements(By.CSS_SELECTOR, "img.thumb")
    assert len(images) >= 27 and all(browser.execute_script(
        "return arguments[0].complete && arguments[0].naturalWidth > 0", img) for img in images)
    assert recall.get_attribute("title").startswith("share of reference images")  # the definition as tooltip
    notes = browser.find_elements(By.CSS_SELECTOR, "details.quiet")
    assert notes and not notes[0].get_attribute("open")  # requirements notes stay closed

    browser.find_element(By.LINK_TEXT, "Final standings").click()
    assert "final standings" in browser.title
    assert texts(browser, "#ranking tbody tr", 1)[0].startswith("twin-b")  # the final round's order
    browser.back()
    browser.find_element(By.PARTIAL_LINK_TEXT, "twin-a").click()
    pictures = browser.find_elements(By.TAG_NAME, "img")
    assert pictures and all(browser.execute_script("return arguments[0].naturalWidth > 0", p) for p in pictures)
    width = browser.execute_script("return [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1]
    severe = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert severe == []


def test_plots_read_well_with_one_point(tmp_path, browser):
    root = tmp_path / "results"
    write_result(root, "solo", "2026-11-01T10:00:00", fid=1.22)
    index = build_site(root, tmp_path / "site", CompetitionConfig())
    html = index.read_text()
    assert "7.82e" not in html and "1.22 … 1.22" not in html
    browser.get(index.resolve().as_uri())
    svg_texts = [t.text for t in browser.find_elements("css selector", ".plots svg text")]
    ticks = [t for t in svg_texts if t.replace(".", "", 1).isdigit()]
    assert len(set(ticks)) >= 3  # round, distinct tick values around the one point
