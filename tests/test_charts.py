"""The SVG charts: well-formed, labelled, and escaping whatever text they are given."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from common import charts

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    return ET.fromstring(str(svg))


def test_bars_escape_their_labels():
    svg = charts.bars([("<script>alert(1)</script>", 0.5), ("V14", -1.2)], title="a & b", signed=True)
    root = parse(svg)  # would raise on unescaped markup
    assert "<script>" not in str(svg)
    assert root.get("aria-label") == "a & b"
    assert len(root.findall(f"{SVG}rect[@class='bar']")) == 2


def test_signed_bars_grow_toward_fraud_or_legitimate():
    root = parse(charts.bars([("up", 1.0), ("down", -1.0)], title="t", signed=True))
    up, down = root.findall(f"{SVG}rect[@class='bar']")
    assert float(up.get("x")) > float(down.get("x"))
    assert up.get("fill") == charts.FRAUD_COLOUR and down.get("fill") == charts.LEGIT_COLOUR


def test_the_pr_curve_marks_the_operating_point():
    root = parse(charts.pr_curve([0.0, 0.5, 1.0], [1.0, 0.8, 0.1], at=(0.5, 0.8)))
    assert len(root.findall(f"{SVG}polyline")[0].get("points").split()) == 3
    assert root.find(f"{SVG}circle") is not None


def test_the_histogram_draws_one_bar_per_non_empty_bin():
    root = parse(
        charts.histogram(
            [0, 0.5, 1], {"legitimate": [900, 3], "fraud": [0, 40]}, {"legitimate": "#0f0", "fraud": "#f00"}
        )
    )
    assert len(root.findall(f"{SVG}rect[@class='bar']")) == 3


def test_the_confusion_matrix_shows_each_count():
    root = parse(charts.confusion_matrix(tn=9000, fp=12, fn=3, tp=40))
    texts = {t.text for t in root.iter(f"{SVG}text")}
    assert {"9,000", "12", "3", "40"} <= texts
