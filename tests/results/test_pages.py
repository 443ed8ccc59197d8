"""`lab report` answers (headline against the reference, natural x, ranking, declared metrics, plotly once), and
every registry value it shows is escaped: each finding of issues 25 and 23 reproduced on a registry filled as
a finished run leaves it (rows, and progress.csv in each trial folder), then a real sweep end to end."""
from __future__ import annotations

import re

import pytest

from lab.registry import Registry
from tests.browser import render, screenshots_folder
from tests.conftest import lab as lab_cli
from tests.recorded_pages import (DQN, HOSTILE, TUNE_INTERNALS, assert_nothing_ran, dqn_run, experiment,
                                  hostile_experiment, kinds, plotted, report, svc_sweep, text_of)


# ------------------------------------------------------------------ issue 25: a report that answers
def test_headline_says_whether_the_reference_was_reached_and_by_how_much(lab_home, tmp_path):
    good = svc_sweep(lab_home, score=lambda C, gamma: 0.95 + 0.0002 * C + (0.015 if gamma == 0.001 else 0), failed=2)
    page = text_of(report(good, tmp_path / "good.html"))
    headline = page[page.index('class="headline'):page.index("<p>workload")]
    assert "best cv/accuracy <b>0.9850</b>" in headline
    assert "reference cv/accuracy 0.9700" in headline and ">reached</span>" in headline
    assert "+0.015 (+1.546 %)" in headline  # 0.985 against 0.97
    assert "wall time 2 min 05 s" in headline and "18 trials: 16 completed, 2 failed" in headline
    bad = svc_sweep(lab_home, score=lambda C, gamma: 0.95)
    page = text_of(report(bad, tmp_path / "bad.html"))
    assert ">not reached</span>, 0.9500 is -0.02 (-2.062 %) from it" in page and 'class="headline missed"' in page


def test_curves_run_along_env_steps_or_epochs_with_the_reference_line(lab_home, tmp_path):
    page = report(dqn_run(lab_home), tmp_path / "dqn.html")
    (traces, layout), = [(d, lay) for d, lay in plotted(page) if d[0].get("type", "scatter") == "scatter"]
    assert traces[0]["x"] == [1000, 2000, 3000, 4000, 5000] and traces[0]["y"] == [20.0, 60.0, 150.0, 300.0, 490.0]
    assert layout["xaxis"]["title"]["text"] == "env steps"
    assert [s["y0"] for s in layout["shapes"]] == [475.0]  # the reference line
    keras = {"name": "mlp", "workload": "keras_classifier", "metric": "val/accuracy", "mode": "max", "params": {},
             "reference": {"metric": "test/accuracy", "score": 0.85}}
    rows = [{"val/accuracy": 0.8 + 0.01 * i, "test/accuracy": 0.79 + 0.01 * i, "charts/epoch": 2 * i} for i in (1, 2, 3)]
    exp_id = experiment(lab_home, keras, [{"id": "00000", "config": {"seed": 0}, "rows": rows}])
    (traces, layout), (test_traces, test_layout) = plotted(report(exp_id, tmp_path / "keras.html"))
    assert traces[0]["x"] == [2, 4, 6] and layout["xaxis"]["title"]["text"] == "epoch"
    # the reference is on test/accuracy: its own curve carries the line
    assert test_traces[0]["y"] == pytest.approx([0.8, 0.81, 0.82]) and [s["y0"] for s in test_layout["shapes"]] == [0.85]


def test_a_one_iteration_sweep_is_ranked_not_drawn_as_dots(lab_home, tmp_path):
    page = report(svc_sweep(lab_home, score=lambda C, gamma: 0.9 + 0.0005 * C + (0.01 if gamma == "scale" else 0)),
                  tmp_path / "svc.html")
    assert "scatter" not in kinds(page)  # not 18 dots at x=1 with an 18-entry legend
    (bars, bar_layout), (heat, _), (parcoords, _) = plotted(page)
    assert bars[0]["type"] == "bar" and len(bars[0]["x"]) == 18
    assert bars[0]["x"] == sorted(bars[0]["x"], reverse=True) and bars[0]["x"][0] == pytest.approx(0.96)
    assert [s["x0"] for s in bar_layout["shapes"]] == [0.97]  # the reference, as a vertical line
    assert heat[0]["type"] == "heatmap" and heat[0]["x"] == ["1", "10", "100"]
    assert heat[0]["y"] == ["0.001", "0.01", "scale"] and heat[0]["z"][2][2] == pytest.approx(0.96)
    assert parcoords[0]["type"] == "parcoords"


def test_parallel_coordinates_only_with_two_searched_parameters(lab_home, tmp_path):
    assert "parcoords" not in kinds(report(dqn_run(lab_home), tmp_path / "unsearched.html"))
    one = {**DQN, "search": {"learning_rate": {"grid": [1e-3, 1e-4]}}}
    trials = [{"id": f"0000{i}", "config": {"seed": 0, "learning_rate": lr},
               "rows": [{"eval/average_return": 100.0 * i + j, "charts/env_steps": 1000 * j} for j in (1, 2)]}
              for i, lr in enumerate((1e-3, 1e-4), 1)]
    assert "parcoords" not in kinds(report(experiment(lab_home, one, trials), tmp_path / "one.html"))
    two = {**one, "search": {**one["search"], "gamma": {"grid": [0.9, 0.99]}}}
    for i, t in enumerate(trials):
        t["config"]["gamma"] = [0.9, 0.99][i]
    page = report(experiment(lab_home, two, trials), tmp_path / "two.html")
    (dims,) = [t["dimensions"] for t in (d[0] for d, _ in plotted(page)) if t["type"] == "parcoords"]
    assert sorted(d["label"] for d in dims[:2]) == ["gamma", "learning_rate"]
    assert dims[2]["label"] == "eval/average_return"


