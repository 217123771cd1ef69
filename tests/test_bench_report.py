"""The report's headline table, HTML (escaping, sortable tables, links to instance pages), SVG next
to every PNG, and the README's generated section — on a small store written here by hand, so every
expected number is computed independently in the test (no solver runs)."""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path

import pytest

from mecsplit.errors import InputError

ODD = 'B<i>&"x'   # a method label that must be escaped in HTML


def _result(obj, t, *, status="feasible", verdict="ok", exact=False, flags=(), feasible=True):
    return json.dumps({
        "schema": "mecsplit.result/1", "status": status, "objective": obj, "bound": obj if exact else None,
        "gap": 1e-6 if exact else None, "wall_time_s": t, "iterations": 2,
        "solution": {"server": [0, 1, 0, 1], "alpha": [1.0, 2.0, 3.0, 4.0]},
        "metrics": {"total_energy_J": 7.5},
        "trace": [{"t_s": 0.1, "incumbent": obj * 1.5, "bound": None, "iteration": 1},
                  {"t_s": t, "incumbent": obj, "bound": None, "iteration": 2}],
        "provenance": {"solver": "x", "exact": exact},
        "verification": {"verdict": verdict, "flags": list(flags), "feasible": feasible and verdict == "ok", "max_violation": 0.0,
                         "objective_evaluated": obj, "objective_agrees": True, "violations": {"power": 0.0}},
        "message": "", "extra": {}})


# (instance, method) -> (objective, wall time s, verdict); exact certifies k1 and k2, k3 has no certificate.
# "infeasible": the solver says "no feasible point" and hands back a point the evaluator finds infeasible
# (verdict stays ok) — lower than every feasible one on k3, so it must be neither best-known nor compared.
RUNS = {("k1", "exact"): (1.0, 4.0, "ok"), ("k2", "exact"): (2.0, 6.0, "ok"),
        ("k1", "A"): (1.00005, 1.0, "ok"), ("k2", "A"): (2.2, 2.0, "ok"), ("k3", "A"): (3.0, 10.0, "ok"),
        ("k1", ODD): (1.5, 0.5, "ok"), ("k2", ODD): (2.1, 0.7, "flagged"), ("k3", ODD): (3.3, 0.9, "ok"),
        ("k3", "C"): (2.5, 3.0, "infeasible")}


@pytest.fixture()
def store(tmp_path):
    from mecsplit.bench.cells import Cell
    from mecsplit.bench.store import Store
    from mecsplit.bench.suite import parse_suite

    suite = parse_suite({"defaults": {"reference": "exact"}, "group": [{"name": "g"}]}, tmp_path / "s.toml")
    s = Store(tmp_path / "r.sqlite")
    cells = []
    for i, ((k, label), (obj, t, verdict)) in enumerate(RUNS.items()):
        seed = int(k[1])
        c = Cell("s", "g", "cell", "default", {}, None, None, 4, 2, seed, "exact" if label == "exact" else "fake",
                 label, {}, 10.0, 1.0, instance_hash=f"inst{k}", ref_key=k, cell_hash=f"h{i}")
        cells.append(c)
        status = "optimal" if label == "exact" else "infeasible" if verdict == "infeasible" else "feasible"
        s.put(c.payload(), _result(obj, t, status=status, verdict="flagged" if verdict == "flagged" else "ok",
                                   exact=label == "exact", flags=("infeasible_solution",) if verdict == "flagged" else (),
                                   feasible=verdict != "infeasible"))
    s.register("s", cells, suite.groups)
    yield s
    s.close()


def _expected():
    """Headline numbers computed here from RUNS: reference = certified optimum, else the lowest
    verified objective on the instance."""
    ref = {k: v[0] for (k, m), v in RUNS.items() if m == "exact"}
    for k in {k for k, _ in RUNS} - set(ref):
        ref[k] = min(v[0] for (k2, _), v in RUNS.items() if k2 == k and v[2] == "ok")
    out = {}
    for method in ("exact", "A", ODD, "C"):
        runs = [(k, v) for (k, m), v in RUNS.items() if m == method]
        gaps = [(v[0] - ref[k]) / ref[k] for k, v in runs if v[2] == "ok"]
        out[method] = {"runs": len(runs), "median": statistics.median(gaps) if gaps else None,
                       "worst": max(gaps) if gaps else None,
                       "within": sum(g <= 1e-4 for g in gaps), "time": statistics.median(v[1] for _, v in runs),
                       "no_point": sum(v[2] != "ok" for _, v in runs)}
    return out


def test_headline_matches_independent_numbers(store):
    from mecsplit.bench.headline import headline
    from mecsplit.bench.report import attach_references

    rows = store.rows("s")
    attach_references(store, rows, store.groups("s"))
    lines = {x.method: x for x in headline(rows)}
    exp = _expected()
    assert set(lines) == set(exp)
    for m, e in exp.items():
        x = lines[m]
        assert (x.runs, x.within, x.no_point) == (e["runs"], e["within"], e["no_point"]), m
        assert x.median_gap == pytest.approx(e["median"], abs=1e-15) and x.worst_gap == pytest.approx(e["worst"], abs=1e-15)
        assert x.verified == e["runs"] - e["no_point"]
        assert x.median_time_s == pytest.approx(e["time"])
    assert lines["A"].references == {"certified": 2, "best-known": 1}
    assert lines["A"].worst_row["ref_key"] == "k2"          # 2.2 vs the certified 2.0
    assert [x.method for x in headline(rows)] == ["exact", "A", ODD, "C"]   # best median gap first, no point last
    assert {r["label"]: r["reference"] for r in rows if r["ref_key"] == "k3"}["A"] == 3.0   # not C's infeasible 2.5


