"""Wrong passwords are counted per account from any address (username and email alike, known
and unknown names alike), and a device cookie keeps the owner's browser out of an attacker's
flood."""

from __future__ import annotations

import bisect

import httpx
import pytest
from conftest import make_service
from support import Clock, clock_fixture, make_clocked_service  # noqa: F401 (a fixture)
from test_app import PASSWORD, assert_problem, client_for, mounted, register

from s3auth_asgi import S3AuthService
from s3auth_asgi.app import DEFAULT_AUTH_LIMITS, create_auth_app
from s3auth_asgi.app.devices import DEVICE_COOKIE, DEVICE_HEADER, Device, DeviceCookies
from s3auth_asgi.ratelimit import RateLimit, RateLimiter
from s3auth_asgi.ratelimit.budget import FailureBudget, charge_budget, peek_budget
from s3auth_asgi.storage import ObjectStore

pytestmark = pytest.mark.anyio

PER_ACCOUNT = DEFAULT_AUTH_LIMITS["login_account"].max_requests
PER_DEVICE = DEFAULT_AUTH_LIMITS["login_device"].max_requests
WRONG = "Wrong123!"
ALICE_NAMES = ("username:alice", "email:alice@example.com")
"""alice's two names as `name_index.account_keys` gives them: her device cookie's tags."""


def shared_service(clock: Clock, **overrides: object) -> S3AuthService:
    """A service whose limits are in its (memory://) store, as on a fleet."""
    return make_clocked_service(
        clock=clock, store=ObjectStore.from_url("memory://"), rate_limit_store="store", **overrides
    )


def from_address(service: S3AuthService, ip: str, *, https: bool = False) -> httpx.AsyncClient:
    base_url = "https://testserver" if https else "http://testserver"
    return client_for(mounted(service, rate_limit=True), peer=(ip, 4000), base_url=base_url)


async def post_login(
    client: httpx.AsyncClient, name: str, password: str = WRONG, **headers: str
) -> httpx.Response:
    return await client.post(
        "/auth/login", data={"username": name, "password": password}, headers=headers
    )


async def flood(service: S3AuthService, name: str, attempts: int, first_ip: int = 1) -> list[int]:
    """Wrong passwords for `name`, each from a new address."""
    statuses = []
    for i in range(attempts):
        async with from_address(service, f"198.51.100.{first_ip + i}") as client:
            statuses.append((await post_login(client, name)).status_code)
    return statuses


async def owner_device(
    service: S3AuthService, name: str = "alice", password: str = PASSWORD
) -> str:
    """The device cookie value the owner's browser got at a successful login."""
    async with from_address(service, "192.0.2.10", https=True) as browser:
        response = await post_login(browser, name, password)
        assert response.status_code == 200
        value = browser.cookies.get(DEVICE_COOKIE)
    assert value
    return value


async def test_forty_addresses_get_ten_wrong_passwords_between_them(clock: Clock) -> None:
    service = shared_service(clock)
    async with from_address(service, "192.0.2.1") as client:
        await register(client, "alice")
    statuses = await flood(service, "alice", 40)
    assert statuses == [401] * PER_ACCOUNT + [429] * (40 - PER_ACCOUNT)
    # Nor does the right password get through from anywhere without a device cookie.
    async with from_address(service, "203.0.113.77") as client:
        refused = await post_login(client, "alice", PASSWORD)
    assert_problem(refused, 429, "rate_limited")
    assert int(refused.headers["retry-after"]) >= 1
    assert '"login_account";q=5;w=900' in refused.headers["ratelimit-policy"]
    # A full emission interval later, one more wrong password is heard.
    clock.advance(DEFAULT_AUTH_LIMITS["login_account"].emission_interval)
    assert await flood(service, "alice", 2, first_ip=100) == [401, 429]


async def test_username_and_email_are_one_account(clock: Clock) -> None:
    service = shared_service(clock)
    async with from_address(service, "192.0.2.1") as client:
        await register(client, "alice")
    half = PER_ACCOUNT // 2
    by_name = await flood(service, "ALICE", half)
    by_email = await flood(service, "Alice@Example.com", PER_ACCOUNT - half, first_ip=50)
    assert by_name + by_email == [401] * PER_ACCOUNT
    assert await flood(service, "alice", 1, first_ip=90) == [429]
    assert await flood(service, "alice@example.com", 1, first_ip=91) == [429]


