import asyncio
import time

import pytest

from medsyn.backends.routing import EndpointState, Router, backoff_delay
from medsyn.errors import EndpointsUnavailableError


def test_backoff_honours_retry_after_and_grows_with_jitter():
    assert backoff_delay(3, retry_after=2.0) == 2.0
    delays = [backoff_delay(k, base=0.5, cap=8.0) for k in range(8) for _ in range(20)]
    assert all(0.25 <= d <= 8.0 for d in delays)
    assert max(backoff_delay(0) for _ in range(50)) <= 0.5 < min(backoff_delay(3) for _ in range(50))


def test_concurrency_is_cut_on_429_and_grows_back():
    e = EndpointState("http://a", max_concurrency=16, overload_cooldown=2.0)
    e.on_overload(now=100.0)
    assert int(e.limit) == 12
    e.on_overload(now=100.5)  # within the cool-down: one cut per burst of 429s
    assert int(e.limit) == 12
    e.on_overload(now=103.0)
    assert int(e.limit) == 9
    for _ in range(9):
        e.on_success()
    assert int(e.limit) == 10
    for _ in range(200):
        e.on_success()
    assert e.limit == 16


def test_circuit_opens_after_failures_and_closes_after_a_good_probe():
    e = EndpointState("http://a", max_concurrency=4, fail_threshold=3, cooldown=1.0)
    for _ in range(3):
        e.on_failure(now=10.0, error="connection")
    assert e.down and not e.can_take(10.5)
    assert e.can_take(11.1)  # half-open: one probe
    e.in_flight, e.probing = 1, True
    assert not e.can_take(11.2)
    e.in_flight = 0
    e.on_failure(now=11.3, error="connection")  # the probe failed: open again, for longer
    assert e.down and not e.can_take(12.5) and e.can_take(13.4)
    e.on_success()
    assert not e.down and e.can_take(13.5)


def test_router_sends_to_the_least_loaded_endpoint():
    async def run():
        router = Router([EndpointState("http://a", 4), EndpointState("http://b", 4)])
        got = [await router.acquire() for _ in range(4)]
        assert [e.url for e in got] == ["http://a", "http://b", "http://a", "http://b"]
        await router.release(got[0], "ok")
        assert (await router.acquire()).url == "http://a"

    asyncio.run(run())


def test_router_waits_for_a_free_slot():
    async def run():
        router = Router([EndpointState("http://a", 1)])
        first = await router.acquire()

        async def later():
            await asyncio.sleep(0.1)
            await router.release(first, "ok")

        started = time.monotonic()
        asyncio.get_running_loop().create_task(later())
        second = await router.acquire()
        assert second is first and time.monotonic() - started >= 0.09

    asyncio.run(run())


def test_router_gives_up_on_endpoints_that_never_answered():
    async def run():
        router = Router([EndpointState("http://a", 2, fail_threshold=2)])
        for _ in range(2):
            e = await router.acquire()
            await router.release(e, "failure", "connection: refused", answered=False)
        with pytest.raises(EndpointsUnavailableError, match="http://a: connection: refused"):
            await asyncio.wait_for(router.acquire(), timeout=5)

    asyncio.run(run())


def _fail_many(router, n, error, keys):
    async def run():
        for i in range(n):
            e = await router.acquire()
            await router.release(e, "failure", error, key=keys[i % len(keys)])

    asyncio.run(run())


def test_the_same_5xx_for_several_prompts_stops_the_next_request():
    router = Router([EndpointState("http://a", 64, fail_threshold=1000)])
    _fail_many(router, 6, "http_500: HTTP 500: {'error': 'no chat template'}", keys=[1, 2, 3])
    with pytest.raises(
        EndpointsUnavailableError, match="http://a answered 6 of the last 6 requests.*no chat template"
    ):
        asyncio.run(router.acquire())


@pytest.mark.parametrize(
    "error, keys",
    [
        ("http_503: HTTP 503: loading", [1, 2, 3]),  # busy or loading: always retried
        ("timeout: no answer within 5 s", [1, 2, 3]),
        ("http_500: HTTP 500: boom", [1]),  # one prompt that the model cannot take is that task's failure
    ],
)
def test_errors_that_retrying_can_fix_never_stop_the_run(error, keys):
    router = Router([EndpointState("http://a", 64, fail_threshold=1000)])
    _fail_many(router, 20, error, keys)
    asyncio.run(router.acquire())


def test_different_5xx_bodies_and_successes_keep_the_run_going():
    router = Router([EndpointState("http://a", 64, fail_threshold=1000)])

    async def run():
        for i in range(40):
            e = await router.acquire()
            if i % 3 == 0:
                await router.release(e, "ok", key=i)
            else:
                await router.release(e, "failure", f"http_500: HTTP 500: worker {chr(97 + i % 20)} crashed", key=i)

    asyncio.run(run())  # no two failures in a row say the same thing: retried as before


def test_endpoints_join_and_leave_a_running_router():
    async def run():
        router = Router([EndpointState("http://a", 2)])
        first = await router.acquire()
        joined, left = router.update({"http://b": 3})
        assert joined == ["http://b"] and left == ["http://a"] and router.capacity == 3
        assert {(await router.acquire()).url for _ in range(3)} == {"http://b"}  # a takes nothing new
        assert [e.url for e in router.endpoints] == ["http://a", "http://b"]  # a drains its request in flight
        await router.release(first, "ok")
        assert [e.url for e in router.endpoints] == ["http://b"]
        assert [s["url"] for s in router.summary()] == ["http://b", "http://a"] and router.summary()[1]["ok"] == 1
        router.update({"http://a": 1, "http://b": 3})  # and comes back
        assert router.capacity == 4 and not router.endpoints[-1].removed

    asyncio.run(run())


def test_an_empty_fleet_waits_for_an_endpoint_to_join():
    async def run():
        router = Router([EndpointState("http://a", 1)], give_up_after=5.0)
        router.endpoints[0].answered = True
        router.update({})
        waiting = asyncio.create_task(router.acquire())
        await asyncio.sleep(0.05)
        assert not waiting.done()  # no "no endpoint answered": engines may be starting
        router.update({"http://b": 1})
        assert (await asyncio.wait_for(waiting, 2.0)).url == "http://b"

    asyncio.run(run())
