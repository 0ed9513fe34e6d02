"""The web console in a real browser: headless Chromium (Debian's ``chromium`` + ``chromium-driver``,
driven by Selenium) against the real server process with the real default model and real clips.

One walk through the console as a user would: sign in; enroll N, G, W, Y from gallery_4p.mp4 in one
flow (preview, name, enroll); look at the gallery (walks with contact sheets, rename, delete);
identify probe2_4p_back.mp4 and see four answered cards and a playable annotated video; watch a live
stream's event arrive; find the identification again under Jobs; and the same at phone width. The
browser resolves no host but 127.0.0.1, so every page is also shown to work offline (its assets all
come from the server), /docs and /redoc included. Screenshots go to ``var/screenshots/console``.
"""

import base64
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench.stream_source import ClipStreamServer, encode_clip
from tests.conftest import REPO, left_to_right, missing
from tests.service.conftest import ServerProcess, create_key, fresh_database, running_server

SCREENSHOTS = REPO / "var" / "screenshots" / "console"
PHONE_WIDTH = 390
WAIT_S = 900  # for the pipeline on a busy 2-core machine: a hang guard, not a speed budget


@pytest.fixture(scope="module")
def server(tmp_path_factory, shared_cache, weights_env) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("console")
    with fresh_database("sqlite", folder) as url, running_server(url, folder, shared_cache, weights_env) as process:
        yield process


@pytest.fixture(scope="module")
def browser():
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        missing("browser", "chromium or chromedriver is not installed", "apt-get install chromium chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1200,900",
        "--autoplay-policy=no-user-gesture-required",
        # offline but for the server: any other host fails to resolve, so a CDN asset would fail to load
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    session = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        yield session
    finally:
        session.quit()


def _wait(browser, condition, what: str, timeout_s: float = 60):
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(browser, timeout_s, poll_frequency=0.25).until(lambda b: condition(b))
    except TimeoutException:
        status = browser.find_element("id", "status").text if browser.find_elements("id", "status") else ""
        browser.save_screenshot(str(SCREENSHOTS / "failure.png"))
        raise AssertionError(f"{what} did not happen within {timeout_s} s; status line: {status!r}") from None


def _shot(browser, name: str) -> None:
    """The whole page, not only the window: the identify cards below the video are in the picture."""
    size = browser.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 4000), "scale": 1}
    shot = browser.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    (SCREENSHOTS / f"{name}.png").write_bytes(base64.b64decode(shot["data"]))


# ReDoc's "API docs by Redocly" badge always asks its CDN for its logo and hides it when that fails;
# nothing else on any page may need another host
REDOCLY_BADGE = "https://cdn.redoc.ly/redoc/logo-mini.svg"


def _no_failed_requests(browser) -> None:
    """Nothing the page loaded failed (a missing asset, a request to another host)."""
    log = browser.get_log("browser")
    failed = [e["message"] for e in log if e["level"] == "SEVERE" and not e["message"].startswith(REDOCLY_BADGE)]
    assert not failed, failed


def _css(browser, selector: str):
    return browser.find_elements("css selector", selector)


def _loaded_images(browser, selector: str) -> int:
    script = "return [...document.querySelectorAll(arguments[0])].filter(i => i.complete && i.naturalWidth > 0).length"
    return browser.execute_script(script, selector)


