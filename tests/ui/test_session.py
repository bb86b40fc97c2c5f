import time

from fhir_server.ui.session import PendingLogin, SessionCookies, SignedIn, cookie_header, is_loopback_http


def _cookies(n: int = 1) -> SessionCookies:
    return SessionCookies(bytes([n]) * 32)


def test_a_sealed_sign_in_opens_only_under_the_same_key_and_unaltered():
    signed = SignedIn("token.value.sig", "Eva", time.time() + 60)
    sealed = _cookies().seal(signed)
    assert "token.value" not in sealed  # encrypted, not just signed
    assert _cookies().signed_in(sealed) == signed
    assert _cookies(2).signed_in(sealed) is None
    assert _cookies().signed_in(sealed[:-2] + ("AA" if sealed[-2:] != "AA" else "BB")) is None
    assert _cookies().signed_in(None) is None and _cookies().signed_in("garbage") is None


def test_an_ended_sign_in_is_no_sign_in():
    assert _cookies().signed_in(_cookies().seal(SignedIn("t", "Eva", time.time() - 1))) is None


def test_a_pending_login_is_not_a_sign_in_and_vice_versa():
    cookies = _cookies()
    pending = PendingLogin("state", "nonce", "verifier", "/ui/")
    assert cookies.pending(cookies.seal(pending)) == pending
    assert cookies.signed_in(cookies.seal(pending)) is None
    assert cookies.pending(cookies.seal(SignedIn("t", "Eva", time.time() + 60))) is None


def test_cookies_are_secure_except_over_plain_http_on_loopback():
    assert is_loopback_http("http://127.0.0.1:8080/ui") and is_loopback_http("http://localhost/ui")
    assert is_loopback_http("http://[::1]:8080/ui")
    assert not is_loopback_http("https://127.0.0.1/ui") and not is_loopback_http("http://evi.example.se/ui")
    header = cookie_header("evi_session", "v", path="/ui", secure=True, max_age=60)
    assert header == "evi_session=v; Path=/ui; Max-Age=60; HttpOnly; SameSite=Lax; Secure"
    assert "Max-Age=0" in cookie_header("evi_session", "", path="/ui", secure=False, max_age=-5)