async def test_an_unknown_account_is_refused_exactly_like_a_known_one(clock: Clock) -> None:
    service = shared_service(clock)
    async with from_address(service, "192.0.2.1") as client:
        await register(client, "alice")
    answers = {}
    for name in ("alice", "nobody"):
        assert await flood(service, name, PER_ACCOUNT) == [401] * PER_ACCOUNT
        async with from_address(service, "203.0.113.5") as client:
            service.store.reset_counts()
            response = await post_login(client, name)
            answers[name] = (
                response.status_code,
                response.content,
                sorted(response.headers.items()),
                dict(service.store.requests),
            )
    assert answers["alice"] == answers["nobody"]
    status, _, headers, requests = answers["nobody"]
    assert status == 429 and dict(headers)["retry-after"]
    # The name's index entry, then the budget it leads to (the account's, or for a name
    # that is nobody's, the name's own): the same requests either way.
    assert requests == {"get": 2}


async def test_the_answers_do_not_tell_whether_two_names_are_one_account(clock: Clock) -> None:
    # An account's two names share its budget, where a name that is nobody's has a budget
    # of its own: an answer that showed the account's count would tell whoever
    # fails under a username, then an email, whether they are one account's.
    service = shared_service(clock)
    async with from_address(service, "192.0.2.1") as client:
        await register(client, "alice")
    answers = {}
    for pair, ip in ((("alice", "alice@example.com"), "203.0.113.5"),
                     (("nobody", "nobody@example.com"), "203.0.113.6")):  # fmt: skip
        async with from_address(service, ip) as client:
            answers[pair[0]] = [
                (response.status_code, response.content, sorted(response.headers.items()))
                for response in [await post_login(client, name) for name in pair]
            ]
    assert answers["alice"] == answers["nobody"]
    assert [status for status, _, _ in answers["alice"]] == [401, 401]
    shown = dict(answers["alice"][1][2])
    assert shown["ratelimit"].startswith('"login";r=18;')  # the address's count, alone
    assert "login_account" not in shown["ratelimit-policy"]
    # Once the account's budget is spent, the refusal names it: it says when to come back.
    await flood(service, "alice", PER_ACCOUNT - 2, first_ip=20)
    async with from_address(service, "203.0.113.7") as client:
        refused = await post_login(client, "alice@example.com")
    assert_problem(refused, 429, "rate_limited")
    assert '"login_account";r=0;' in refused.headers["ratelimit"]


async def test_names_that_cannot_exist_are_throttled_too(clock: Clock) -> None:
    service = shared_service(clock)
    for name in ("x", "a b", "\u200bzero-width", "n" * 400):
        statuses = await flood(service, name, PER_ACCOUNT + 1)
        assert statuses == [401] * PER_ACCOUNT + [429], name


async def test_the_owner_logs_in_with_the_device_cookie_during_a_flood(clock: Clock) -> None:
    service = shared_service(clock)
    async with from_address(service, "192.0.2.1") as client:
        await register(client, "alice")
    device = await owner_device(service)
    assert await flood(service, "alice", PER_ACCOUNT + 5) == [401] * PER_ACCOUNT + [429] * 5
    async with from_address(service, "192.0.2.10") as owner:
        # Without the cookie the owner is refused like everyone else...
        assert_problem(await post_login(owner, "alice", PASSWORD), 429, "rate_limited")
        # ...with it, logs in: the device's budget is read instead of the account's.
        service.store.reset_counts()
        response = await post_login(owner, "alice", PASSWORD, Cookie=f"{DEVICE_COOKIE}={device}")
        assert response.status_code == 200
        assert response.headers["ratelimit-policy"] == '"login_device";q=5;w=900'
        # device, index, user; session, the user read back, and the login's audit event
        # after the answer
        assert dict(service.store.requests) == {"get": 4, "put": 2}
        # The same device is remembered, with a new expiry.
        (again,) = response.headers.get_list("set-cookie")
        assert again.startswith(f"{DEVICE_COOKIE}={device.rsplit('.', 2)[0]}.")


