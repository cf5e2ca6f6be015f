"""What a user sees in the GUI of a real control plane (tests/gui/conftest.py): counts,
statuses, certificates, a policy's YAML as kumactl prints it, the control plane's replicas, and
a dataplane turning Offline while the page stays open. The tests run in this order (the last
one stops a dataplane)."""

from __future__ import annotations

import time
from datetime import datetime
from urllib.parse import quote

import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.gui.conftest import SCREENSHOTS, ControlPlane
from tests.waiting import wait_until

pytestmark = pytest.mark.envoy


def _open(browser: WebDriver, url: str) -> None:
    browser.get(url)
    wait_until(lambda: browser.find_elements(By.ID, "live"), 10, f"{url} loaded")


def _text(browser: WebDriver, css: str) -> str:
    return str(browser.find_element(By.CSS_SELECTOR, css).text)


def _shot(browser: WebDriver, name: str) -> None:
    browser.save_screenshot(str(SCREENSHOTS / f"{name}.png"))


def test_overview_shows_each_mesh_with_its_counts(cp: ControlPlane, browser: WebDriver):
    _open(browser, cp.gui + "/")
    mesh = '[data-mesh="default"]'
    assert _text(browser, f'{mesh} [data-field="mtls"]') == "on (builtin CA)"
    assert _text(browser, f'{mesh} [data-count="online"]') == "2"
    assert _text(browser, f'{mesh} [data-count="offline"]') == "0"
    assert _text(browser, f'{mesh} [data-policy-count="TrafficPermission"]') == "1"
    assert _text(browser, f'{mesh} [data-policy-count="TrafficRoute"]') == "1"
    assert _text(browser, f'{mesh} [data-policy-count="HealthCheck"]') == "0"
    _shot(browser, "overview")


def test_dataplanes_table_shows_status_and_certificate_expiry(cp: ControlPlane, browser: WebDriver):
    _open(browser, cp.gui + "/meshes/default/dataplanes")
    for name in ("redis-1", "backend-1"):
        row = f'tr[data-dataplane="{name}"]'
        assert _text(browser, f'{row} [data-field="status"]') == "Online"
        assert int(_text(browser, f'{row} [data-field="updates"]')) > 0  # xDS pushes
        assert _text(browser, f'{row} [data-field="errors"]') == "0"  # no NACK
        # mTLS is on: the xDS service recorded the certificate (24 h by default).
        expiry = wait_until(
            lambda row=row: (t := _text(browser, f'{row} [data-field="certificate"]')) != "—" and t,
            10,
            "the certificate's expiry",
        )
        assert expiry.startswith("in 23h") or expiry.startswith("in 24h"), expiry
    _shot(browser, "dataplanes")


def test_tag_filter_is_a_bookmarkable_url(cp: ControlPlane, browser: WebDriver):
    _open(browser, cp.gui + "/meshes/default/dataplanes?tag=" + quote("service=redis"))
    rows = browser.find_elements(By.CSS_SELECTOR, "tr[data-dataplane]")
    assert [r.get_attribute("data-dataplane") for r in rows] == ["redis-1"]
    assert _text(browser, '[data-count="listed"]') == "1"


def _rows(browser: WebDriver, heading: str) -> list[list[str]]:
    """The cells of each row of the table under the `<h2>` saying `heading`."""
    rows = browser.find_elements(
        By.XPATH, f"//h2[normalize-space()='{heading}']/following-sibling::table[1]/tbody/tr"
    )
    return [[str(c.text) for c in r.find_elements(By.TAG_NAME, "td")] for r in rows]


def test_dataplane_page_shows_interfaces_and_the_policies_that_select_it(
    cp: ControlPlane, browser: WebDriver
):
    _open(browser, cp.gui + "/meshes/default/dataplanes/backend-1")
    outbound = _text(browser, '[data-attachment="outbound"]')
    assert "TrafficRoute backend-to-redis-v1" in outbound
    assert "expires" in _text(browser, '[data-field="certificate"]')
    assert "Online" in _text(browser, "h1")
    spec = requests.get(f"{cp.api}/meshes/default/dataplanes/backend-1", timeout=5).json()
    networking = spec["networking"]
    tags = "service=backend version=v1"
    assert _rows(browser, "Inbound") == [[networking["inbound"][0]["interface"], tags]]
    assert _rows(browser, "Outbound") == [[networking["outbound"][0]["interface"], "redis"]]
    [subscription] = _rows(browser, "Subscriptions")  # one stream, open: no disconnect time
    assert subscription[3] == "—" and int(subscription[4]) > 0 and subscription[6] == "0"
    _shot(browser, "dataplane")
    _open(browser, cp.gui + "/meshes/default/dataplanes/redis-1")
    assert "TrafficPermission backend-to-redis" in _text(browser, '[data-attachment="inbound"]')


