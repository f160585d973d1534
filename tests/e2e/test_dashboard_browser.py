"""The dashboard in a real browser (Debian's chromium driven by Playwright), over the whole stack:
Azurite, the ACS simulator and the local host, as ``make run`` starts them.

A campaign goes out through the simulator (numbers ending 4040 fail), and the page must show the
numbers the API answers, log no console error, and send no request anywhere but 127.0.0.1.
Screenshots at desktop and phone widths go to a temporary folder, or to ``docs/img`` (what the README
and docs/api.md show) with ``UPDATE_SCREENSHOTS=1``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urljoin, urlsplit

import httpx
import pytest

from localdev.stack import azurite_connection_string, stop_group
from tests.support import ROOT, SIMULATOR_CONNECTION_STRING, fixture, free_port, poll

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
KEY = "browser-test-key"
STATUSES = ("Accepted", "Delivered", "Failed", "Rejected", "Expired")
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}  # a common phone's CSS viewport

if not Path(CHROMIUM).exists():
    if os.environ.get("CI") == "true":
        raise RuntimeError("chromium is missing: .ci/run installs it with apt-get")
    pytest.skip("chromium is not installed (apt-get install -y chromium)", allow_module_level=True)

from playwright.sync_api import Browser, ConsoleMessage, Page, Request, sync_playwright  # noqa: E402  # after the skip


class Stack:
    def __init__(self, process: subprocess.Popen[str], base: str) -> None:
        self.process, self.base = process, base

    def api(self, path: str, **params: str) -> Any:
        response = httpx.get(f"{self.base}/api/{path}", params=params, headers={"x-functions-key": KEY}, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()


def start(env_overrides: dict[str, str], *command: str) -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    env = {**os.environ, **env_overrides, "LOCAL_HOST_PORT": str(port), "LOCAL_FUNCTION_KEY": KEY}
    process = subprocess.Popen(
        [sys.executable, *command],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    return process, port


def healthy(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    ports = {name: str(free_port()) for name in ("ACS_SIMULATOR_PORT", "AZURITE_BLOB_PORT", "AZURITE_QUEUE_PORT")}
    ports["AZURITE_TABLE_PORT"] = str(free_port())
    process, port = start({**ports, "AZURITE_LOCATION": "memory"}, "-m", "localdev.stack")
    try:
        poll(lambda: healthy(f"http://127.0.0.1:{port}/api/health"), deadline_seconds=90, interval=0.2)
        yield Stack(process, f"http://127.0.0.1:{port}")
    finally:
        stop_group(process)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM)
        yield launched
        launched.close()


class Watched:
    """A page whose console errors and requests are kept, to assert on after."""

    def __init__(self, browser: Browser, viewport: dict[str, int]) -> None:
        self.context = browser.new_context(viewport=viewport)  # type: ignore[arg-type]  # a ViewportSize dict
        self.page: Page = self.context.new_page()
        self.errors: list[str] = []
        self.hosts: set[str] = set()
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on("request", self._request)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def _request(self, request: Request) -> None:
        self.hosts.add(urlsplit(request.url).hostname or request.url)

    def open(self, url: str) -> Page:
        self.page.goto(url)
        self.page.wait_for_selector("body[data-ready=true]")
        return self.page

    def close(self) -> None:
        self.context.close()


def shots_dir(tmp_path: Path) -> Path:
    return ROOT / "docs" / "img" if os.environ.get("UPDATE_SCREENSHOTS") == "1" else tmp_path


def numbers(page: Page, attribute: str) -> dict[str, str]:
    cells = page.locator(f"[{attribute}]")
    return {cells.nth(i).get_attribute(attribute) or "": cells.nth(i).inner_text() for i in range(cells.count())}


def test_the_dashboard_shows_what_the_api_says_after_a_campaign(stack: Stack, browser: Browser, tmp_path: Path) -> None:
    shots = shots_dir(tmp_path)
    desktop = Watched(browser, DESKTOP)
    try:
        empty = desktop.open(f"{stack.base}/api/dashboard?code={KEY}")
        assert "No campaigns yet" in empty.locator("#no-campaigns").inner_text()

        tag = "spring-" + uuid.uuid4().hex[:6]
        body = fixture("seed_send_request.json")
        failing = [f"+1833{i:03d}4040" for i in range(4)]  # the simulator fails numbers ending 4040
        body["recipients"] = [{"to": f"+1833{i:03d}0{i % 10}71"} for i in range(26)] + [{"to": n} for n in failing]
        body["recipients"].append({"to": "+12345"})  # not E.164: Rejected
        body["sendOptions"] = {"enableDeliveryReport": True, "tag": tag}
        sent = httpx.post(f"{stack.base}/api/messages", json=body, headers={"x-functions-key": KEY}, timeout=60)
        assert sent.status_code == 202, sent.text
        poll(
            lambda: stack.api(f"tags/{quote(tag)}/summary")["byStatus"]["Accepted"] == 0,
            deadline_seconds=90,
            interval=0.5,
        )
        summary = stack.api(f"tags/{quote(tag)}/summary")
        assert summary["byStatus"]["Failed"] == 4 and summary["byStatus"]["Delivered"] == 26

        job_tag = tag + "-job"  # a campaign job (issue 18): its progress bar shows what the API says
        job_body = {k: body[k] for k in ("from", "message", "attachments") if k in body}
        job_body |= {"recipients": [{"to": f"+1833{i:03d}0571"} for i in range(3)], "sendOptions": {"tag": job_tag}}
        created = httpx.post(f"{stack.base}/api/campaigns", json=job_body, headers={"x-functions-key": KEY}, timeout=60)
        assert created.status_code == 202, created.text
        job_id = created.json()["campaignId"]
        poll(lambda: stack.api(f"campaigns/{job_id}")["status"] == "Completed", deadline_seconds=90, interval=0.5)
        job = stack.api(f"campaigns/{job_id}")
        poll(lambda: stack.api(f"tags/{quote(job_tag)}/summary")["byStatus"]["Accepted"] == 0, 90, 0.5)

        tags = desktop.open(f"{stack.base}/api/dashboard?code={KEY}")
        job_summary = stack.api(f"tags/{quote(job_tag)}/summary")
        assert numbers(tags, "data-total") == {tag: str(summary["total"]), job_tag: str(job_summary["total"])}
        assert numbers(tags, "data-progress") == {job_id: f"{job['sent'] + job['failedToSend']} / {job['total']}"}
        bar = tags.locator("progress")
        assert (bar.get_attribute("value"), bar.get_attribute("max")) == (str(job["sent"]), str(job["total"]))
        tags.screenshot(path=str(shots / "dashboard-tags-desktop.png"), full_page=True)

        view = desktop.open(f"{stack.base}/api/dashboard?tag={quote(tag)}&code={KEY}")
        shown = numbers(view, "data-count")
        assert shown == {"total": str(summary["total"]), **{s: str(summary["byStatus"][s]) for s in STATUSES}}
        latency = summary["latency"]
        assert numbers(view, "data-latency") == {
            "rate": f"{100 * 26 / 31:.1f}%",  # Delivered of every final status (26 + 4 Failed + 1 Rejected)
            "p50": f"{latency['p50Seconds']:g} s",
            "p90": f"{latency['p90Seconds']:g} s",
            "p99": f"{latency['p99Seconds']:g} s",
            "count": str(latency["count"]),
        }
        assert numbers(view, "data-reason") == {r: str(n) for r, n in summary["failureReasons"].items()}
        failures = view.locator("table").last.inner_text()
        assert "+1******4040" in failures and "4040" in failures and "+18330004040" not in failures  # masked
        csv_href = view.locator("#csv").get_attribute("href") or ""
        csv = httpx.get(f"{stack.base}/api/{csv_href}", timeout=30)
        assert csv.status_code == 200 and csv.text.count("\r\n") == summary["total"] + 1
        view.screenshot(path=str(shots / "dashboard-tag-desktop.png"), full_page=True)

        poison = desktop.open(f"{stack.base}/api/dashboard?view=poison&code={KEY}")
        assert poison.locator("h2").inner_text() == "Poison events"
        assert desktop.errors == []
        assert desktop.hosts == {"127.0.0.1"}
    finally:
        desktop.close()

    phone = Watched(browser, PHONE)
    try:
        page = phone.open(f"{stack.base}/api/dashboard?tag={quote(tag)}&code={KEY}")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"]  # nothing forces sideways scrolling on a phone
        assert numbers(page, "data-count")["total"] == str(summary["total"])
        page.screenshot(path=str(shots / "dashboard-tag-phone.png"), full_page=True)
        assert phone.errors == [] and phone.hosts == {"127.0.0.1"}
    finally:
        phone.close()


def test_the_dashboard_says_so_when_storage_is_unreachable(browser: Browser) -> None:
    env = {
        "TRACKING_STORAGE_CONNECTION_STRING": azurite_connection_string(free_port()),  # nothing listens there
        "TRACKING_STORAGE_TIMEOUT_SECONDS": "1",
        "MMS_SENDERS": "+18004567891",
        "ACS_CONNECTION_STRING": SIMULATOR_CONNECTION_STRING,
    }
    host, port = start(env, "-m", "localdev.host", "--no-timers")
    try:
        base = f"http://127.0.0.1:{port}"
        poll(lambda: healthy(f"{base}/api/openapi.json"), deadline_seconds=60, interval=0.2)
        watched = Watched(browser, DESKTOP)
        try:
            page = watched.open(f"{base}/api/dashboard?code={KEY}")
            alert = page.get_by_role("alert")
            assert "Storage unreachable" in alert.inner_text()
            assert watched.hosts == {"127.0.0.1"}
        finally:
            watched.close()
    finally:
        stop_group(host)


def send_tagged(stack: Stack, tag: str, n: int = 1) -> None:
    body = fixture("seed_send_request.json")
    body["recipients"] = [{"to": f"+1833{i:03d}4044"} for i in range(n)]  # 4044: no report, stays Accepted
    body["sendOptions"] = {"enableDeliveryReport": True, "tag": tag}
    sent = httpx.post(f"{stack.base}/api/messages", json=body, headers={"x-functions-key": KEY}, timeout=60)
    assert sent.status_code == 202, sent.text


def dashboard_url(stack: Stack, **params: str) -> str:
    return f"{stack.base}/api/dashboard?{urlencode({**params, 'code': KEY}, quote_via=quote)}"


# Tags a send accepts (ACS's MmsSendOptions.tag is any string: Azure/azure-rest-api-specs,
# specification/communication/data-plane/Sms/preview/2024-01-14-preview/communicationservicessms.json)
# that no path segment carries: browsers and URL libraries collapse dot segments (also percent-encoded),
# and a %2F is a separator to the local host and a 404 in Azure.
ODD_TAGS = [
    "spring/2026",
    ".",
    "..",
    "./spring",
    "spring/.",
    "../spring",
    "spring/..",
    "...",
    "%",
    "%2F",
    "?tag=x&view=poison#top",
    "\\",
    "夏 \U0001f600 +",
]


def test_a_tag_of_any_characters_opens_its_view_with_its_counts_and_its_export(stack: Stack, browser: Browser) -> None:
    for tag in ODD_TAGS:
        send_tagged(stack, tag)
    watched = Watched(browser, DESKTOP)
    wrong: dict[str, str] = {}
    try:
        for tag in ODD_TAGS:
            page = watched.open(dashboard_url(stack, tag=tag))
            state = page.locator("#state")
            if state.get_attribute("class") == "alert":
                wrong[tag] = state.inner_text()
                continue
            assert page.locator("h2 q").inner_text() == tag
            assert numbers(page, "data-count")["total"] == "1", tag
            csv_href = page.locator("#csv").get_attribute("href") or ""
            csv = httpx.get(urljoin(page.url, csv_href), timeout=30)  # resolved as the browser resolves it
            if csv.status_code != 200 or csv.text.count("\r\n") != 2:
                wrong[tag] = f"CSV {csv.status_code}: {csv.text[:200]}"
        assert wrong == {}
        assert watched.hosts == {"127.0.0.1"}
    finally:
        watched.close()


LONG_TAG = "W" * 200 + "\U0001f600" * 20 + "夏" * 36  # 256 characters (the longest a send takes), no break


def outside(page: Page, selector: str, viewport: dict[str, int]) -> list[Any]:
    """The elements of ``selector`` whose box is not wholly inside the viewport's width, measured by the browser."""
    boxes = page.locator(selector).evaluate_all(
        "cells => cells.map(c => { const r = c.getBoundingClientRect(); "
        "return [c.textContent.slice(0, 40), r.left, r.right]; })"
    )
    assert boxes, f"no {selector} on the page"
    return [box for box in boxes if box[1] < 0 or box[2] > viewport["width"]]