async def test_right_passwords_count_against_no_limit(clock: Clock) -> None:
    """A holder of accounts logs in to them as often as they like: what bounds how often
    those logins take the hash places kept for known devices is not the login limits but
    a budget of the hasher's own (tests/test_kept_places.py)."""
    service = shared_service(clock)
    async with from_address(service, "192.0.2.1") as client:
        await register(client, "alice")
    device = await owner_device(service)
    async with from_address(service, "192.0.2.10") as client:
        for shown in ({DEVICE_HEADER: device}, {}):
            statuses = [
                (await post_login(client, "alice", PASSWORD, **shown)).status_code
                for _ in range(3 * PER_ACCOUNT)
            ]
            assert statuses == [200] * (3 * PER_ACCOUNT)


async def test_wrong_passwords_with_a_device_count_against_that_device_only(clock: Clock) -> None:
    service = shared_service(clock)
    async with from_address(service, "192.0.2.1") as client:
        await register(client, "alice")
    device = await owner_device(service)
    async with from_address(service, "192.0.2.10") as client:
        shown = {DEVICE_HEADER: device}
        service.store.reset_counts()
        assert (await post_login(client, "alice", **shown)).status_code == 401
        # the device's PUT, and the failure's audit event
        assert dict(service.store.requests) == {"get": 3, "put": 2}
        statuses = [(await post_login(client, "alice", **shown)).status_code for _ in range(5)]
        assert statuses == [401] * (PER_DEVICE - 1) + [429]
        service.store.reset_counts()
        refused = await post_login(client, "alice", PASSWORD, **shown)
        assert_problem(refused, 429, "rate_limited")
        # The device's refusal just before is remembered: only the name's index is read.
        assert dict(service.store.requests) == {"get": 1}
        assert '"login_device"' in refused.headers["ratelimit-policy"]
    # The account's own budget was never touched.
    assert await flood(service, "alice", PER_ACCOUNT + 1) == [401] * PER_ACCOUNT + [429]


async def test_a_forged_expired_or_foreign_device_is_ignored(clock: Clock) -> None:
    service = shared_service(clock)
    async with from_address(service, "192.0.2.1") as client:
        await register(client, "alice")
        await register(client, "bob")
    alice = await owner_device(service, "alice")
    bob = await owner_device(service, "bob")
    await flood(service, "alice", PER_ACCOUNT)
    prefix, _, mac = alice.rpartition(".")
    user_id, device_id = alice.split(".")[1:3]
    alice_record = await service.get_user_by_id(user_id)
    assert alice_record is not None
    other_key = DeviceCookies(["another-secret-key-that-is-long-enough-0000"], clock=clock)
    forgeries = {
        "flipped MAC": f"{prefix}.{mac[::-1]}",
        "another account's": bob,
        "another key's": other_key.sign(Device(user_id, device_id), alice_record),
        "garbage": "d3.not-a-device",
        "the refresh token's name": "rt1." + alice[3:],
    }
    async with from_address(service, "203.0.113.8") as client:
        for label, value in forgeries.items():
            for headers in ({DEVICE_HEADER: value}, {"Cookie": f"{DEVICE_COOKIE}={value}"}):
                response = await post_login(client, "alice", PASSWORD, **headers)
                assert response.status_code == 429, label
        assert (await post_login(client, "alice", PASSWORD, **{DEVICE_HEADER: alice})).is_success
    # A year on, the cookie has expired (and the account's budget refilled: spend it again).
    clock.advance(DeviceCookies(service.settings.secret_keys).lifetime_seconds + 1)
    await flood(service, "alice", PER_ACCOUNT, first_ip=100)
    async with from_address(service, "203.0.113.8") as client:
        expired = await post_login(client, "alice", PASSWORD, **{DEVICE_HEADER: alice})
    assert expired.status_code == 429


async def test_a_name_that_changed_hands_gets_no_device(clock: Clock) -> None:
    """A cookie names the account by its names; the index must name the same user."""
    service = shared_service(clock)
    async with from_address(service, "192.0.2.1") as client:
        first = await register(client, "alice")
    device = await owner_device(service)
    assert await service.delete_user(first["id"])
    async with from_address(service, "192.0.2.1") as client:
        await register(client, "alice")  # someone else, under the same names
    assert await flood(service, "alice", PER_ACCOUNT) == [401] * PER_ACCOUNT
    async with from_address(service, "192.0.2.10") as client:
        refused = await post_login(client, "alice", PASSWORD, **{DEVICE_HEADER: device})
    assert_problem(refused, 429, "rate_limited")
    assert '"login_account"' in refused.headers["ratelimit-policy"]


