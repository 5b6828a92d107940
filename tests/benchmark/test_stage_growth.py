import pytest

from recpipe.tasks.benchmark.stage_growth import exponent, growth_markdown, stage_growth


def _report(events, total, stages, floors):
    return {
        "totals": {"events_landed": events, "wall_s": total},
        "stages": [{"stage": name, "wall_s": wall, "floor": floor} for name, wall, floor in stages],
        "floors": {name: {"wall_s": wall} for name, wall in floors.items()},
    }


def test_each_stage_grows_beside_its_floor():
    small = _report(
        1_000,
        10.0,
        [("ingest", 2.0, "copy"), ("features", 4.0, None), ("only_small", 1.0, None)],
        {"copy": 1.0},
    )
    big = _report(
        8_000, 80.0, [("ingest", 16.0, "copy"), ("features", 128.0, None)], {"copy": 32.0}
    )
    events, rows = stage_growth([small, big])
    assert events == [1_000, 8_000]
    by = {r.stage: r for r in rows}
    assert set(by) == {"total", "ingest", "features"}  # a stage missing from one report is left out
    assert by["total"].exponent == pytest.approx(1.0)
    assert by["ingest"].exponent == pytest.approx(1.0)
    assert by["ingest"].floor == "copy" and by["ingest"].floor_s == [1.0, 32.0]
    assert by["ingest"].floor_exponent == pytest.approx(5 / 3)  # 32x for 8x the events
    assert by["features"].exponent == pytest.approx(5 / 3)
    assert by["features"].floor is None and by["features"].floor_exponent is None
    md = growth_markdown(["small", "big"], [small, big])
    assert "| ingest | 2.00 | 16.00 | 1.00 | copy | 1.00, 32.00 | 1.67 |" in md


def test_exponent_needs_two_sizes():
    assert exponent([10.0], [1.0]) is None
    assert exponent([10.0, 10.0], [1.0, 2.0]) is None
    assert exponent([10.0, 100.0], [1.0, 0.0]) is None  # a zero time is not a point
    assert exponent([1.0, 10.0, 100.0], [2.0, 20.0, 200.0]) == pytest.approx(1.0)
