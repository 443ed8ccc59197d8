"""`lab ui`: the real server in a subprocess, over a registry filled as finished runs leave it; its pages in
headless Chromium (a screenshot each, no console error, no script of a hostile row run), its token, its address."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

import lab
from tests.browser import render, screenshots_folder
from tests.conftest import lab as lab_cli
from tests.proc_utils import listeners, own_address, tree, wait_gone
from tests.recorded_pages import assert_nothing_ran, dqn_run, hostile_experiment, svc_sweep


@contextmanager
def lab_ui():
    """(process, base URL, token) of a running `lab ui`; stopped with SIGTERM afterwards."""
    process = subprocess.Popen([str(Path(sys.executable).parent / "lab"), "ui"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        line = process.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+)/\?token=([\w-]+) ", line)
        assert match, line + process.stderr.read() if process.poll() is not None else line
        yield process, match.group(1), match.group(2)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def get(url: str, headers: dict | None = None, method: str = "GET") -> tuple[int, dict, str]:
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=60) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


def test_ui_answers_only_with_its_token_and_only_on_loopback(lab_home):
    exp_id = dqn_run(lab_home)
    with lab_ui() as (process, base, token):
        for path in ("/", f"/experiments/{exp_id}", "/leaderboard", "/plotly.min.js", f"/compare?ids={exp_id}"):
            assert get(base + path)[0] == 403, path
            assert get(f"{base}{path}{'&' if '?' in path else '?'}token=wrong{token}")[0] == 403, path
        status, headers, body = get(f"{base}/?token={token}")
        assert status == 200 and "dqn-cartpole" in body
        cookie = headers["set-cookie"].split(";")[0]
        assert "HttpOnly" in headers["set-cookie"] and "SameSite=Strict" in headers["set-cookie"]
        assert get(f"{base}/experiments/{exp_id}", {"Cookie": cookie})[0] == 200  # the cookie stands for the token
        assert get(f"{base}/plotly.min.js?token={token}")[0] == 200
        assert get(f"{base}/?token={token}", {"Host": "evil.example"})[0] == 400  # no DNS rebinding
        assert get(f"{base}/?token={token}", method="POST")[0] == 405  # read-only
        status, _, body = get(f"{base}/?token={token}&where=" + urllib.parse.quote("best >> 1"))
        assert status == 400 and "--where" in body
        assert get(f"{base}/experiments/999?token={token}")[0] == 404
        sockets = listeners(tree(process.pid))
        assert sockets and all(ip == "127.0.0.1" for _, _, ip, _ in sockets), sockets
        address, port = own_address(), int(base.rsplit(":", 1)[1])
        if address:
            with pytest.raises(OSError):
                import socket

                socket.create_connection((address, port), timeout=2).close()
    assert process.returncode == 0  # SIGTERM: stopped as on Ctrl-C


def test_ui_on_a_taken_port_says_so_in_one_line():
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        out = lab_cli("ui", "--port", str(holder.getsockname()[1]), timeout=120)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "is taken" in out.stderr, out.stderr


def test_ui_pages_in_chromium(lab_home, tmp_path):
    svc = svc_sweep(lab_home, samples=1)
    lab.tag(svc, team="vision")
    first = dqn_run(lab_home)
    second = dqn_run(lab_home, returns=(10.0, 30.0, 80.0, 200.0, 400.0))
    hostile = hostile_experiment(lab_home)
    shots = screenshots_folder(tmp_path)
    with lab_ui() as (_process, base, token):
        def page(name: str, path: str, **query) -> str:
            url = f"{base}{path}?" + urllib.parse.urlencode({"token": token, **query}, doseq=True)
            dom, console = render(url, screenshot=shots / f"ui-{name}.png", height=1400)
            assert console == [], (name, console)
            assert_nothing_ran(dom) if name.startswith("hostile") else None
            assert 'data-ran="YES"' not in dom
            return dom

        dom = page("experiments", "/")
        assert all(f'href="/experiments/{i}"' in dom for i in (svc, first, second, hostile))
        assert dom.count('type="checkbox"') == 4 and "TensorBoard for selected" in dom
        dom = page("experiments-filtered", "/", where="workload = dqn and best > 450")
        assert f'href="/experiments/{first}"' in dom and f'href="/experiments/{second}"' not in dom
        dom = page("experiments-by-tag", "/", tags="team=vision")
        assert f'href="/experiments/{svc}"' in dom and f'href="/experiments/{first}"' not in dom
        dom = page("leaderboard", "/leaderboard", workload="dqn")
        ranks = re.findall(r'<td>(\d+)</td><td><a href="/experiments/(\d+)"', dom)
        assert ranks == [("1", str(first)), ("2", str(second))]
        dom = page("report", f"/experiments/{svc}")
        assert 'class="headline' in dom and 'class="trace bars"' in dom and "not reached" in dom
        dom = page("compare", "/compare", ids=[first, second])
        assert dom.count('class="trace scatter') == 2 and "env steps" in dom
        page("hostile-report", f"/experiments/{hostile}")
        page("hostile-list", "/")
        assert "x tabindex=1" in page("hostile-leaderboard", "/leaderboard")  # ranked by the newest: the hostile one
        page("hostile-compare", "/compare", ids=[hostile, first])


@pytest.mark.slow
def test_ui_starts_tensorboard_over_a_selection_and_stops_it_on_exit(lab_home):
    exp_id = dqn_run(lab_home)
    with lab_ui() as (process, base, token):
        status, headers, _ = get(f"{base}/tensorboard?token={token}&ids={exp_id}")
        assert status == 303, headers
        board = headers["location"]
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", board)
        assert get(board)[0] == 200
        assert get(f"{base}/tensorboard?token={token}&ids={exp_id}")[1]["location"] == board  # the same one
        children = [p.pid for p in tree(process.pid)[1:]]
        assert children
    assert wait_gone(children) == []