@pytest.mark.slow
def test_the_console_from_sign_in_to_a_live_event(server: ServerProcess, browser, videos_dir: Path):
    admin = create_key(server.env, "admin")
    api = server.client(admin)
    base = server.url

    # sign in: a wrong key is refused, the right one opens the gallery
    browser.get(f"{base}/")
    _wait(browser, lambda b: _css(b, "#api-key"), "the sign-in form")
    _shot(browser, "1-sign-in")
    browser.find_element("id", "api-key").send_keys("gid_wrong_key")
    browser.find_element("css selector", "main form button[type=submit]").click()
    _wait(browser, lambda b: "refused" in b.find_element("id", "status").text, "the refusal of a wrong key")
    browser.get_log("browser")  # the refused key's 401, expected: the log is checked for failures from here on
    field = browser.find_element("id", "api-key")
    field.clear()
    field.send_keys(admin)
    browser.find_element("css selector", "main form button[type=submit]").click()
    _wait(browser, lambda b: _css(b, "#subjects"), "the gallery after signing in")
    assert browser.execute_script("return sessionStorage.getItem('gaitid.apiKey')") == admin
    assert browser.execute_script("return localStorage.length") == 0, "the key is kept in the session only"

    # enroll the four people of the gallery clip in one flow: preview once, name each, enroll together
    browser.get(f"{base}/#/enroll")
    _wait(browser, lambda b: _css(b, "#enroll-file"), "the enroll page")
    browser.find_element("id", "enroll-file").send_keys(str(videos_dir / "gallery_4p.mp4"))
    browser.find_element("css selector", "main form button[type=submit]").click()
    _wait(browser, lambda b: len(_css(b, "input[id$='-name']")) == 4, "four people to name", WAIT_S)
    _wait(browser, lambda b: _loaded_images(b, "article.card img.person") == 4, "the four thumbnails")
    preview = api.get("/v1/jobs", params={"limit": 1}).json()["items"][0]
    tracks = sorted(
        (t for t in api.get(f"/v1/jobs/{preview['id']}").json()["result"]["tracks"] if t["usable"]),
        key=lambda t: t["box"][0] + t["box"][2],
    )
    for person, track in zip(left_to_right(videos_dir, "gallery_4p.mp4"), tracks, strict=True):
        browser.find_element("id", f"t{track['track_id']}-name").send_keys(person)
    _shot(browser, "2-enroll-group")
    browser.find_element("xpath", "//button[contains(., 'Enroll the selected')]").click()
    _wait(browser, lambda b: "Enrolled 4 people" in b.find_element("id", "enroll-outcome").text, "the enrollment", 300)
    names = sorted(s["name"] for s in api.get("/v1/subjects").json()["items"])
    assert names == ["G", "N", "W", "Y"], names

    # the gallery: each subject's walk with its contact sheet; rename one; delete another subject
    throwaway = api.post("/v1/subjects", json={"name": "To delete"}).json()["id"]
    browser.get(f"{base}/#/gallery")
    _wait(browser, lambda b: len(_css(b, "#subjects tr[data-subject]")) == 5, "five subjects listed")
    row = browser.find_element("xpath", "//tr[td[1][normalize-space()='Y']]")
    row.find_element("xpath", ".//button[normalize-space()='Walks']").click()
    _wait(browser, lambda b: _loaded_images(b, "#subjects img.sheet") == 1, "the walk's contact sheet")
    _shot(browser, "3-gallery")
    row = browser.find_element("xpath", "//tr[td[1][normalize-space()='Y']]")
    row.find_element("xpath", ".//button[normalize-space()='Rename']").click()
    rename = browser.find_element("css selector", "#subjects form input")
    rename.clear()
    rename.send_keys("Yan")
    browser.find_element("css selector", "#subjects form button[type=submit]").click()
    _wait(browser, lambda b: b.find_elements("xpath", "//tr[td[1][normalize-space()='Yan']]"), "the new name listed")
    doomed = browser.find_element("css selector", f"tr[data-subject='{throwaway}']")
    doomed.find_element("xpath", ".//button[normalize-space()='Delete']").click()
    browser.switch_to.alert.accept()
    _wait(browser, lambda b: not _css(b, f"tr[data-subject='{throwaway}']"), "the deleted subject gone")
    assert api.get(f"/v1/subjects/{throwaway}").status_code == 404

    # identify the back-view probe: four answered people, names or unknown, and the annotated video plays
    browser.get(f"{base}/#/identify")
    _wait(browser, lambda b: _css(b, "#identify-file"), "the identify page")
    browser.find_element("id", "identify-file").send_keys(str(videos_dir / "probe2_4p_back.mp4"))
    browser.find_element("css selector", "main form button[type=submit]").click()
    _wait(browser, lambda b: _css(b, "#identify-result"), "the identification result", WAIT_S)
    answered = [
        c for c in _css(browser, "#identify-result article.card") if c.get_attribute("data-decision") != "insufficient"
    ]
    assert len(answered) == 4
    titles = {c.find_element("css selector", "h3").text for c in answered}
    assert titles <= {"N", "G", "W", "Yan", "Unknown person"}, titles
    _wait(browser, lambda b: b.execute_script("return document.querySelector('video').readyState") >= 2, "the video")
    browser.set_script_timeout(60)
    played = browser.execute_async_script(
        "const done = arguments[arguments.length - 1], v = document.querySelector('video'); v.muted = true;"
        "v.play().then(() => setTimeout(() => { v.pause(); done([v.currentTime, v.videoWidth, v.duration]); }, 1500),"
        " (error) => done([0, 0, String(error)]));"
    )
    assert played[0] > 0 and played[1] > 0 and played[2] > 5, played
    _wait(browser, lambda b: _loaded_images(b, "#identify-result img.person") >= 4, "the thumbnails")
    _shot(browser, "4-identify")

    # a live stream: its event appears on the streams page without a reload
    frames, _ = encode_clip(videos_dir / "walk_indoor_a_probe.mp4")
    camera = ClipStreamServer(frames, 6.0).start()
    stream_id = None
    try:
        browser.get(f"{base}/#/streams")
        _wait(browser, lambda b: b.find_element("id", "events-state").text == "live", "the live event stream")
        stream = api.post("/v1/streams", json={"url": camera.url, "name": "lobby", "max_fps": 15})
        assert stream.status_code == 201, stream.text
        stream_id = stream.json()["id"]
        _wait(browser, lambda b: _css(b, "#events li.event"), "a live event on the page", WAIT_S)
        browser.refresh()  # the table shows the stream too
        _wait(browser, lambda b: _css(b, f"tr[data-stream='{stream_id}']"), "the stream listed")
        _wait(browser, lambda b: _loaded_images(b, "#events img") >= 1, "the event's snapshot")
        _shot(browser, "5-streams")
    finally:
        if stream_id:
            api.patch(f"/v1/streams/{stream_id}", json={"enabled": False})
        camera.stop()

    # jobs: the identification again, from the list
    browser.get(f"{base}/#/jobs")
    _wait(browser, lambda b: _css(b, "#jobs tr[data-job]"), "the jobs list")
    identify_row = browser.find_element("xpath", "//tr[td[1]='identify']")
    identify_row.find_element("xpath", ".//button").click()
    _wait(browser, lambda b: _css(b, "#job-detail #identify-result"), "the identification under Jobs")
    _shot(browser, "6-jobs")

    # phone width: nothing wider than the screen
    browser.set_window_size(PHONE_WIDTH, 900)
    browser.get(f"{base}/#/identify")
    _wait(browser, lambda b: _css(b, "#identify-file"), "the identify page at phone width")
    assert browser.execute_script("return document.documentElement.scrollWidth") <= PHONE_WIDTH
    browser.get(f"{base}/#/gallery")
    _wait(browser, lambda b: _css(b, "#subjects"), "the gallery at phone width")
    assert browser.execute_script("return document.documentElement.scrollWidth") <= PHONE_WIDTH
    _shot(browser, "7-gallery-phone")
    browser.set_window_size(1200, 900)
    _no_failed_requests(browser)


