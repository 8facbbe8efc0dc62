"""Routing and fault handling for served generation: endpoint health, adaptive concurrency, retry delays.

Pure asyncio logic with no HTTP, so it is tested on its own and shared by every served engine.

- **Least in-flight first.** A request goes to the healthy endpoint with the fewest requests in flight.
- **Adaptive concurrency (AIMD).** Each endpoint starts at ``max_concurrency``. A 429 cuts its limit to three
  quarters (at most once per cool-down); every ``limit`` successes in a row add one back, up to the maximum.
- **Circuit breaker.** ``fail_threshold`` failures in a row (connection, timeout, 5xx, malformed body) take an
  endpoint out of rotation for a cool-down that doubles up to ``max_cooldown``. After it, one probe request is let
  through: a success puts the endpoint back, a failure opens the circuit again.
- **The same error everywhere.** When most of the last requests (at least 6 of up to 20), for at least two
  prompts, got the very same 5xx answer (a model that cannot serve the request, a wrong route), retrying cannot help: the next request stops the
  run with the server's words. 503s and 429s (a server busy or loading) never count.
- **A fleet that changes.** :meth:`Router.update` takes a new list of endpoints while requests run: new ones join at
  once; one that leaves takes no new request and goes when its requests in flight are done.
- **Retry delays.** Exponential backoff with equal jitter (uniform between half the ceiling and the ceiling), or the server's ``Retry-After`` when it gives one.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections import Counter, deque
from dataclasses import dataclass, field

from medsyn.errors import BackendError, EndpointsUnavailableError

__all__ = ["EndpointState", "Router", "backoff_delay"]


def backoff_delay(retry: int, base: float = 0.5, cap: float = 8.0, retry_after: float | None = None) -> float:
    """Seconds to wait before retry number ``retry`` (0-based): ``Retry-After`` if given, else jittered backoff.

    Example:
        >>> 0.25 <= backoff_delay(0) <= 0.5 and backoff_delay(0, retry_after=3.0) == 3.0
        True
    """
    if retry_after is not None and retry_after >= 0:
        return min(float(retry_after), 60.0)
    ceiling = min(cap, base * 2**retry)
    return random.uniform(ceiling / 2, ceiling)


@dataclass
class EndpointState:
    """One served endpoint as the router sees it."""

    url: str
    max_concurrency: int
    fail_threshold: int = 3
    cooldown: float = 2.0
    max_cooldown: float = 60.0
    overload_cooldown: float = 2.0
    limit: float = field(init=False)
    in_flight: int = 0
    consecutive_failures: int = 0
    successes_in_a_row: int = 0
    down_until: float = 0.0
    probing: bool = False
    last_cut: float = -1e9
    next_cooldown: float = field(init=False)
    ok: int = 0
    answered: bool = False  # any HTTP answer at all, even an error: the URL points at a server
    failed: int = 0
    overloaded: int = 0
    last_error: str = ""
    removed: bool = False  # left the fleet: takes no new request, and goes once its requests in flight are done

    def __post_init__(self) -> None:
        self.limit = float(self.max_concurrency)
        self.next_cooldown = self.cooldown

    @property
    def down(self) -> bool:
        return self.down_until > 0

    def can_take(self, now: float) -> bool:
        """Whether a new request may go here now."""
        if self.removed:
            return False
        if self.down:
            # half-open: once the cool-down is over, exactly one probe request at a time
            return now >= self.down_until and not self.probing and self.in_flight == 0
        return self.in_flight < max(1, int(self.limit))

    def on_success(self) -> None:
        self.ok += 1
        self.consecutive_failures = 0
        if self.down:
            self.down_until, self.probing, self.next_cooldown = 0.0, False, self.cooldown
        self.successes_in_a_row += 1
        if self.successes_in_a_row >= max(1, int(self.limit)) and self.limit < self.max_concurrency:
            self.limit = min(self.max_concurrency, self.limit + 1)
            self.successes_in_a_row = 0

    def on_overload(self, now: float) -> None:
        """A 429: the engine is full. Cut concurrency, but not again within the cool-down."""
        self.overloaded += 1
        self.successes_in_a_row = 0
        if now - self.last_cut >= self.overload_cooldown:
            self.limit = max(1.0, self.limit * 0.75)
            self.last_cut = now

    def on_failure(self, now: float, error: str) -> None:
        self.failed += 1
        self.successes_in_a_row = 0
        self.consecutive_failures += 1
        self.last_error = error
        if self.down or self.consecutive_failures >= self.fail_threshold:
            self.down_until = now + self.next_cooldown
            self.next_cooldown = min(self.max_cooldown, self.next_cooldown * 2)
            self.probing = False

    def on_neutral(self) -> None:
        """A request that ended without saying anything about the endpoint's health (a 4xx, a cancel)."""
        if self.down:
            self.probing = False