@pytest.mark.parametrize(("root_path", "path"), [("", "/auth/login"), ("/api", "/api/auth/login")])
async def test_the_device_cookie_is_locked_down(root_path: str, path: str) -> None:
    service = make_service(rate_limit_store="store")
    app = mounted(service, rate_limit=True)
    async with client_for(app, base_url="https://testserver", root_path=root_path) as client:
        await register(client, "alice", prefix=f"{root_path}/auth")
        response = await client.post(
            f"{root_path}/auth/login", data={"username": "alice", "password": PASSWORD}
        )
    (header,) = response.headers.get_list("set-cookie")
    value, *attributes = (part.strip() for part in header.split(";"))
    name, _, device = value.partition("=")
    assert name == DEVICE_COOKIE and device.startswith("d4.")
    assert {"HttpOnly", "Secure", "SameSite=strict", f"Path={path}"} <= set(attributes)
    assert "Max-Age=31536000" in attributes
    assert device not in response.text  # never in a body a page script could read
    cookies = DeviceCookies(service.settings.secret_keys)
    alice = await service.get_user_by_username("alice")
    assert alice is not None
    for account_key in ALICE_NAMES:
        shown = cookies.verify(device, account_key)
        assert shown is not None and shown[:2] == (alice.id, device.split(".")[2])
        assert cookies.current(shown, alice)  # issued under the account's generation
    assert cookies.verify(device, "username:bob") is None


async def test_without_a_device_limit_the_cookie_is_set_and_its_failures_count_as_any() -> None:
    """The cookie also keeps hash places for its owner (tests/test_hash_queue.py), so it is
    set whatever the limits; without a device budget it spares nobody the account's."""
    limiter = RateLimiter({"login_account": RateLimit(5, 60)})
    for options in ({"rate_limit": False}, {"rate_limit": True, "limiter": limiter}):
        app = mounted(make_service(), **options)
        async with client_for(app, base_url="https://testserver") as client:
            await register(client, "alice")
            response = await post_login(client, "alice", PASSWORD)
            assert response.status_code == 200
            (cookie,) = response.headers.get_list("set-cookie")
            assert cookie.startswith(f"{DEVICE_COOKIE}=d4.")
            device = cookie.split(";")[0].split("=", 1)[1]
            statuses = [
                (await post_login(client, "alice", **{DEVICE_HEADER: device})).status_code
                for _ in range(6)
            ]
        assert statuses == ([401] * 6 if options["rate_limit"] is False else [401] * 5 + [429])


def test_the_device_header_is_in_the_openapi_document() -> None:
    document = create_auth_app(make_service(), rate_limit=False).openapi.for_mount("/auth")
    parameters = document["paths"]["/login"]["post"]["parameters"]
    (device,) = [p for p in parameters if p["name"] == DEVICE_HEADER]
    assert device["in"] == "header" and device["required"] is False
    assert "s3auth_device" in device["description"]


