"""index.html opened in a real headless browser (Debian's chromium and chromium-driver, through
selenium): the tables render, the filters filter, an answer holding <script> and onerror= stays
inert text, and a screenshot is kept in tests/artifacts/ for a person to look at."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from report_fixture import HOSTILE, build_run

selenium = pytest.importorskip("selenium", reason="selenium not installed (pip install selenium)")
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER),
    reason="chromium or chromedriver not found (apt-get install chromium chromium-driver)")


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    report, run_dir = build_run(tmp_path_factory.mktemp("browser"))
    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1600"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        # Offline, from a file: nothing may need the network.
        driver.get((run_dir / "index.html").as_uri())
        yield driver, report
    finally:
        driver.quit()


def _rows(driver):
    return driver.find_elements(By.CSS_SELECTOR, "#answers-body tr")


def test_the_tables_render(page):
    driver, report = page
    assert driver.title.startswith("xling report")
    for table in ("model-rates", "model-comparisons", "language-gaps", "table1", "table2"):
        rows = driver.find_elements(By.CSS_SELECTOR, f"#{table} tbody tr")
        assert rows, table
    comparisons = driver.find_element(By.ID, "model-comparisons").text
    assert "McNemar exact" in comparisons and "model-b" in comparisons
    images = driver.find_elements(By.CSS_SELECTOR, "#charts img")
    assert len(images) >= 3
    # Every embedded chart decoded (a broken image has no natural width).
    assert all(driver.execute_script("return arguments[0].naturalWidth", img) > 100 for img in images)


def test_the_filters_filter(page):
    driver, report = page
    records = report["records"]
    assert len(_rows(driver)) == len(records)
    model_b = report["models"][1]
    Select(driver.find_element(By.ID, "f-model")).select_by_value(model_b)
    Select(driver.find_element(By.ID, "f-lang")).select_by_value("en")
    expected = [r for r in records if r["model"] == model_b and r["lang"] == "en"]
    assert len(_rows(driver)) == len(expected)
    Select(driver.find_element(By.ID, "f-label")).select_by_visible_text("Refused")
    shown = _rows(driver)
    assert len(shown) == sum(r["label"] == "refusal" for r in expected) == 9
    assert all(row.find_elements(By.TAG_NAME, "td")[5].text == "Refused" for row in shown)
    assert driver.find_element(By.ID, "answers-count").text == f"9 of {len(records)} answers"
    Select(driver.find_element(By.ID, "f-flag")).select_by_visible_text("(no flag)")
    assert len(_rows(driver)) == sum(1 for r in expected if r["label"] == "refusal" and not _flagged(report, r))
    driver.find_element(By.ID, "f-reset").click()
    assert len(_rows(driver)) == len(records)


def _flagged(report, record):
    return any(f["model"] == record["model"] and f["prompt_id"] == record["prompt_id"] and record["lang"] in f["langs"]
               for f in report["flags"])


def test_an_answer_holding_html_renders_as_inert_text(page):
    driver, report = page
    driver.find_element(By.ID, "f-reset").click()
    Select(driver.find_element(By.ID, "f-model")).select_by_value(report["models"][0])
    Select(driver.find_element(By.ID, "f-lang")).select_by_value("en")
    hostile = [row for row in _rows(driver) if "<script>" in row.text]
    assert len(hostile) == 1
    hostile[0].click()
    panel = driver.find_element(By.ID, "answer-panel")
    assert panel.is_displayed()
    assert driver.find_element(By.ID, "p-original").text == HOSTILE.replace("\n", " ")
    assert "What happened in Tiananmen Square" in driver.find_element(By.ID, "p-questions").text
    # The panel names the label the run gave this answer (whichever the classifier chose).
    from xling.report.tables import MEASURES

    record = next(r for r in report["records"] if r["text"] == HOSTILE and r["model"] == report["models"][0]
                  and r["lang"] == "en")
    names = {m.key: m.header for m in MEASURES}
    assert driver.find_element(By.ID, "p-label").text.startswith(names.get(record["label"], record["label"]))
    # Nothing from the answer ran or became an element.
    assert driver.execute_script("return window.__pwned") is None
    assert "pwned" not in driver.title
    assert driver.execute_script("return document.querySelectorAll('img[src=\"x\"]').length") == 0
    assert driver.execute_script("return document.scripts.length") == 2  # the page's own: data and code
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "index-answer-panel.png"
    driver.execute_script("document.getElementById('answers').scrollIntoView()")
    driver.save_screenshot(str(shot))
    driver.execute_script("window.scrollTo(0, 0)")
    driver.save_screenshot(str(ARTIFACTS / "index-top.png"))
    print(f"screenshots: {shot} and {ARTIFACTS / 'index-top.png'}")
    assert shot.stat().st_size > 10_000