@pytest.mark.slow
def test_every_page_is_accessible_markup(server: ServerProcess, browser):
    """Landmarks, one h1, a label for every control, alt text for every picture, on every page."""
    admin = create_key(server.env, "admin")
    browser.get(f"{server.url}/#/signin")
    browser.execute_script("sessionStorage.setItem('gaitid.apiKey', arguments[0])", admin)
    for page in ("gallery", "identify", "enroll", "streams", "jobs", "signin"):
        browser.get(f"{server.url}/#/{page}")
        _wait(browser, lambda b: b.execute_script("return document.querySelectorAll('main h1').length") == 1, page)
        problems = browser.execute_script("""
            const out = [];
            if (!document.querySelector('main')) out.push('no main landmark');
            for (const c of document.querySelectorAll('main input, main select, main textarea')) {
              const labelled = c.labels && c.labels.length || c.getAttribute('aria-label');
              if (!labelled) out.push('control without a label: ' + (c.id || c.name || c.type));
            }
            for (const i of document.querySelectorAll('img')) if (!i.getAttribute('alt')) out.push('img without alt');
            for (const b of document.querySelectorAll('button')) if (!b.textContent.trim()) out.push('empty button');
            return out;""")
        assert not problems, (page, problems)
    browser.execute_script("sessionStorage.clear()")


@pytest.mark.slow
def test_names_from_the_server_are_shown_as_text_never_as_markup(server: ServerProcess, browser):
    admin = create_key(server.env, "admin")
    name = '<img src="/x" onerror="window.pwned = 1"><b>bold</b>'
    subject = server.client(admin).post("/v1/subjects", json={"name": name}).json()["id"]
    browser.get(f"{server.url}/#/signin")
    browser.execute_script("sessionStorage.setItem('gaitid.apiKey', arguments[0])", admin)
    browser.get(f"{server.url}/#/gallery")
    _wait(browser, lambda b: _css(b, f"tr[data-subject='{subject}']"), "the subject listed")
    cell = browser.find_element("css selector", f"tr[data-subject='{subject}'] td")
    assert cell.text == name, cell.text
    assert not cell.find_elements("css selector", "img, b"), "the name became markup"
    assert browser.execute_script("return window.pwned") is None
    browser.execute_script("sessionStorage.clear()")


@pytest.mark.slow
def test_the_api_documentation_renders_offline(server: ServerProcess, browser):
    browser.get(f"{server.url}/docs")
    _wait(
        browser,
        lambda b: "GaitID" in b.execute_script("return document.querySelector('.swagger-ui .info')?.innerText || ''"),
        "Swagger UI",
    )
    _shot(browser, "8-docs")
    browser.get(f"{server.url}/redoc")
    _wait(
        browser, lambda b: "GaitID" in b.execute_script("return document.querySelector('h1')?.innerText || ''"), "ReDoc"
    )
    _no_failed_requests(browser)
    assert httpx.get(f"{server.url}/openapi.json").status_code == 200
