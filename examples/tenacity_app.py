"""A client whose price service fails twice, then answers; it knows nothing about OpenTelemetry.

Run it under auto-instrumentation with the console exporters::

    opentelemetry-instrument --traces_exporter console --metrics_exporter console \
        python examples/tenacity_app.py

It prints one ``__main__.fetch_price`` operation span with three attempt spans as children (two
failed, each with a ``retry.backoff`` event, then one that succeeded), and the
``resilience.retry.*`` metrics when the SDK flushes them at exit.
"""

from __future__ import annotations

import logging

import tenacity

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
log = logging.getLogger("tenacity_app")


class PriceServiceDown(Exception):
    pass


class PriceService:
    """Stands in for a remote service that is down for its first ``outage`` requests."""

    def __init__(self, outage: int) -> None:
        self.outage = outage

    def price(self, item: str) -> str:
        if self.outage:
            self.outage -= 1
            raise PriceServiceDown(f"no price for {item}: service unavailable")
        return f"{item}: 4.20"


service = PriceService(outage=2)


@tenacity.retry(
    retry=tenacity.retry_if_exception_type(PriceServiceDown),
    stop=tenacity.stop_after_attempt(5),
    wait=tenacity.wait_fixed(0.1),
    before_sleep=tenacity.before_sleep_log(log, logging.INFO),
)
def fetch_price(item: str) -> str:
    return service.price(item)


if __name__ == "__main__":
    print(fetch_price("apple"))
    print("attempts:", fetch_price.statistics["attempt_number"])
