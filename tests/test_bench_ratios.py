"""`make bench`'s paired ratio (bench/run.py: paired): the service's rounds against the
plain app's, round by round. The figures are never asserted anywhere; this only checks the
arithmetic that reports them, since a 0.75x-1.09x spread between runs made the summary's
quartiles what the target is read from (docs/performance.md, stop 40)."""

from __future__ import annotations

from bench.run import paired


def rounds(*rps: float) -> list[dict]:
    return [{"rps": value} for value in rps]


def test_the_ratio_is_taken_round_by_round_with_its_quartiles_and_rounds_at_or_above_one():
    service = rounds(900, 1000, 800, 1200, 1100)
    plain = rounds(1000, 1000, 1000, 1000, 1000)
    # Ratios 0.9, 1.0, 0.8, 1.2, 1.1: median 1.0; three of five at or above 1.0.
    assert paired(service, plain) == "median 1.00x, quartiles 0.85-1.15, 3 of 5 rounds >= 1.0"


def test_pairs_are_by_position_not_by_sorted_rates():
    # The medians taken apart give 2000 / 1000 = 2.0x; round by round the ratios are
    # 1, 1, 0.5, 2 and 2, whose median is 1.0x.
    service = rounds(2000, 500, 500, 2000, 2000)
    plain = rounds(2000, 500, 1000, 1000, 1000)
    assert paired(service, plain) == "median 1.00x, quartiles 0.75-2.00, 4 of 5 rounds >= 1.0"


def test_too_few_rounds_for_quartiles_list_the_ratios():
    assert paired(rounds(500, 1500), rounds(1000, 1000)) == "median 1.00x (0.50, 1.50)"


def test_every_cpu_target_sends_ids_the_service_accepts():
    # `bench/cpu.py --compare-tree /tmp/before` names its target `at before`; its space
    # went into every ticket id, so that target's "creates" were all 422 quarantines.
    from bench.cpu import id_prefix
    from ingestion.normalize.values import ticket_id

    for target in ("service", "plain", "at before", "at v 41/x"):
        ticket = f"{id_prefix(target, 3)}-2999"
        assert ticket_id(ticket, "ticket.id") == ticket
