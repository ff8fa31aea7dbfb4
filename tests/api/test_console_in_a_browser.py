"""The web console (`/console`) in a real browser (Debian's Chromium, driven by Playwright)
against the service in its own process, on real data made through the API (tests/console_data.py):
sign-in, models, a model, lineage, a contributor, an attestation, A/B results, and the write
actions, with every request to another host refused. Screenshots of the main pages go to
`build/screenshots/` (tests/browser.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import quote

import httpx
import pytest
from playwright.sync_api import Browser, Page

from app.core.security import generate_key
from app.rules.ab_stats import assign
from tests.browser import offline_page, screenshot
from tests.conftest import auth, live_settings
from tests.console_data import MARKUP, ConsoleData, seed
from tests.factories import CONTRIBUTOR, ab_test, seed_chain, unique
from tests.services_under_test import service_process

NONE = "\N{EN DASH}"  # what the console shows for a value that does not exist


@dataclass(frozen=True)
class Console:
    url: str
    admin_key: str
    database_url: str
    data: ConsoleData

    def key(self, *scopes: str) -> str:
        created = httpx.post(
            f"{self.url}/api/v1/api-keys",
            json={"name": f"console-{'-'.join(scopes)}", "scopes": list(scopes)},
            headers=auth(self.admin_key),
        )
        assert created.status_code == 201, created.text
        return str(created.json()["key"])

    def chain(self, name: str, length: int) -> None:
        """A model of `length` versions in one chain, written straight to Postgres from another
        thread (Playwright's loop runs in this one)."""
        with ThreadPoolExecutor(1) as writer:
            writer.submit(asyncio.run, seed_chain(self.database_url, name, length)).result()

    def api(self, path: str) -> dict:  # type: ignore[type-arg]
        response = httpx.get(f"{self.url}/api/v1{path}", headers=auth(self.admin_key))
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def console(
    database_url: str, redis_url: str, mlflow_uri: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Console]:
    """The service with DeltaOne's cool-down off (so a model's second accepted version is judged
    on its gain), and the console's data made through its API."""
    workdir = tmp_path_factory.mktemp("console")
    admin = generate_key()
    settings = live_settings(
        database_url, redis_url, mlflow_uri, workdir, admin, deltaone_cooldown_s=0
    )
    with service_process(settings, workdir) as (url, _):
        yield Console(url, admin, database_url, seed(url, admin, unique("lead-scoring")))


def signed_in(
    browser: Browser, console: Console, key: str, where: str = ""
) -> tuple[Page, list[str]]:
    page, refused = offline_page(browser, console.url)
    page.goto(f"{console.url}/console{where}")
    page.wait_for_selector("body[data-ready]")
    page.fill("#api-key", key)
    page.click("form.sign-in button[type=submit]")
    page.wait_for_selector("#nav:not([hidden])")
    return page, refused


def test_signing_in_shows_the_key_and_finds_models_by_name_and_token(
    browser: Browser, console: Console
) -> None:
    page, refused = offline_page(browser, console.url)
    page.goto(f"{console.url}/")  # the service's root leads to the console
    assert page.url == f"{console.url}/console"
    page.wait_for_selector("#api-key")
    screenshot(page, "console-sign-in")
    page.fill("#api-key", console.key("read"))
    page.click("form.sign-in button[type=submit]")
    page.wait_for_selector("#models")
    assert page.locator("#who .key-name").inner_text() == "console-read"
    assert page.locator("#who .scope").all_inner_texts() == ["read"]

    model = console.data.model
    page.fill("#model-search", model.split("-")[-1].upper())  # part of the name, in any case
    page.click("form.search button")
    page.wait_for_selector("#model-count:has-text('matching')")
    assert page.locator("#models tbody tr").all_inner_texts()[0].startswith(model)
    assert page.locator("#models tbody tr").count() == 1
    page.fill("#model-search", console.data.token_id.lower())
    page.click("form.search button")
    page.wait_for_selector(f"#model-count:has-text('{console.data.token_id.lower()}')")
    assert page.locator("#models tbody tr[data-model]").evaluate_all(
        "rows => rows.map(row => row.dataset.model)"
    ) == [model]
    screenshot(page, "console-models")
    for nowhere in ("#/nowhere", "#/models/%E0%A4%A", "#/models/a/b/c/d"):
        page.goto(f"{console.url}/console{nowhere}")
        page.wait_for_selector("h1:text-is('Not found')")
    page.goto(f"{console.url}/console#/models?search={model}")
    page.click(f"#models a:text-is('{model}')")
    page.wait_for_selector("#versions")
    assert page.url.endswith(f"#/models/{model}")
    assert refused == []


def test_a_model_shows_versions_deltas_decisions_and_the_alias_history(
    browser: Browser, console: Console
) -> None:
    model = console.data.model
    page, refused = signed_in(browser, console, console.key("read"), f"#/models/{model}")
    page.wait_for_selector("#versions")
    rows = page.locator("#versions tbody tr")
    assert rows.evaluate_all("rows => rows.map(row => row.dataset.version)") == ["4", "3", "2", "1"]
    assert [rows.nth(i).locator("td").nth(4).inner_text() for i in range(4)] == [
        "+2.00 pp",
        "+0.20 pp",
        "+3.00 pp",
        NONE,
    ]
    decisions = [rows.nth(i).locator("td.deltaone").inner_text() for i in range(4)]
    assert decisions == ["accepted", "rejected delta below threshold", "accepted", NONE]
    assert "production" in rows.nth(0).inner_text()
    history = page.locator("ol.timeline[data-alias=production] li").all_inner_texts()
    assert len(history) == 2
    assert "v2 → v4" in history[0]
    assert "v4 clears it by more" in history[0]
    assert "∅ → v2" in history[1]
    assert page.locator("#rollback").count() == 0  # a read key has no write actions
    screenshot(page, "console-model")
    assert refused == []


def test_markup_from_the_api_is_shown_as_text(browser: Browser, console: Console) -> None:
    """Descriptions and tags are user input: the page shows them as written, builds no element
    from them and runs nothing; its policy would refuse to parse HTML from a script anyway."""
    model = console.data.model
    page, refused = signed_in(browser, console, console.key("read"), f"#/models/{model}")
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.wait_for_selector("#versions")
    assert page.locator("#model-description").inner_text() == f"Scores leads {MARKUP}"
    assert f"owner={MARKUP}" in page.locator("dl.facts").inner_text()
    assert f"Lead scoring {MARKUP}" in page.locator("#versions tr[data-version='1']").inner_text()
    assert f"note={MARKUP}" in page.locator("#versions tr[data-version='1']").inner_text()
    page.goto(f"{console.url}/console#/models?search={model}")
    page.wait_for_selector(f"#models tr[data-model='{model}']")
    assert MARKUP in page.locator("#models").inner_text()
    assert page.locator("main img").count() == 0
    assert dialogs == []
    # Trusted Types: even a script of the page's own cannot assign HTML.
    refusal = page.evaluate(
        "() => { try { document.body.innerHTML = '<b>x</b>'; return 'parsed'; }"
        " catch (error) { return error.name; } }"
    )
    assert refusal == "TypeError"
    assert [entry for entry in refused if "page error" in entry] == []


def test_lineage_is_drawn_as_a_graph_and_a_node_opens_its_attestation(
    browser: Browser, console: Console
) -> None:
    model = console.data.model
    page, refused = signed_in(browser, console, console.key("read"), f"#/models/{model}/lineage")
    page.wait_for_selector("svg.lineage")
    nodes = page.locator("svg.lineage g.node")
    assert nodes.count() == 4
    assert page.locator("svg.lineage g.node.accepted").evaluate_all(
        "nodes => nodes.map(node => node.dataset.version)"
    ) == ["2", "4"]
    edges = page.locator("svg.lineage g.edge")
    labels = edges.evaluate_all(
        "edges => edges.map(e => [e.dataset.parent, e.dataset.child, e.textContent])"
    )
    assert sorted(labels) == [
        ["1", "2", "+3.00 pp"],
        ["2", "3", "+0.20 pp"],
        ["2", "4", "+2.00 pp"],
    ]
    assert page.locator("svg.lineage g.edge.accepted").count() == 2

    page.click("svg.lineage g.node[data-version='4']")
    page.wait_for_selector("#node-detail h2:has-text('v4')")
    detail = page.locator("#node-detail").inner_text()
    assert "DeltaOne accepted" in detail
    assert CONTRIBUTOR in detail
    attestation = console.api(f"/models/{model}/versions/4")["attestation_id"]
    link = f"#/attestations/{quote(attestation, safe='')}"
    assert page.locator(f"#node-detail a[href='{link}']").count() == 1
    page.click("#node-detail button.verify")
    page.wait_for_selector("#node-detail .verification .badge")
    assert page.locator("#node-detail .verification .badge").get_attribute("data-valid") == "true"
    assert (
        "matches the recorded attestation"
        in page.locator("#node-detail .verification").inner_text()
    )
    screenshot(page, "console-lineage")

    # The controls: v3's ancestors are v1, v2 and v3; one hop of descendants of v2, three nodes.
    page.fill("#lineage-controls input[name=version]", "3")
    page.select_option("#lineage-controls select[name=direction]", "ancestors")
    page.click("#lineage-controls button")
    page.wait_for_selector("svg.lineage g.node.focus[data-version='3']")
    assert nodes.evaluate_all("n => n.map(node => node.dataset.version)") == ["1", "2", "3"]
    page.goto(
        f"{console.url}/console#/models/{model}/lineage?version=2&direction=descendants&depth=1"
    )
    page.wait_for_selector("svg.lineage g.node.focus[data-version='2']")
    assert sorted(nodes.evaluate_all("n => n.map(node => node.dataset.version)")) == ["2", "3", "4"]
    assert refused == []


def test_a_chain_of_a_thousand_versions_draws_every_node(
    browser: Browser, console: Console
) -> None:
    name = unique("chain")
    console.chain(name, 1000)
    page, refused = signed_in(browser, console, console.key("read"))
    started = time.perf_counter()
    page.goto(f"{console.url}/console#/models/{name}/lineage")
    page.wait_for_selector("svg.lineage")
    drawn = page.locator("svg.lineage g.node").count()
    seconds = time.perf_counter() - started
    assert drawn == 1000
    assert page.locator("svg.lineage g.edge").count() == 999
    assert page.locator("#lineage-summary").inner_text().startswith("1000 versions, 999 edges")
    print(f"1,000-node lineage drawn in {seconds:.2f} s")  # measured in bench/console.py
    assert refused == []


def test_a_contributor_page_shows_impact_and_verifies_an_attestation(
    browser: Browser, console: Console
) -> None:
    page, refused = signed_in(browser, console, console.key("read"), "#/contributors")
    page.wait_for_selector("#contributors")
    listed = console.api("/contributors?limit=500")
    addresses = page.locator("#contributors tr[data-address]").evaluate_all(
        "rows => rows.map(r => r.dataset.address)"
    )
    assert addresses == [c["address"] for c in listed["items"][:50]]
    assert CONTRIBUTOR in addresses
    mine = page.locator(f"#contributors tr[data-address='{CONTRIBUTOR}']")
    assert mine.locator("td.claimed").inner_text() != "0.00 pp"
    page.fill("#address", "0x123")
    page.click("form.search button")
    assert "40 hexadecimal digits" in page.locator("[role=status]").inner_text()
    page.fill("#address", CONTRIBUTOR)
    page.click("form.search button")
    page.wait_for_selector("#impact")
    impact = console.api(f"/contributors/{CONTRIBUTOR}/impact")
    tiles = page.locator("#impact .tile-value").all_inner_texts()
    assert tiles[0] == str(impact["contributions"])
    assert tiles[2] == str(impact["deltaone_accepted"])
    model = console.data.model
    row = page.locator("#impact-by-model tr", has_text=model)
    assert row.locator("td").nth(2).inner_text() == "+5.00 pp"  # 3.00 + 2.00, both whole shares
    contributions = page.locator("#contributions tbody tr", has_text=model)
    assert contributions.count() == 2
    assert contributions.first.locator("td").nth(4).inner_text() == "claimed"
    assert tiles[5:7] == ["0.00 pp", "+5.00 pp"], "no held benchmark here: all claimed"
    screenshot(page, "console-contributor")
    contributions.first.locator("a[href^='#/attestations/']").click()
    page.wait_for_selector("pre.statement")
    assert model in page.locator("pre.statement").first.inner_text()
    page.click("button.verify")
    page.wait_for_selector(".verification .badge")
    assert page.locator(".verification .badge").inner_text() == "signature valid"
    screenshot(page, "console-attestation")
    assert refused == []


def test_ab_results_show_the_verdict_and_the_intervals_of_a_known_effect(
    browser: Browser, console: Console
) -> None:
    test_id = console.data.ab_test_id
    page, refused = signed_in(browser, console, console.key("read"), "#/ab-tests")
    page.wait_for_selector(f"#ab-tests tr[data-test='{test_id}']")
    page.click(f"#ab-tests tr[data-test='{test_id}'] a")
    page.wait_for_selector("#verdict")
    results = console.api(f"/ab-tests/{test_id}/results")
    assert page.locator("#verdict").get_attribute("data-verdict") == "treatment_better"
    assert results["verdict"] == "treatment_better"
    for variant in results["variants"]:
        row = page.locator(f"#variants tr[data-variant='{variant['name']}']")
        assert row.locator("td.n").inner_text() == str(console.data.units[variant["name"]])
        assert row.locator("td.exposures").inner_text() == str(variant["exposures"])
        assert row.locator("td.mean").inner_text() == f"{variant['mean']:.4f}"
        assert row.locator("td.ci").inner_text() == (
            f"[{variant['ci_low']:.4f}, {variant['ci_high']:.4f}]"
        )
    _control, _treatment = results["variants"]
    # The effect put in (20% against 45% conversion) is what the page shows, within rounding.
    assert abs(float(page.locator("tr[data-variant=control] td.mean").inner_text()) - 0.20) < 0.01
    assert abs(float(page.locator("tr[data-variant=treatment] td.mean").inner_text()) - 0.45) < 0.01
    [comparison] = results["comparisons"]
    lift = page.locator("tr[data-variant=treatment] td.lift-ci").inner_text()
    assert lift == f"[{comparison['ci_low']:.4f}, {comparison['ci_high']:.4f}]"
    assert comparison["ci_low"] > 0
    assert page.locator("tr[data-variant=treatment] td.chance").inner_text() == "100.0%"
    # The picture: one error bar per variant, one per treatment against zero.
    assert page.locator("svg.chart.means g.row line.bar").count() == 2
    assert page.locator("svg.chart.lifts g.row.significant line.bar").count() == 1
    assert page.locator("#srm").count() == 0
    assert page.locator("#test-actions").count() == 0  # read key
    screenshot(page, "console-ab-test")
    assert refused == []


def test_a_sample_ratio_mismatch_is_flagged_on_the_page(browser: Browser, console: Console) -> None:
    """A test whose exposures break its 90/10 weights (only a quarter of the control's units
    are exposed) is shown with the warning. Its model (two versions) is written straight to
    Postgres: a model runs one test at a time, and assignment loads no model."""
    model = unique("skewed")
    console.chain(model, 2)
    created = httpx.post(
        f"{console.url}/api/v1/ab-tests",
        json=ab_test(
            model,
            name="skewed",
            variants=[
                {"name": "control", "version": 1, "weight": 0.9},
                {"name": "treatment", "version": 2, "weight": 0.1},
            ],
        ),
        headers=auth(console.admin_key),
    )
    assert created.status_code == 201, created.text
    test_id = created.json()["id"]
    assert httpx.post(
        f"{console.url}/api/v1/ab-tests/{test_id}/start", headers=auth(console.admin_key)
    ).is_success
    # Every treatment unit is exposed, only every fourth control unit (the bucket is known
    # before asking: the specification's assignment).
    units = [f"u-{unit}" for unit in range(600)]
    exposed = [
        unit for i, unit in enumerate(units) if assign(test_id, unit, [0.9, 0.1]) == 1 or i % 4 == 0
    ]
    with httpx.Client(base_url=console.url, headers=auth(console.admin_key)) as client:
        for unit in exposed:
            assigned = client.post(f"/api/v1/ab-tests/{test_id}/assign", json={"unit_id": unit})
            assert assigned.status_code == 200, assigned.text
    page, refused = signed_in(browser, console, console.key("read"), f"#/ab-tests/{test_id}")
    page.wait_for_selector("#verdict")
    assert console.api(f"/ab-tests/{test_id}/results")["srm"]["flagged"] is True
    assert "Sample ratio mismatch" in page.locator("#srm").inner_text()
    assert refused == []


def test_a_read_only_key_sees_no_write_buttons_and_a_write_key_acts(
    browser: Browser, console: Console
) -> None:
    model, test_id = console.data.model, console.data.ab_test_id
    page, _ = signed_in(browser, console, console.key("read"), f"#/ab-tests/{test_id}")
    page.wait_for_selector("#verdict")
    assert page.locator("button[data-action], .write").count() == 0
    page.goto(f"{console.url}/console#/models/{model}")
    page.wait_for_selector("#versions")
    assert page.locator("#rollback, .write").count() == 0

    page, refused = signed_in(browser, console, console.key("write"), f"#/ab-tests/{test_id}")
    page.wait_for_selector("#test-actions")
    actions = page.locator("#test-actions button[data-action]")
    assert actions.evaluate_all("b => b.map(x => x.dataset.action)") == ["pause", "stop", "promote"]
    page.click("button[data-action=pause]")
    page.wait_for_selector("#test-status:text-is('paused')")
    assert console.api(f"/ab-tests/{test_id}")["status"] == "paused"
    page.click("button[data-action=resume]")
    page.wait_for_selector("#test-status:text-is('running')")
    # The control is not favoured by the results: the service says so, and the page shows it.
    page.select_option("#test-actions select[name=variant]", "control")
    page.click("button[data-action=promote]")
    page.wait_for_selector("#test-actions .error")
    assert "do not favour control" in page.locator("#test-actions .error").inner_text()
    assert console.api(f"/models/{model}")["aliases"]["production"] == 4
    page.check("#test-actions input[name=force]")
    page.click("button[data-action=promote]")
    page.wait_for_selector("#test-status:text-is('stopped')")
    assert "promoted control" in page.locator(".page").inner_text()
    assert console.api(f"/models/{model}")["aliases"]["production"] == 2

    page.goto(f"{console.url}/console#/models/{model}")
    page.wait_for_selector("#rollback")
    page.fill("#rollback input[name=reason]", "checked in the console")
    page.click("#rollback button")
    page.wait_for_selector("ol.timeline[data-alias=production] li:nth-child(4)")
    assert console.api(f"/models/{model}")["aliases"]["production"] == 4
    latest = page.locator("ol.timeline[data-alias=production] li").first.inner_text()
    assert "v2 → v4" in latest
    assert "checked in the console" in latest
    # The service refuses what it refuses, and the page says so: nothing to roll back to.
    page.fill("#rollback input[name=to_version]", "99")
    page.click("#rollback button")
    page.wait_for_selector("#rollback .error")
    refusal = page.locator("#rollback .error").inner_text()
    assert refusal.startswith("409")
    assert refusal.endswith("rollback_unavailable")
    assert refused == []


def test_a_bad_key_is_refused_and_a_key_without_read_is_told_why(
    browser: Browser, console: Console
) -> None:
    page, refused = offline_page(browser, console.url)
    page.goto(f"{console.url}/console")
    page.wait_for_selector("#api-key")
    for bad in ("hk_" + "0" * 40, "not a key", generate_key()):
        page.fill("#api-key", bad)
        page.click("form.sign-in button")
        page.wait_for_selector("#sign-in-status.error")
        assert "unknown or has been revoked" in page.locator("#sign-in-status").inner_text()
        assert page.locator("#nav").is_hidden()
    page.fill("#api-key", console.key("predict"))
    page.click("form.sign-in button")
    page.wait_for_selector("#sign-in-status:has-text('needs')")
    assert (
        "scopes predict: the console needs 'read'" in page.locator("#sign-in-status").inner_text()
    )
    assert page.evaluate("() => sessionStorage.length") == 0
    assert refused == []


def test_a_key_revoked_while_signed_in_signs_the_tab_out(
    browser: Browser, console: Console
) -> None:
    key = console.key("read")
    page, refused = signed_in(browser, console, key)
    page.wait_for_selector("#models")
    key_id = httpx.get(f"{console.url}/api/v1/api-keys/current", headers=auth(key)).json()["id"]
    revoked = httpx.delete(
        f"{console.url}/api/v1/api-keys/{key_id}", headers=auth(console.admin_key)
    )
    assert revoked.status_code == 204
    page.goto(f"{console.url}/console#/contributors/{CONTRIBUTOR}")
    page.wait_for_selector("#sign-in-status.error")
    assert "revoked" in page.locator("#sign-in-status").inner_text()
    assert page.evaluate("() => sessionStorage.length") == 0
    assert refused == []


def test_the_key_stays_in_the_tab_and_only_in_a_header(browser: Browser, console: Console) -> None:
    key = console.key("read")
    page, refused = offline_page(browser, console.url)
    sent: list[tuple[str, str | None]] = []
    page.on(
        "request", lambda request: sent.append((request.url, request.headers.get("authorization")))
    )
    page.goto(f"{console.url}/console")
    page.wait_for_selector("#api-key")
    page.fill("#api-key", key)
    page.click("form.sign-in button")
    page.wait_for_selector("#models")
    page.goto(f"{console.url}/console#/models/{console.data.model}/lineage")
    page.wait_for_selector("svg.lineage")
    assert [url for url, _ in sent if key in url] == []
    api_calls = [header for url, header in sent if "/api/v1/" in url]
    assert api_calls
    assert set(api_calls) == {f"Bearer {key}"}
    assert page.context.cookies() == []
    assert page.evaluate("() => localStorage.length") == 0
    # A reload keeps the tab signed in; another tab (a new session) starts signed out.
    page.reload()
    page.wait_for_selector("svg.lineage")
    other, _ = offline_page(browser, console.url)
    other.goto(f"{console.url}/console#/models")
    other.wait_for_selector("#api-key")
    # Signing out forgets the key.
    page.click("#who button")
    page.wait_for_selector("#api-key")
    assert page.evaluate("() => sessionStorage.length") == 0
    assert refused == []


def test_a_write_key_archives_and_unarchives_a_version_and_a_model(
    browser: Browser, console: Console
) -> None:
    model = unique("console-archive")
    seed(console.url, console.admin_key, model, units=2)
    page, refused = signed_in(browser, console, console.key("write"), f"#/models/{model}")
    page.wait_for_selector("#versions")
    # v1 is not production (v4 is): it can go.
    page.click("#versions tr[data-version='1'] button[data-archive=archive]")
    page.wait_for_selector("#versions tr[data-version='1']", state="detached")
    shown = page.locator("#versions tbody tr").evaluate_all("r => r.map(x => x.dataset.version)")
    assert "1" not in shown
    assert console.api(f"/models/{model}/versions/1")["archived_at"] is not None
    page.click("#toggle-archived")
    page.wait_for_selector("#versions tr[data-version='1'] .muted-badge")
    page.click("#versions tr[data-version='1'] button[data-archive=unarchive]")
    page.wait_for_selector("#versions tr[data-version='1'] button[data-archive=archive]")
    assert console.api(f"/models/{model}/versions/1")["archived_at"] is None
    # Production's version is refused, and the page says why.
    production = console.api(f"/models/{model}")["aliases"]["production"]
    page.click(f"#versions tr[data-version='{production}'] button[data-archive=archive]")
    page.wait_for_selector(f"#versions tr[data-version='{production}'] .error")
    assert (
        "in_use" in page.locator(f"#versions tr[data-version='{production}'] .error").inner_text()
    )

    test_id = console.api(f"/ab-tests?model={model}")["items"][0]["id"]
    stopped = httpx.post(
        f"{console.url}/api/v1/ab-tests/{test_id}/stop", headers=auth(console.admin_key)
    )
    assert stopped.status_code == 200, stopped.text
    page.reload()
    page.wait_for_selector("#archive-model")
    page.click("#archive-model button[data-archive=archive]")
    page.wait_for_selector("#archived-banner")
    page.goto(f"{console.url}/console#/models?search={model}")
    page.wait_for_selector("#model-count")
    assert page.locator("#models tbody tr").count() == 0
    page.check("#show-archived")
    page.click("form.search button")
    page.wait_for_selector(f"#models tr[data-model='{model}'] .muted-badge")
    page.click(f"#models a:text-is('{model}')")
    page.click("#archive-model button[data-archive=unarchive]")
    page.wait_for_selector("#archive-model button[data-archive=archive]")
    assert console.api(f"/models/{model}")["archived_at"] is None
    assert refused == []


def test_a_version_page_shows_its_signature_downloads_predicts_compares_and_is_edited(
    browser: Browser, console: Console
) -> None:
    model = console.data.model
    page, refused = signed_in(
        browser, console, console.key("write", "predict"), f"#/models/{model}"
    )
    page.wait_for_selector("#performance")
    points = page.locator("#performance g.point")
    assert points.evaluate_all("g => g.map(x => x.dataset.version)") == ["1", "2", "3", "4"]
    kinds = points.evaluate_all("g => g.map(x => x.dataset.kind)")
    assert kinds == ["baseline", "accepted", "rejected", "accepted"]
    assert page.locator("#performance text.production").count() == 2  # v2 and v4 held it
    assert page.locator("#performance text.production.current").count() == 1

    page.click("#versions a:text-is('v4')")
    page.wait_for_selector("#signature")
    assert page.url.endswith(f"#/models/{model}/versions/4")
    columns = page.locator("#signature tr[data-column]").evaluate_all(
        "rows => rows.map(r => r.dataset.column)"
    )
    assert columns == ["f0", "f1", "f2"]
    assert "accepted" in page.locator("#decision").inner_text()
    assert "0x" in page.locator("#version-contributors").inner_text()

    with page.expect_download() as downloading:
        page.click("#download-artifact")
    saved = downloading.value
    assert saved.suggested_filename == f"{model}-v4.tar.gz"
    with open(saved.path(), "rb") as handle:
        assert handle.read(2) == b"\x1f\x8b", "the artifact, a gzip archive"

    for column, value in zip(columns, ("0.1", "0.2", "0.3"), strict=True):
        page.fill(f"#try-prediction input[name={column}]", value)
    page.click("#try-prediction button")
    page.wait_for_selector("#try-answer code.prediction")
    assert page.locator("#try-answer").inner_text().startswith("v4 answers ")

    page.fill("#compare input[name=other]", "2")
    page.click("#compare button")
    page.wait_for_selector("#comparison-table tr[data-metric=accuracy]")
    compared = page.locator("#comparison-table tr[data-metric=accuracy]").inner_text()
    assert compared.split("\t") == ["accuracy", "0.8300", "0.8500", "+0.0200", "v4"]

    page.click("#edit-version summary")
    page.fill("#edit-version textarea[name=description]", "checked in the console")
    page.fill("#edit-version textarea[name=tags]", "stage=canary\nowner=console")
    page.click("#edit-version button[type=submit]")
    page.wait_for_selector("dd:has-text('checked in the console')")
    assert console.api(f"/models/{model}/versions/4")["tags"] == {
        "stage": "canary",
        "owner": "console",
    }
    assert refused == []
