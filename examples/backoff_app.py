"""A client whose stock service fails twice, then answers; it knows nothing about OpenTelemetry.

Run it under auto-instrumentation with the console exporters::

    opentelemetry-instrument --traces_exporter console --metrics_exporter console \
        python examples/backoff_app.py

It prints one ``__main__.fetch_stock`` operation span with three attempt spans as children (two
failed, each with a ``retry.backoff`` event, then one that succeeded), one ``__main__.poll_job``
operation that gives up on a job that never finishes (``failed_with_retry``, ``error.type``
``result``), and the ``resilience.retry.*`` metrics when the SDK flushes them at exit.
"""

from __future__ import annotations

import logging

import backoff

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")


class StockServiceDown(Exception):
    pass


class StockService:
    """Stands in for a remote service that is down for its first ``outage`` requests."""

    def __init__(self, outage: int) -> None:
        self.outage = outage

    def stock(self, item: str) -> str:
        if self.outage:
            self.outage -= 1
            raise StockServiceDown(f"no stock for {item}: service unavailable")
        return f"{item}: 12 in stock"


service = StockService(outage=2)


@backoff.on_exception(backoff.constant, StockServiceDown, interval=0.1, jitter=None, max_tries=5)
def fetch_stock(item: str) -> str:
    return service.stock(item)


@backoff.on_predicate(backoff.constant, interval=0.05, jitter=None, max_tries=3)
def poll_job(job: str) -> bool:
    return False  # never done: backoff gives up after 3 tries and returns the last value


if __name__ == "__main__":
    print(fetch_stock("apple"))
    print("job done:", poll_job("report"))
