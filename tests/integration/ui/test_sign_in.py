"""Signing in to the dashboard with auth on (domain.md §5, §9): an unauthenticated visit
is sent to the region's OpenID Connect provider (a test provider on loopback) and comes
back signed in; the authorization code flow carries PKCE (S256), state and nonce; the
session cookie is HttpOnly and SameSite=Lax; what a person sees follows their role."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.integration.ui.conftest import new_browser, ui_url
from tests.support.auth import auth_server
from tests.support.evi import TEST_REGION, load_examples
from tests.support.live_server import LiveServer
from tests.support.oidc_provider import OidcProvider

EVI_VGR_HSA = "SE2321000131-E000000000101"


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """A store holding the examples (loaded with auth off), for servers with auth on."""
    db = tmp_path_factory.mktemp("ui-auth") / "evi.db"
    with LiveServer(storage=f"sqlite://{db}", region_file=str(TEST_REGION)) as live:
        with httpx.Client(base_url=live.base_url, timeout=30) as client:
            load_examples(client)
    return db


@pytest.fixture
def signed_in_server(stored, tmp_path):
    with OidcProvider(person={"hsa_id": "SE2321000131-P000000000001", "role": "evi", "name": "Eva Evisson",
                              "care_unit": EVI_VGR_HSA}) as idp:
        with auth_server(tmp_path, [], storage=f"sqlite://{stored}", region_file=str(TEST_REGION),
                         **idp.settings()) as live:
            yield live, idp


def _signed_out(browser) -> bool:
    found = browser.find_elements(By.CSS_SELECTOR, "[role=status]")
    return bool(found) and "utloggad" in found[0].text


def test_an_unauthenticated_visit_goes_to_the_provider_and_comes_back_signed_in(signed_in_server):
    live, idp = signed_in_server
    browser = new_browser()
    try:
        browser.get(ui_url(live) + "/?enhet=evi-vgr")
        # back from the provider, on the page first asked for
        assert urlsplit(browser.current_url).path == "/ui/" and "enhet=evi-vgr" in browser.current_url
        assert "Inloggad: Eva Evisson" in browser.find_element(By.CSS_SELECTOR, "form.who").text
        assert browser.find_elements(By.CSS_SELECTOR, "table.queue tbody tr[data-task]")
        asked = idp.authorizations[-1]
        assert asked["code_challenge_method"] == "S256" and asked["state"] and asked["nonce"]
        assert asked["redirect_uri"] == ui_url(live) + "/inloggad"
        assert idp.token_requests[-1]["code_verifier"]
        cookie = browser.get_cookie("evi_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["path"] == "/ui"
        # signing out ends it: the next visit goes to the provider again
        browser.find_element(By.CSS_SELECTOR, "form.who button").click()
        # the click returns before the next page may have loaded (seen under load in CI)
        WebDriverWait(browser, 20).until(_signed_out)
        assert browser.get_cookie("evi_session") is None
        before = len(idp.authorizations)
        browser.get(ui_url(live) + "/")
        assert len(idp.authorizations) == before + 1
    finally:
        browser.quit()


def _start(live) -> tuple[httpx.Client, str]:
    """A visit without a sign-in: the redirect to the provider (not followed)."""
    client = httpx.Client(timeout=30)
    first = client.get(ui_url(live) + "/")
    assert first.status_code == 303 and first.headers["location"].startswith("/ui/logga-in?")
    login = client.get(ui_url(live) + first.headers["location"].removeprefix("/ui"))
    assert login.status_code == 303
    cookie = login.headers["set-cookie"]
    assert "evi_login=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain http on loopback only (docs/ui.md)
    return client, login.headers["location"]


def test_a_callback_with_another_state_is_refused(signed_in_server):
    live, idp = signed_in_server
    client, to_provider = _start(live)
    back = httpx.get(to_provider, timeout=30)
    target = back.headers["location"]
    code = parse_qs(urlsplit(target).query)["code"][0]
    forged = client.get(ui_url(live) + "/inloggad", params={"code": code, "state": "not-the-state"})
    assert forged.status_code == 400 and "evi_session" not in forged.headers.get("set-cookie", "")
    # without the login cookie (another browser) the right state is refused too
    other = httpx.get(target, timeout=30)
    assert other.status_code == 400


def test_the_session_cookie_cannot_be_forged_or_altered(signed_in_server):
    live, _ = signed_in_server
    client, to_provider = _start(live)
    back = httpx.get(to_provider, timeout=30)
    done = client.get(back.headers["location"])
    assert done.status_code == 303 and done.headers["location"] == "/ui/"
    assert client.get(ui_url(live) + "/").status_code == 200
    session = client.cookies.get("evi_session")
    tampered = session[:-6] + ("A" if session[-6] != "A" else "B") + session[-5:]
    stranger = httpx.get(ui_url(live) + "/", cookies={"evi_session": tampered}, timeout=30)
    assert stranger.status_code == 303  # sent to sign in, nothing shown


def test_a_nonce_mismatch_refuses_the_sign_in(signed_in_server, monkeypatch):
    live, idp = signed_in_server
    client, to_provider = _start(live)
    parts = urlsplit(to_provider)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query["nonce"] = "another-nonce"  # the provider signs a nonce the sign-in did not ask for
    status, out = idp.authorize(query)
    assert status == 302
    answer = client.get(out["Location"])
    assert answer.status_code == 401 and "nonce" in answer.text


def _signed_in_client(live) -> httpx.Client:
    client, to_provider = _start(live)
    back = httpx.get(to_provider, timeout=30)
    assert client.get(back.headers["location"]).status_code == 303
    return client


def test_pages_show_only_what_the_persons_role_may_see(signed_in_server):
    """The access policy of domain.md §5 applies to the pages as to the API: a BUP clinic's
    person sees a referral it is asked to take, but not EVI's intake Tasks."""
    live, idp = signed_in_server
    idp.person = {"hsa_id": "SE2321000131-P000000000002", "role": "care-unit", "name": "Bo Bupsson",
                  "care_unit": "SE2321000131-E000000000201"}
    client = _signed_in_client(live)
    queue = client.get(ui_url(live) + "/")
    assert queue.status_code == 200 and "data-task=" not in queue.text and "Inloggad: Bo Bupsson" in queue.text
    page = client.get(ui_url(live) + "/remiss/referral-general-ella")
    assert page.status_code == 200 and "Ella" in page.text
    assert "Ingen mottagningsuppgift" in page.text  # the intake Task is EVI's
    hidden = client.get(ui_url(live) + "/remiss/self-referral-maja")
    assert hidden.status_code == 404
    # an EVI person sees both
    idp.person = {"hsa_id": "SE2321000131-P000000000001", "role": "evi", "name": "Eva Evisson",
                  "care_unit": EVI_VGR_HSA}
    evi = _signed_in_client(live)
    assert evi.get(ui_url(live) + "/remiss/self-referral-maja").status_code == 200
    assert "data-task=" in evi.get(ui_url(live) + "/").text


def test_a_person_of_an_evi_unit_starts_on_their_units_queue(signed_in_server):
    live, idp = signed_in_server
    client = _signed_in_client(live)  # Eva, of Organization/evi-vgr
    own = client.get(ui_url(live) + "/")
    assert '<option value="evi-vgr" selected>' in own.text
    every = client.get(ui_url(live) + "/", params={"enhet": ""})
    assert '<option value="" ' not in every.text and "selected>" not in every.text