class Router:
    """Hands out endpoints to requests: least in-flight first among those that can take one.

    Args:
        endpoints: the endpoints.
        give_up_after: seconds with every endpoint out of rotation before :meth:`acquire` raises.
    """

    def __init__(
        self,
        endpoints: list[EndpointState],
        give_up_after: float = 300.0,
        same_error_window: int = 20,
        same_error_share: float = 0.8,
        same_error_min: int = 6,
    ) -> None:
        if not endpoints:
            raise BackendError("no endpoint given; pass --endpoint URL (repeatable) or a file of URLs")
        self.endpoints = endpoints
        self.retired: list[EndpointState] = []  # endpoints that left the fleet, for the summary
        self.give_up_after = give_up_after
        self.same_error_share = same_error_share
        self.same_error_min = same_error_min
        self._changed: asyncio.Condition | None = None
        self._all_down_since: float | None = None
        # (error signature or None for any other outcome, request key, endpoint, error) of the latest requests
        self._recent: deque[tuple[str | None, object, str, str]] = deque(maxlen=same_error_window)
        self._stop: str | None = None

    def rebind(self) -> None:
        """Forget the condition made on an earlier event loop (a new ``asyncio.run``)."""
        self._changed = None

    def _condition(self) -> asyncio.Condition:
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    def pick(self, now: float) -> EndpointState | None:
        """The endpoint a request would get now, or ``None`` if none can take one."""
        best, best_key = None, (0.0, 0)
        for e in self.endpoints:  # one pass, no list: this runs for every request, over every endpoint
            if e.can_take(now):
                key = (e.in_flight / max(e.limit, 1.0), e.in_flight)
                if best is None or key < best_key:
                    best, best_key = e, key
        return best

    async def acquire(self) -> EndpointState:
        """Wait for an endpoint that can take a request and count the request in flight there."""
        changed = self._condition()
        async with changed:
            while True:
                if self._stop is not None:
                    raise EndpointsUnavailableError(self._stop)
                now = time.monotonic()
                endpoint = self.pick(now)
                if endpoint is not None:
                    endpoint.in_flight += 1
                    if endpoint.down:
                        endpoint.probing = True
                    self._all_down_since = None
                    return endpoint
                active = [e for e in self.endpoints if not e.removed]
                if all(e.down for e in active):
                    self._all_down_since = self._all_down_since or now
                    # Endpoints that have never answered are a wrong URL or a server that is not up: say so now
                    # rather than after the cool-downs. A fleet with no endpoint left waits for one to join.
                    never_answered = bool(active) and not any(e.answered for e in [*active, *self.retired])
                    if never_answered or now - self._all_down_since > self.give_up_after:
                        errors = "; ".join(f"{e.url}: {e.last_error}" for e in active) or "the fleet lists none"
                        how = (
                            "no endpoint answered"
                            if never_answered
                            else f"every endpoint failed for {self.give_up_after:.0f} s"
                        )
                        raise EndpointsUnavailableError(
                            f"{how} ({errors}); check the URL and that the server is up, "
                            "then run the same command again to resume"
                        )
                wake = [e.down_until - now for e in self.endpoints if e.down and e.down_until > now]
                try:
                    await asyncio.wait_for(changed.wait(), timeout=min(wake) if wake else 1.0)
                except asyncio.TimeoutError:
                    pass

    async def release(
        self, endpoint: EndpointState, outcome: str, error: str = "", answered: bool = True, key: object = None
    ) -> None:
        """Count a request as finished: ``ok``, ``overload`` (429), ``failure`` or ``neutral``.

        ``answered`` is false when no HTTP answer came back (refused or dropped connection, timeout). ``error`` is
        ``"kind: message"``; ``key`` tells requests for different prompts apart.
        """
        now = time.monotonic()
        self._watch(endpoint.url, outcome, error, key)
        endpoint.in_flight -= 1
        endpoint.answered = endpoint.answered or answered
        if outcome == "ok":
            endpoint.on_success()
        elif outcome == "overload":
            endpoint.on_overload(now)
        elif outcome == "failure":
            endpoint.on_failure(now, error)
        else:
            endpoint.on_neutral()
        if endpoint.removed and endpoint.in_flight == 0 and endpoint in self.endpoints:
            self.endpoints.remove(endpoint)  # drained
            self.retired.append(endpoint)
        changed = self._condition()
        async with changed:
            changed.notify_all()

    def update(self, fleet: dict[str, int]) -> tuple[list[str], list[str]]:
        """Take the fleet ``{url: max in flight}``: new endpoints join at once, endpoints left out take no new
        request and go once their requests in flight are done (a request that then fails is retried on the others).

        Returns the URLs that joined and those that left.
        """
        known = {e.url: e for e in [*self.retired, *self.endpoints]}
        joined = [u for u in fleet if u not in known or known[u].removed]
        left = [e.url for e in self.endpoints if e.url not in fleet and not e.removed]
        for url, limit in fleet.items():
            state = known.get(url)
            if state is None:
                self.endpoints.append(EndpointState(url, limit))
                continue
            if state in self.retired:
                self.retired.remove(state)
                self.endpoints.append(state)
            state.removed = False
            if state.max_concurrency != limit:
                state.max_concurrency, state.limit = limit, min(state.limit, float(limit))
        for state in [e for e in self.endpoints if e.url in left]:
            state.removed = True
            if state.in_flight == 0:
                self.endpoints.remove(state)
                self.retired.append(state)
        if self._changed is not None:
            asyncio.get_running_loop().create_task(self._notify())
        return joined, left

    @property
    def capacity(self) -> int:
        """Requests in flight the fleet takes at most: the endpoints' limits, those leaving left out."""
        return sum(e.max_concurrency for e in self.endpoints if not e.removed)

    async def _notify(self) -> None:
        changed = self._condition()
        async with changed:
            changed.notify_all()

    def _watch(self, url: str, outcome: str, error: str, key: object) -> None:
        """Note the outcome; stop the run when one 5xx answer (not 503) fills most of the recent window."""
        kind = error.split(":", 1)[0]
        same = outcome == "failure" and kind.startswith("http_5") and kind != "http_503"
        signature = f"{url} {re.sub(r'[0-9]+', '#', error)}" if same else None
        self._recent.append((signature, key, url, error))
        if self._stop is not None or len(self._recent) < self.same_error_min:
            return
        (top, count), *_ = Counter(s for s, *_ in self._recent).most_common(1)
        keys = {k for s, k, *_ in self._recent if s == top}
        if top is None or count < self.same_error_share * len(self._recent) or len(keys) < 2:
            return
        _, _, where, words = next(item for item in reversed(self._recent) if item[0] == top)
        self._stop = (
            f"{where} answered {count} of the last {len(self._recent)} requests with the same error, so retrying "
            f"cannot help: {words.split(': ', 1)[-1][:220]}. Check that the server serves this model on this "
            "route (its log says more), then run the same command again to resume"
        )

    def summary(self) -> list[dict[str, object]]:
        """Per-endpoint counters for the run's log and summary."""
        return [
            {
                "url": e.url,
                "ok": e.ok,
                "failed": e.failed,
                "overloaded": e.overloaded,
                "limit": int(e.limit),
                "down": e.down,
            }
            for e in [*self.endpoints, *self.retired]
        ]