def _envoys_certificate_expiry(cp: ControlPlane, name: str, service: str) -> str:
    """The expiry of the workload certificate `name`'s Envoy presents (its admin `/certs`), as
    the GUI writes a moment."""
    admin = f"http://127.0.0.1:{cp.admin_ports[name]}/certs"
    for ctx in requests.get(admin, timeout=5).json()["certificates"]:
        for cert in ctx.get("cert_chain", []):
            uris = [s.get("uri") for s in cert.get("subject_alt_names", [])]
            if f"spiffe://default/{service}" in uris:
                at = datetime.fromisoformat(cert["expiration_time"])
                return at.strftime("%Y-%m-%d %H:%M:%S UTC")
    raise AssertionError(f"{name}'s Envoy presents no certificate of {service}")


def test_certificate_expiry_shown_is_that_of_the_certificate_envoy_holds(
    cp: ControlPlane, browser: WebDriver
):
    expires = _envoys_certificate_expiry(cp, "backend-1", "backend")
    _open(browser, cp.gui + "/meshes/default/dataplanes/backend-1")
    shown = _text(browser, '[data-field="certificate"]')
    assert shown.startswith(f"expires {expires} (in 2"), shown
    assert "regenerated 1 times, last 20" in shown
    _open(browser, cp.gui + "/meshes/default/dataplanes")
    cell = browser.find_element(
        By.CSS_SELECTOR, 'tr[data-dataplane="backend-1"] [data-field="certificate"] span'
    )
    assert cell.get_attribute("title") == expires


def test_policy_page_shows_the_yaml_kumactl_prints(cp: ControlPlane, browser: WebDriver):
    _open(browser, cp.gui + "/meshes/default/policies/traffic-routes")
    browser.find_element(By.LINK_TEXT, "backend-to-redis-v1").click()
    wait_until(lambda: browser.find_elements(By.ID, "yaml"), 10, "the policy page")
    expected = cp.kumactl("get", "traffic-route", "backend-to-redis-v1", "-o", "yaml")
    shown = browser.find_element(By.ID, "yaml").get_attribute("textContent")
    assert shown == expected
    # The command the page names prints just that.
    command = _text(browser, "#command").split()
    assert command[0] == "kumactl"
    assert cp.kumactl(*command[1:]) == shown
    assert (
        browser.current_url
        == cp.gui + "/meshes/default/policies/traffic-routes/backend-to-redis-v1"
    )
    _shot(browser, "policy")


def test_control_plane_page_shows_version_and_xds_streams(cp: ControlPlane, browser: WebDriver):
    _open(browser, cp.gui + "/control-plane")
    version = requests.get(cp.api, timeout=5).json()["version"]
    assert _text(browser, '[data-field="version"]') == version
    streams = browser.find_elements(By.CSS_SELECTOR, '[data-replica] [data-field="streams"]')
    assert [s.text for s in streams] == ["2"]  # one replica in kuma-cp run, both Envoys on it
    _shot(browser, "control-plane")


def test_api_is_served_read_only_under_the_guis_origin(cp: ControlPlane):
    listed = requests.get(cp.gui + "/api/meshes/default/traffic-routes?size=1", timeout=5)
    assert listed.status_code == 200
    assert listed.json()["items"][0]["name"] == "backend-to-redis-v1"
    put = requests.put(
        cp.gui + "/api/meshes/default/traffic-permissions/sneaky",
        json={"type": "TrafficPermission", "mesh": "default", "name": "sneaky"},
        timeout=5,
    )
    assert put.status_code == 405 and put.json()["title"] == "Method Not Allowed"
    assert requests.get(cp.api + "/meshes/default/traffic-permissions/sneaky").status_code == 404
    assert "Access-Control-Allow-Origin" not in listed.headers


def test_a_stopped_dataplane_turns_offline_without_a_reload(cp: ControlPlane, browser: WebDriver):
    _open(browser, cp.gui + "/meshes/default/dataplanes")
    browser.execute_script("window.stillTheSamePage = true;")
    status = 'tr[data-dataplane="redis-1"] [data-field="status"]'
    assert _text(browser, status) == "Online"
    stopped = time.monotonic()
    cp.stop("redis-1")
    # A few seconds: the stream's close is written at the next insight flush (1 s), the API
    # may keep a count for 1 s, and the page polls every 2 s; the rest is kuma-dp stopping.
    wait_until(lambda: _text(browser, status) == "Offline", 6, "redis-1 shown Offline in 6 s")
    took = time.monotonic() - stopped
    assert browser.execute_script("return window.stillTheSamePage === true;")
    assert _text(browser, '[data-count="offline"]') == "1"
    assert _text(browser, 'tr[data-dataplane="backend-1"] [data-field="status"]') == "Online"
    _shot(browser, "dataplane-offline")
    print(f"redis-1 shown Offline {took:.1f} s after its kuma-dp stopped")
    # Its page: Offline, and its stream in the subscriptions history with the disconnect time.
    _open(browser, cp.gui + "/meshes/default/dataplanes/redis-1")
    assert "Offline" in _text(browser, "h1")
    [subscription] = _rows(browser, "Subscriptions")
    assert subscription[3].endswith(" UTC") and subscription[3] >= subscription[2]
