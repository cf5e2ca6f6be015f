"""The GUI over a mesh larger than a page (tests/gui/conftest.py's control plane, plus a mesh
`big` of 120 dataplanes with metrics and two logging backends): the overview shows them, the
control plane page lists a NACKed subscription, tables page through the API by bookmarkable URLs,
counts come from the aggregate endpoint (the API's own request counts say which endpoints a page
used), every asset comes from the GUI itself, and `kuma-gui` (the split stack's GUI service)
serves the same pages from a remote API."""

from __future__ import annotations

import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement

from tests.gui.conftest import BIN, ControlPlane
from tests.gui.test_pages import _open, _text
from tests.ports import free_port
from tests.prom_text import sample_sum
from tests.waiting import wait_until

pytestmark = pytest.mark.envoy

MESH, COUNT, PAGE = "big", 120, 50
LIST = "/meshes/{mesh}/dataplanes+insights"
INSIGHTS, INSIGHT = "/mesh-insights", "/mesh-insights/{mesh}"


@pytest.fixture(scope="module")
def big(cp: ControlPlane) -> str:
    docs = [
        f"type: Mesh\nname: {MESH}\nmetrics:\n  prometheus: {{}}\nlogging:\n  backends:\n"
        "  - name: logstash\n    tcp:\n      address: 127.0.0.1:5000\n"
        "  - name: file-1\n    file:\n      path: /tmp/access.log\n"
    ]
    for i in range(COUNT):
        docs.append(
            f"type: Dataplane\nmesh: {MESH}\nname: dp-{i:03d}\nnetworking:\n  inbound:\n"
            f"  - interface: 10.0.0.{i % 250}:{8000 + i}:{9000 + i}\n    tags:\n"
            f"      service: svc-{i % 2}\n"
        )
    cp.kumactl("apply", "-f", "-", stdin="---\n".join(docs))
    return MESH


def _names(browser: WebDriver) -> list[str]:
    rows = browser.find_elements(By.CSS_SELECTOR, "tr[data-dataplane]")
    return [str(r.get_attribute("data-dataplane")) for r in rows]


def _shows(browser: WebDriver, names: list[str]) -> list[str]:
    return wait_until(lambda: _names(browser) == names and names, 10, f"rows {names[:1]}...")


def test_overview_shows_a_meshs_mtls_metrics_and_logging_backends(
    cp: ControlPlane, browser: WebDriver, big: str
):
    _open(browser, cp.gui + "/")
    mesh = f'[data-mesh="{big}"]'
    assert _text(browser, f'{mesh} [data-field="mtls"]') == "off"
    assert _text(browser, f'{mesh} [data-field="metrics"]') == "prometheus"
    assert _text(browser, f'{mesh} [data-field="logging"]') == "logstash, file-1"
    assert _text(browser, f'{mesh} [data-count="total"]') == str(COUNT)
    assert _text(browser, '[data-mesh="default"] [data-field="logging"]') == "none"


def test_control_plane_page_lists_recent_rejected_updates(
    cp: ControlPlane, browser: WebDriver, big: str
):
    """NACKs as the insights count them (a dataplane of `big` has no Envoy: its insight is
    written here as an xDS replica would have)."""
    insight = {
        "type": "DataplaneInsight",
        "mesh": big,
        "name": "dp-007",
        "subscriptions": [
            {
                "id": "nacked",
                "controlPlaneInstanceId": "elsewhere",
                "connectTime": "2024-05-01T12:00:00Z",
                "disconnectTime": "2024-05-01T12:05:00Z",
                "status": {
                    "lastUpdateTime": "2024-05-01T12:04:00Z",
                    "total": {"responsesSent": "9", "responsesRejected": "3"},
                    "cds": {"responsesRejected": "1"},
                    "lds": {"responsesRejected": "2"},
                },
            }
        ],
    }
    url = f"{cp.api}/meshes/{big}/dataplane-insights/dp-007"
    assert requests.put(url, json=insight, timeout=5).status_code == 201
    _open(browser, cp.gui + "/control-plane")

    def listed() -> WebElement | None:
        rows = browser.find_elements(By.CSS_SELECTOR, ".rejections tbody tr")
        return rows[0] if rows and rows[0].text.startswith(f"{big}/dp-007") else None

    row = wait_until(listed, 10, "the rejection listed first")
    cells = [c.text for c in row.find_elements(By.TAG_NAME, "td")]
    assert cells == [f"{big}/dp-007", "3", "cds: 1 lds: 2", "2024-05-01T12:04:00Z", "elsewhere"]
    link = row.find_element(By.TAG_NAME, "a").get_attribute("href")
    assert link == f"{cp.gui}/meshes/{big}/dataplanes/dp-007"


