"""Reading a `/metrics` answer in tests: the sum of a sample's values over the series whose
labels include the given ones."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def sample_sum(body: str, name: str, **labels: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )
