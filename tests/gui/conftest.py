"""One real `kuma-cp run` for every GUI test: the default mesh with mTLS on, a permission and a
route, two Dataplanes with real Envoys (`kuma-dp run`), and headless Chromium driven through
Debian's /usr/bin/chromedriver (installed here with apt when missing; selenium never downloads a
driver). Screenshots of each page go to tests/gui/screenshots/ (ignored by git)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from tests.ports import cp_ports, free_port
from tests.waiting import wait_until

BIN = Path(sys.executable).parent
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).parent / "screenshots"
PACKAGES = ("chromium", "chromium-driver")

SEED = """type: Mesh
name: default
mtls:
  enabled: true
  ca:
    builtin: {}
---
type: TrafficPermission
mesh: default
name: backend-to-redis
sources:
- match:
    service: backend
destinations:
- match:
    service: redis
---
type: TrafficRoute
mesh: default
name: backend-to-redis-v1
sources:
- match:
    service: backend
destinations:
- match:
    service: redis
conf:
- weight: 100
  destination:
    service: redis
    version: v1
"""


def _install_browser() -> None:
    """Debian's chromium and chromium-driver, with apt, as the project's tests install what
    they need (browser downloads from the internet fail here)."""
    if CHROMEDRIVER.exists() and CHROMIUM.exists():
        return
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        pytest.fail("tests/gui need chromium and chromium-driver: apt-get install them (as root)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *PACKAGES],
        check=True,
        env=env,
    )


@dataclass
class ControlPlane:
    api: str
    gui: str
    home: Path
    tmp: Path
    env: dict[str, str]
    diagnostics: str = ""  # /metrics, the API's request counts among them
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    admin_ports: dict[str, int] = field(default_factory=dict)  # each kuma-dp's Envoy admin

    def kumactl(self, *args: str, stdin: str | None = None) -> str:
        result = subprocess.run(
            [str(BIN / "kumactl"), *args],
            input=stdin,
            env={**self.env, "HOME": str(self.home)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        log = (self.tmp / f"{name}.log").open("wb")
        self.procs[name] = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)

    def stop(self, name: str) -> None:
        proc = self.procs[name]
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def online(self) -> set[str]:
        body = requests.get(f"{self.api}/meshes/default/dataplanes+insights", timeout=5).json()
        return {
            i["name"]
            for i in body["items"]
            if any(
                "disconnectTime" not in s
                for s in i.get("dataplaneInsight", {}).get("subscriptions", [])
            )
        }


@pytest.fixture(scope="session")
def cp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    tmp = tmp_path_factory.mktemp("gui")
    base = {k: v for k, v in os.environ.items() if not k.startswith("KUMA_")}
    ports = cp_ports()
    home = tmp / "home"
    home.mkdir()
    plane = ControlPlane(
        api=f"http://127.0.0.1:{ports['KUMA_API_SERVER_PORT']}",
        gui=f"http://127.0.0.1:{ports['KUMA_GUI_SERVER_PORT']}",
        home=home,
        tmp=tmp,
        env=base,
        diagnostics=f"http://127.0.0.1:{ports['KUMA_XDS_SERVER_DIAGNOSTICS_PORT']}",
    )
    plane.start("kuma-cp", [str(BIN / "kuma-cp"), "run"], {**base, **ports})
    try:
        wait_until(lambda: requests.get(plane.gui, timeout=1).ok, 30, "kuma-cp's GUI")
        plane.kumactl("config", "control-planes", "add", "--name", "gui", "--address", plane.api)
        plane.kumactl("apply", "-f", "-", stdin=SEED)
        for name, service, outbound in (("redis-1", "redis", ""), ("backend-1", "backend", "x")):
            text = (
                f"type: Dataplane\nmesh: default\nname: {name}\nnetworking:\n  inbound:\n"
                f"  - interface: 127.0.0.1:{free_port()}:{free_port()}\n    tags:\n"
                f"      service: {service}\n      version: v1\n"
            )
            if outbound:
                text += f"  outbound:\n  - interface: :{free_port()}\n    service: redis\n"
            plane.kumactl("apply", "-f", "-", stdin=text)
            plane.admin_ports[name] = free_port()
            plane.start(
                name,
                [str(BIN / "kuma-dp"), "run"],
                {
                    **base,
                    "KUMA_CONTROL_PLANE_BOOTSTRAP_SERVER_URL": "http://127.0.0.1:"
                    + ports["KUMA_BOOTSTRAP_SERVER_PORT"],
                    "KUMA_DATAPLANE_MESH": "default",
                    "KUMA_DATAPLANE_NAME": name,
                    "KUMA_DATAPLANE_ADMIN_PORT": str(plane.admin_ports[name]),
                    "KUMA_DATAPLANE_RUNTIME_CONFIG_DIR": str(tmp / name),
                },
            )
        wait_until(lambda: plane.online() == {"redis-1", "backend-1"}, 40, "both Online")
        yield plane
    finally:
        for name in reversed(list(plane.procs)):
            plane.stop(name)


@pytest.fixture(scope="session")
def browser() -> Iterator[webdriver.Chrome]:
    _install_browser()
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",  # root in a container
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.implicitly_wait(0)
    SCREENSHOTS.mkdir(exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()