def test_no_certificate_is_shown_while_the_meshs_mtls_is_off(
    cp: ControlPlane, browser: WebDriver, big: str
):
    """An insight keeps the last certificate's block; with mTLS off Envoy holds none."""
    insight = {
        "type": "DataplaneInsight",
        "mesh": big,
        "name": "dp-011",
        "mTLS": {
            "certificateExpirationTime": "2099-01-01T00:00:00Z",
            "lastCertificateRegeneration": "2024-05-01T12:00:00Z",
            "certificateRegenerations": 4,
        },
    }
    url = f"{cp.api}/meshes/{big}/dataplane-insights/dp-011"
    assert requests.put(url, json=insight, timeout=5).status_code == 201
    assert requests.get(url, timeout=5).json()["mTLS"]["certificateRegenerations"] == 4
    _open(browser, f"{cp.gui}/meshes/{big}/dataplanes")
    cell = 'tr[data-dataplane="dp-011"] [data-field="certificate"]'
    assert _text(browser, cell) == "—"
    _open(browser, f"{cp.gui}/meshes/{big}/dataplanes/dp-011")
    assert _text(browser, '[data-field="certificate"]').startswith("none (mTLS off")


def test_dataplanes_page_through_the_api_by_bookmarkable_urls(
    cp: ControlPlane, browser: WebDriver, big: str
):
    url = f"{cp.gui}/meshes/{big}/dataplanes"
    _open(browser, url)
    assert _names(browser) == [f"dp-{i:03d}" for i in range(PAGE)]
    assert _text(browser, ".pager").startswith(f"1–{PAGE} of {COUNT}")
    assert _text(browser, '[data-count="offline"]') == str(COUNT)  # no Envoy: none online
    browser.find_element(By.CSS_SELECTOR, 'a[rel="next"]').click()
    wait_until(lambda: browser.current_url == f"{url}?offset={PAGE}", 10, "the next page's URL")
    _shows(browser, [f"dp-{i:03d}" for i in range(PAGE, 2 * PAGE)])
    # The last page, opened from its URL as a bookmark would be.
    _open(browser, f"{url}?offset={2 * PAGE}")
    assert _names(browser) == [f"dp-{i:03d}" for i in range(2 * PAGE, COUNT)]
    assert not browser.find_elements(By.CSS_SELECTOR, 'a[rel="next"]')
    previous = browser.find_element(By.CSS_SELECTOR, 'a[rel="prev"]').get_attribute("href")
    assert previous == f"{url}?offset={PAGE}"


def test_a_tag_filter_pages_too_and_stays_in_the_url(
    cp: ControlPlane, browser: WebDriver, big: str
):
    url = f"{cp.gui}/meshes/{big}/dataplanes"
    _open(browser, url)
    box = browser.find_element(By.NAME, "tag")
    box.send_keys("service=svc-1")
    box.submit()
    wait_until(lambda: browser.current_url == f"{url}?tag=service%3Dsvc-1", 10, "filtered URL")
    odd = [f"dp-{i:03d}" for i in range(1, COUNT, 2)]
    _shows(browser, odd[:PAGE])
    assert _text(browser, '[data-count="listed"]') == str(len(odd))
    browser.find_element(By.CSS_SELECTOR, 'a[rel="next"]').click()
    wait_until(
        lambda: browser.current_url == f"{url}?tag=service%3Dsvc-1&offset={PAGE}",
        10,
        "the filtered next page's URL",
    )
    _shows(browser, odd[PAGE:])