def test_bench_run_prints_the_headline_first(store):
    from mecsplit.bench.report import summary_lines

    out = summary_lines(store, "s")
    assert out[0].startswith("Headline (s)")
    row = next(line for line in out if line.split()[:3] == ["default", "4x2", "A"])
    # median gap of A: 5e-5 -> 0.005 %; worst 10 %; 2 of 3 within 0.01 %; median time 2 s
    assert re.search(r"\b0\.005 %\s+10 %\s+2/3\s+2\b", row), row
    assert "1 certified" not in row and "2 certified" in row and "best-known" in row
    assert out.index(row) < out.index("Per group (all sizes and seeds; gaps relative, not %):")


def test_report_html_headline_escaping_sorting_pages_svg(store, tmp_path):
    from mecsplit.bench.report import build_report, write_index

    out = tmp_path / "rep"
    md = build_report(store, "s", out, instance_plots=1).read_text()
    html = (out / "s" / "report.html").read_text()
    index = write_index(store, out).read_text()
    # the headline comes first, in the report, its markdown and the index
    for text in (md, html, index):
        assert text.index("how far each") < text.index("within 0.01 %")
    assert html.index("within 0.01 %") < html.index("Group g")
    # escaping: the odd label never appears raw
    for text in (html, index):
        assert ODD not in text and "B&lt;i&gt;&amp;&quot;x" in text
    # sortable tables: class, numeric sort keys, the script
    assert html.count("<table class='sortable'>") >= 4
    worst = re.search(r"<td class='far' data-v='([^']+)'><a href='instances/k2.html#m-A'>10 %</a></td>", html)
    assert worst and float(worst.group(1)) == pytest.approx(0.1)   # 10 % off: shaded red, links to k2
    assert re.search(r"<td class='good' data-v='5\.0\d*e-05'>0\.005 %</td>", html)     # A's median: green
    assert "addEventListener('click'" in html and "addEventListener('click'" in index
    # every run row links to its instance page, which shows solution, trace and verification
    links = set(re.findall(r"href='(instances/k\d\.html)#m-[^']+'", html))
    assert links == {"instances/k1.html", "instances/k2.html", "instances/k3.html"}
    page = (out / "s" / "instances" / "k2.html").read_text()
    assert "solution (4 users: server, alpha)" in page and "trace (2 points" in page and "infeasible_solution" in page
    assert "certified" in page and ODD not in page and "id='m-B-i-x'" in page
    # SVG next to every PNG
    pngs = list((out / "s").rglob("*.png"))
    assert pngs and all(p.with_suffix(".svg").is_file() for p in pngs)
    assert (out / "s" / "gaps.png").is_file() and "gaps.svg" in html


def test_readme_section_between_markers(store, tmp_path):
    from mecsplit.bench.report import README_END, README_START, write_readme

    readme = tmp_path / "README.md"
    readme.write_text(f"# t\nbefore\n{README_START}\nold numbers\n{README_END}\nafter\n")
    write_readme(store, "s", readme, "mecsplit bench report s --readme README.md")
    text = readme.read_text()
    assert text.startswith("# t\nbefore\n" + README_START) and text.endswith(README_END + "\nafter\n")
    assert "old numbers" not in text and "`mecsplit bench report s --readme README.md`" in text
    assert "| default | 4x2 | A | 3 | 0.005 % | 10 % | 2/3 | 2 |" in text
    write_readme(store, "s", readme, "x")       # idempotent: one generated block
    assert readme.read_text().count(README_START) == 1
    bad = tmp_path / "NO.md"
    bad.write_text("no markers\n")
    with pytest.raises(InputError, match="markers"):
        write_readme(store, "s", bad, "x")
    with pytest.raises(InputError, match="no such file"):
        write_readme(store, "s", tmp_path / "missing.md", "x")
    with pytest.raises(InputError, match="not a file"):
        write_readme(store, "s", tmp_path, "x")
    bad.write_bytes(b"\xff\xfe binary")
    with pytest.raises(InputError, match="unreadable"):
        write_readme(store, "s", bad, "x")


def test_beats_certified_reference_uses_the_certificate_gap(store):
    from mecsplit.bench.report import attach_references

    store.db.execute("UPDATE refs SET gap = 1e-3 WHERE ref_key = 'k1'")
    store.db.execute("UPDATE results SET objective = 0.9995 WHERE cell_hash = 'h2'")   # A on k1: within the gap
    store.db.execute("UPDATE results SET objective = 0.99 WHERE cell_hash = 'h5'")     # ODD on k1: below it
    rows = store.rows("s")
    attach_references(store, rows, store.groups("s"))
    flags = {r["label"]: r["flags"] for r in rows if r["ref_key"] == "k1"}
    assert flags["A"] == [] and flags[ODD] == ["beats_certified_reference"]