def test_the_default_account_limits_bound_any_15_minutes_and_any_day() -> None:
    """An attacker trying every 10 seconds for a day, every try a wrong password: no 15
    minutes see more than 10 counted, no 24 hours more than 100 (the stated defaults)."""
    budget = FailureBudget(
        "login.account",
        {name: DEFAULT_AUTH_LIMITS[name] for name in ("login_account", "login_account_daily")},
    )
    tats: dict[str, float] = {}
    counted: list[float] = []
    start = 1_800_000_000.0
    for step in range(2 * 86400 // 10):
        now = start + 10 * step
        if all(d.allowed for d in peek_budget(tats, now, budget)):
            kept, _ = charge_budget(tats, now, budget)
            assert kept is not None
            tats = kept
            counted.append(now)
    for window, most in ((900, 10), (86400, 100)):
        worst = max(bisect.bisect_left(counted, t + window) - i for i, t in enumerate(counted))
        assert worst <= most, (window, worst)
    assert len(counted) > 100  # the limit is not a lockout: tries keep being heard


async def test_a_login_another_site_made_sets_no_device_cookie(clock: Clock) -> None:
    # API mode checks no origin, but a login CSRF (into an account of the attacker's) would
    # replace the owner's device cookie, and with it the owner's way in during a flood.
    service = shared_service(clock)
    async with from_address(service, "192.0.2.1", https=True) as client:
        await register(client, "mallory")
        cross_site = await post_login(
            client,
            "mallory",
            PASSWORD,
            Origin="https://evil.example",
            **{"Sec-Fetch-Site": "cross-site"},
        )
        assert cross_site.status_code == 200  # answered: API mode refuses nothing
        assert DEVICE_COOKIE not in cross_site.headers.get("set-cookie", "")
        other_origin = await post_login(client, "mallory", PASSWORD, Origin="https://evil.example")
        assert DEVICE_COOKIE not in other_origin.headers.get("set-cookie", "")
        for headers in ({"Sec-Fetch-Site": "same-origin"}, {}):  # the app's page; curl
            own = await post_login(client, "mallory", PASSWORD, **headers)
            assert own.status_code == 200
            assert DEVICE_COOKIE in own.headers["set-cookie"], headers


async def test_devices_from_before_a_new_password_get_no_budget_of_their_own(clock: Clock) -> None:
    # Whoever knew the old password could log in as often as they liked, a new device each
    # time: were those devices still good, each would bring its own budget of guesses at
    # the new one, beyond the account's.
    service = shared_service(clock)
    async with from_address(service, "192.0.2.1") as client:
        owner = await register(client, "alice")
    stolen = [await owner_device(service) for _ in range(4)]
    await service.change_password(owner["id"], PASSWORD, "Brand-new-pass-7")
    statuses = []
    for i, device in enumerate(stolen):
        async with from_address(service, f"198.51.100.{i + 1}") as client:
            for _ in range(3):
                response = await post_login(client, "alice", WRONG, **{DEVICE_HEADER: device})
                statuses.append(response.status_code)
    # Counted against the account, as if shown no device: its budget, then refusals.
    assert statuses == [401] * PER_ACCOUNT + [429] * (12 - PER_ACCOUNT)
    # Once the budget refills, the owner's login with the new password sets a device
    # cookie that holds again through a flood.
    clock.advance(DEFAULT_AUTH_LIMITS["login_account_daily"].window_seconds)
    fresh = await owner_device(service, password="Brand-new-pass-7")
    await flood(service, "alice", PER_ACCOUNT, first_ip=50)
    async with from_address(service, "203.0.113.9") as client:
        kept = await post_login(client, "alice", "Brand-new-pass-7", **{DEVICE_HEADER: fresh})
    assert kept.status_code == 200


async def test_a_device_cookie_tossed_beside_the_owners_does_not_lock_the_owner_out(
    clock: Clock,
) -> None:
    # Another host of the site can set a cookie of the same name for the whole domain and
    # the login's path (cookie tossing), which the browser sends beside the owner's: the
    # owner's must still be found, whatever the order, and the other one must not count.
    service = shared_service(clock)
    async with from_address(service, "192.0.2.1") as client:
        await register(client, "alice")
        await register(client, "mallory")
    device = await owner_device(service)
    tossed = await owner_device(service, "mallory")
    assert await flood(service, "alice", PER_ACCOUNT) == [401] * PER_ACCOUNT
    sent = {
        "the owner's, then a tossed one": f"{DEVICE_COOKIE}={device}; {DEVICE_COOKIE}={tossed}",
        "a tossed one first": f"{DEVICE_COOKIE}={tossed}; {DEVICE_COOKIE}={device}",
        "a broken one tossed": f"{DEVICE_COOKIE}={device}; {DEVICE_COOKIE}=d3.garbage",
    }
    async with from_address(service, "192.0.2.10") as owner:
        for label, cookie in sent.items():
            service.store.reset_counts()
            response = await post_login(owner, "alice", PASSWORD, Cookie=cookie)
            assert response.status_code == 200, label
            assert response.headers["ratelimit-policy"] == '"login_device";q=5;w=900', label
            # device, index, user; session, the user read back, and the login's audit
            # event after the answer
            assert dict(service.store.requests) == {"get": 4, "put": 2}, label
            (again,) = response.headers.get_list("set-cookie")
            assert again.startswith(f"{DEVICE_COOKIE}={device.rsplit('.', 2)[0]}."), label
        # Only the tossed ones: a device of another account's counts as none.
        refused = await post_login(owner, "alice", PASSWORD, Cookie=f"{DEVICE_COOKIE}={tossed}")
        assert_problem(refused, 429, "rate_limited")