def _api_requests(cp: ControlPlane) -> dict[str, float]:
    """How many requests the API has answered on each of the endpoints a GUI page may use."""
    body = requests.get(cp.diagnostics + "/metrics", timeout=5).text
    name = "api_server_http_request_duration_seconds_count"
    return {h: sample_sum(body, name, handler=h) for h in (LIST, INSIGHTS, INSIGHT)}


def test_counts_come_from_the_aggregate_endpoint_not_from_listing_dataplanes(
    cp: ControlPlane, browser: WebDriver, big: str
):
    browser.get("about:blank")  # no open page polls meanwhile
    before = _api_requests(cp)
    overview = requests.get(cp.gui + "/", timeout=10)
    assert overview.ok
    assert f'data-count="total">{COUNT}<' in overview.text
    after = _api_requests(cp)
    # Every mesh's counts from one GET /mesh-insights; no dataplane is listed.
    assert (after[LIST] - before[LIST], after[INSIGHTS] - before[INSIGHTS]) == (0, 1)

    before = after
    page = requests.get(f"{cp.gui}/meshes/{big}/dataplanes", timeout=10)
    assert page.ok and page.text.count("<tr data-dataplane=") == PAGE
    after = _api_requests(cp)
    # The mesh's counts from its insight, and one page of the list: not the whole mesh.
    assert (after[LIST] - before[LIST], after[INSIGHT] - before[INSIGHT]) == (1, 1)


PAGES = (
    "/",
    "/control-plane",
    "/meshes/default/dataplanes",
    "/meshes/default/dataplanes/backend-1",
    "/meshes/default/policies/traffic-routes",
    "/meshes/default/policies/traffic-routes/backend-to-redis-v1",
)


def test_every_asset_a_page_loads_comes_from_the_gui_itself(cp: ControlPlane, browser: WebDriver):
    for path in PAGES:
        _open(browser, cp.gui + path)
        loaded = browser.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name);"
        )
        assert f"{cp.gui}/static/gui.css" in loaded and f"{cp.gui}/static/live.js" in loaded
        assert all(u.startswith(cp.gui + "/") for u in loaded), loaded
        linked = browser.execute_script(
            "return [...document.querySelectorAll('[src], link[href]')].map(e => e.src || e.href);"
        )
        assert linked and all(u.startswith(cp.gui + "/") for u in linked), linked
        # the stylesheet is the GUI's own and applied: the header is dark, not the default
        header = browser.find_element(By.TAG_NAME, "header")
        assert header.value_of_css_property("background-color") != "rgba(0, 0, 0, 0)"
        policy = requests.get(cp.gui + path, timeout=5).headers["Content-Security-Policy"]
        assert policy.startswith("default-src 'self'")  # the browser refuses any other origin


def test_kuma_gui_serves_the_pages_from_a_remote_api(cp: ControlPlane, browser: WebDriver):
    """The split stack's GUI service (gunicorn), reading another process's API over HTTP."""
    port = free_port()
    env = {
        **cp.env,
        "KUMA_GUI_SERVER_PORT": str(port),
        "KUMA_GUI_SERVER_API_SERVER_URL": cp.api,
        "KUMA_API_SERVER_ADDRESS": "127.0.0.1",
    }
    cp.start("kuma-gui", [str(BIN / "kuma-gui"), "--workers", "1"], env)
    gui = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: requests.get(gui + "/config", timeout=1).ok, 30, "kuma-gui")
        _open(browser, gui + "/")
        counts = requests.get(cp.api + "/mesh-insights/default", timeout=5).json()["dataplanes"]
        shown = _text(browser, '[data-mesh="default"] [data-count="total"]')
        assert shown == str(counts["total"]) == "2"
        put = requests.put(gui + "/api/meshes/default", json={"type": "Mesh"}, timeout=5)
        assert put.status_code == 405
    finally:
        cp.stop("kuma-gui")
        del cp.procs["kuma-gui"]