def wider_than(page: Page, viewport: dict[str, int]) -> list[int]:
    width = page.evaluate("document.documentElement.scrollWidth")
    return [width] if width > viewport["width"] else []


def start_campaign(stack: Stack, tag: str) -> str:
    body = {k: v for k, v in fixture("seed_send_request.json").items() if k in ("from", "message", "attachments")}
    body |= {"recipients": [{"to": "+18330004044"}], "sendOptions": {"tag": tag}}  # 4044: no report
    created = httpx.post(f"{stack.base}/api/campaigns", json=body, headers={"x-functions-key": KEY}, timeout=60)
    assert created.status_code == 202, created.text
    return str(created.json()["campaignId"])


def post_poison(stack: Stack, event_type: str) -> None:
    [event] = fixture("sms_delivery_report.eventgrid.json")
    event |= {"id": str(uuid.uuid4()), "eventType": event_type}
    response = httpx.post(
        f"{stack.base}/runtime/webhooks/eventgrid?functionName=on_delivery_report",
        json=[event],
        headers={"aeg-event-type": "Notification", "x-functions-key": KEY},
        timeout=30,
    )
    assert response.status_code == 202, response.text  # acknowledged, kept as poison (an unknown type)


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_a_long_tag_and_a_long_event_type_wrap_and_keep_the_whole_text_in_a_tooltip(
    stack: Stack, browser: Browser, viewport: dict[str, int]
) -> None:
    send_tagged(stack, LONG_TAG, n=2)
    job_id = start_campaign(stack, LONG_TAG)  # the jobs table names a campaign by its tag too
    poll(lambda: stack.api(f"campaigns/{job_id}")["status"] == "Completed", deadline_seconds=90, interval=0.5)
    long_type = f"Contoso.Carrier{viewport['width']}." + "DeliveryReceiptWithoutAnyBreak" * 12  # 256 are kept
    post_poison(stack, long_type)
    [kept] = [p for p in stack.api("poison")["items"] if p["eventType"] == long_type[:256]]
    wrong: dict[str, Any] = {}
    watched = Watched(browser, viewport)
    try:
        tags = watched.open(dashboard_url(stack))
        wrong["tags: counts off screen"] = outside(tags, "[data-total]", viewport)
        titles = tags.locator("[data-total] >> xpath=../td[1]//*[@title]").evaluate_all("e => e.map(a => a.title)")
        wrong["tags: no tooltip with the whole tag"] = [] if LONG_TAG in titles else ["titles:", *titles]
        wrong["tags: a job's progress off screen"] = outside(tags, f'[data-progress="{job_id}"]', viewport)
        job_titles = tags.locator(f'[data-progress="{job_id}"] >> xpath=../td[1]//*[@title]').evaluate_all(
            "e => e.map(a => a.title)"
        )
        wrong["tags: no tooltip with the job's whole tag"] = (
            [] if job_titles == [LONG_TAG] else ["titles:", *job_titles]
        )
        wrong["tags: page wider than the screen"] = wider_than(tags, viewport)

        view = watched.open(dashboard_url(stack, tag=LONG_TAG))
        assert view.locator("h2 q").inner_text() == LONG_TAG
        assert numbers(view, "data-count")["total"] == str(stack.api("tags/summary", tag=LONG_TAG)["total"])
        wrong["tag view: counts off screen"] = outside(view, "[data-count]", viewport)
        wrong["tag view: heading off screen"] = outside(view, "h2 q", viewport)
        wrong["tag view: no tooltip"] = [] if view.locator("h2 q").get_attribute("title") == LONG_TAG else ["h2 q"]
        wrong["tag view: page wider than the screen"] = wider_than(view, viewport)

        poison = watched.open(dashboard_url(stack, view="poison"))
        wrong["poison: reasons off screen"] = outside(poison, "#view tbody td:nth-child(3)", viewport)
        row = poison.locator("#view tbody tr", has_text=kept["eventId"])
        assert row.locator("td:nth-child(3)").inner_text() == kept["reason"]
        title = row.locator("td:nth-child(2) [title]").evaluate_all("e => e.map(t => t.title)")
        wrong["poison: no tooltip with the whole type"] = [] if title == [kept["eventType"]] else ["titles:", *title]
        wrong["poison: page wider than the screen"] = wider_than(poison, viewport)
        assert watched.errors == [] and watched.hosts == {"127.0.0.1"}
    finally:
        watched.close()
    assert {k: v for k, v in wrong.items() if v} == {}