def test_only_the_workloads_declared_metrics_are_shown(lab_home, tmp_path):
    exp_id = svc_sweep(lab_home, samples=1)
    page = text_of(report(exp_id, tmp_path / "svc.html"))
    for internal in TUNE_INTERNALS:
        assert internal not in page, internal
    assert "<td>cv/accuracy_std</td>" in page and "<td>charts/fit_seconds</td>" in page
    assert '"done"' not in page and "{" not in page.split("<h2>Best trial</h2>")[1].split("<h2>Trials")[0]
    from lab.results.pages import facts

    assert facts.declared_metrics(Registry().experiment(exp_id)) is not None  # sklearn_cv's own declaration


def test_plotly_is_loaded_once_per_folder_not_inlined_in_every_page(lab_home, tmp_path):
    first, second = dqn_run(lab_home), svc_sweep(lab_home, samples=1)
    page = report(first, tmp_path / "a.html")
    js = tmp_path / "plotly.min.js"
    stamp = js.stat().st_mtime_ns
    report(second, tmp_path / "b.html")
    assert js.stat().st_mtime_ns == stamp and js.stat().st_size > 3_000_000  # written once, beside the pages
    for name in ("a.html", "b.html"):
        size = (tmp_path / name).stat().st_size
        assert size < 200_000, f"{name}: {size} bytes"  # was 4.8 MB with plotly inlined
        assert '<script src="plotly.min.js"' in (tmp_path / name).read_text()
    assert "plotly.js v" not in page
    dom, console = render(tmp_path / "b.html", screenshot=screenshots_folder(tmp_path) / "report-svc-digits.png",
                          height=2400)
    assert dom.count('class="main-svg"') >= 3 and 'class="trace bars"' in dom and 'class="hm"' in dom, dom[-3000:]
    assert console == []
    dom, console = render(tmp_path / "a.html", screenshot=screenshots_folder(tmp_path) / "report-dqn.png")
    assert 'class="trace scatter' in dom and "env steps" in dom and console == []


def test_a_compare_page_plots_several_experiments_on_one_metric(lab_home, tmp_path):
    a = dqn_run(lab_home)
    b = dqn_run(lab_home, returns=(10.0, 30.0, 80.0, 200.0, 400.0))
    page = report([a, b], tmp_path / "cmp.html")
    ((traces, layout),) = plotted(page)
    assert [t["name"] for t in traces] == [f"{a} dqn-cartpole", f"{b} dqn-cartpole"]
    assert traces[1]["x"] == [1000, 2000, 3000, 4000, 5000] and traces[1]["y"][-1] == 400.0
    assert layout["xaxis"]["title"]["text"] == "env steps" and [s["y0"] for s in layout["shapes"]] == [475.0]
    assert page.count('class="headline') == 2 and ">not reached</span>" in page and ">reached</span>" in page
    dom, console = render(tmp_path / "cmp.html", screenshot=screenshots_folder(tmp_path) / "report-compare.png")
    assert dom.count('class="trace scatter') == 2 and console == []
    out = lab_cli("report", str(a), "--metric", "train/loss")
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "two ids" in out.stderr


# ------------------------------------------------------------------ issue 23: every field escaped
# run, this sets <html data-ran="YES">; the page's text never holds "YES" itself

def test_the_report_escapes_every_field_in_a_browser(lab_home, tmp_path):
    exp_id = hostile_experiment(lab_home)
    other = dqn_run(lab_home)
    page = report(exp_id, tmp_path / "hostile.html")
    shots = screenshots_folder(tmp_path)
    dom, _ = render(tmp_path / "hostile.html", screenshot=shots / "report-hostile.png", height=2400)
    assert_nothing_ran(dom)
    assert HOSTILE not in page and "<b>bold</b>" not in page
    assert dom.count('class="main-svg"') >= 1  # the curves still drawn
    report([exp_id, other], tmp_path / "hostile-compare.html", "--metric", HOSTILE)
    dom, _ = render(tmp_path / "hostile-compare.html")
    assert_nothing_ran(dom)


# ------------------------------------------------------------------ a real sweep, end to end
@pytest.mark.slow
def test_a_real_svc_digits_sweep_reports_its_answer(lab_home, tmp_path):
    run = lab_cli("run", "svc-digits", "--set", "cv_folds=2", timeout=900)
    assert run.returncode == 0, run.stderr
    exp_id = Registry().experiments()[0]["id"]
    page = report(exp_id, tmp_path / "svc.html")
    assert kinds(page) == ["bar", "heatmap", "parcoords"]
    text = text_of(page)
    assert "reference cv/accuracy 0.9700" in text and ("reached</span>" in text)
    assert re.search(r"9 trials: 9 completed, 0 failed", text)
    for internal in TUNE_INTERNALS:
        assert internal not in text
    dom, console = render(tmp_path / "svc.html", screenshot=screenshots_folder(tmp_path) / "report-real-svc.png",
                          height=2400)
    assert 'class="trace bars"' in dom and console == []
