"""Issue 23, items 4-6: local secrets stay local, exports are what was checked, specs and diffs stay small and private.

Each test reproduces a finding against the code before the fix (it fails there) with real parts: real
listeners owned by another user, real files and FIFOs, a real git repository, the real `lab` command.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lab.errors import LabError
from tests.conftest import ROOT, lab

NOBODY = 65534
TOKEN = "labsecrettoken4711labsecrettoken4711"
as_root = pytest.mark.skipif(os.getuid() != 0 or not shutil.which("setpriv"),
                             reason="needs root and setpriv to run a listener as another user")


def mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def one_error_line(result) -> str:
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lab: error:"), result.stderr[-2000:]
    return lines[0]


# ------------------------------------------------------------------ item 4: a token goes only where it is for
LISTENER = textwrap.dedent("""
    import http.server, sys
    class Record(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            sys.stdout.write("REQUEST " + self.path + "\\n" + str(self.headers) + "\\n")
            sys.stdout.flush()
            self.send_response(404)
            self.end_headers()
        do_POST = do_GET
        def log_message(self, *args):
            pass
    server = http.server.HTTPServer(("127.0.0.1", 0), Record)
    print(server.server_address[1], flush=True)
    server.serve_forever()
""")


def listener_as(uid: int | None):
    """A real HTTP listener on 127.0.0.1 (run as `uid` through setpriv, None: as this user) that prints
    every request's headers; (process, port)."""
    python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else os.path.realpath(sys.executable)
    command = [python, "-c", LISTENER]
    if uid is not None:
        command = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", *command]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd="/")
    return process, int(process.stdout.readline())


def home_with_ray_token(tmp_path) -> Path:
    """A HOME whose ~/.ray/auth_token holds TOKEN (as `ray start` leaves it)."""
    home = tmp_path / "home"
    (home / ".ray").mkdir(parents=True)
    (home / ".ray" / "auth_token").write_text(TOKEN)
    return home


@as_root
def test_submit_sends_no_token_to_another_users_listener(tmp_path):
    home = home_with_ray_token(tmp_path)
    process, port = listener_as(NOBODY)
    env = {name: value for name, value in os.environ.items()
           if name not in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "LAB_RAY_TOKEN_HOSTS")}
    try:
        result = subprocess.run([str(Path(sys.executable).parent / "lab"), "submit", "svc-digits", "--address",
                                 f"http://127.0.0.1:{port}"], capture_output=True, text=True, timeout=300,
                                env={**env, "HOME": str(home)})
    finally:
        process.terminate()
        seen, _ = process.communicate(timeout=30)
    assert "REQUEST" in seen, (seen, result.stderr[-2000:])  # the client did talk to the listener
    assert TOKEN not in seen and "authorization" not in seen.lower(), seen
    assert result.returncode != 0 and TOKEN not in result.stderr + result.stdout


def test_the_token_goes_to_own_listeners_and_listed_hosts_only(monkeypatch):
    from lab.infra import ray_tokens

    process, port = listener_as(None)  # this user's own listener on this machine
    try:
        assert ray_tokens.token_allowed(f"127.0.0.1:{port}")
        assert ray_tokens.token_allowed(f"http://127.0.0.1:{port}")
    finally:
        process.terminate()
        process.communicate(timeout=30)
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        free = unused.getsockname()[1]
    assert not ray_tokens.token_allowed(f"127.0.0.1:{free}")  # nobody listens: not ours
    assert not ray_tokens.token_allowed("ray-head.example:6379")
    monkeypatch.setenv("LAB_RAY_TOKEN_HOSTS", "other.example, ray-head.example")
    assert ray_tokens.token_allowed("ray-head.example:6379")
    assert ray_tokens.token_allowed("ray://RAY-HEAD.example:10001")
    assert not ray_tokens.token_allowed("ray-head.example.evil:6379")


@as_root
def test_another_users_local_listener_gets_no_token(monkeypatch):
    from lab.infra import ray_tokens

    monkeypatch.delenv("LAB_RAY_TOKEN_HOSTS", raising=False)
    process, port = listener_as(NOBODY)
    try:
        assert not ray_tokens.token_allowed(f"127.0.0.1:{port}")
        monkeypatch.setenv("RAY_AUTH_MODE", "token")  # whatever the user's shell says
        ray_tokens.apply_cluster_auth(f"127.0.0.1:{port}")
        assert os.environ["RAY_AUTH_MODE"] == "disabled"
    finally:
        process.terminate()
        process.communicate(timeout=30)


@pytest.mark.slow
def test_a_local_instance_uses_its_own_private_token(tmp_path, lab_home):
    """A plain local run never makes (or reads) Ray's ~/.ray/auth_token (0644 in a 0755 folder)."""
    home = tmp_path / "home"
    home.mkdir()
    script = ("from lab.infra.connect import connect; connect(None, num_cpus=1); import os, ray; "
              "print(os.environ.get('RAY_AUTH_TOKEN_PATH')); ray.shutdown()")
    env = {**os.environ, "HOME": str(home), "PYTHONPATH": str(ROOT)}
    for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        env.pop(name, None)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (home / ".ray" / "auth_token").exists()
    token = lab_home / "run" / "auth_token"
    assert result.stdout.strip().splitlines()[-1] == str(token)
    assert mode(token) == 0o600 and mode(token.parent) == 0o700 and mode(lab_home) == 0o700
    assert len(token.read_text()) == 64 and token.read_text() not in result.stdout + result.stderr


# ------------------------------------------------------------------ item 4: LAB_HOME and its files are private
def test_lab_home_and_its_files_are_private(tmp_path, lab_home):
    from lab.results import provenance
    from lab.execution import logs as runner

    old = os.umask(0o022)  # the usual umask: files 0644 and folders 0755 unless the lab says otherwise
    try:
        assert lab("ls").returncode == 0
        runner.write_experiment_log(1, RuntimeError("boom"))
        export = tmp_path / "model.bin"
        export.write_bytes(b"weights")
        value = provenance.record_export(str(export))
    finally:
        os.umask(old)
    assert mode(lab_home) == 0o700
    assert mode(lab_home / "registry.db") == 0o600
    for extra in ("registry.db-wal", "registry.db-shm"):
        if (lab_home / extra).exists():
            assert mode(lab_home / extra) == 0o600
    assert mode(lab_home / "logs") == 0o700 and mode(runner.experiment_log(1)) == 0o600
    assert mode(lab_home / "exports") == 0o700 and mode(lab_home / "exports" / value) == 0o600


def test_an_existing_open_lab_home_is_made_private(lab_home):
    lab_home.mkdir(mode=0o755)
    os.chmod(lab_home, 0o755)
    (lab_home / "registry.db").touch(mode=0o644)
    os.chmod(lab_home / "registry.db", 0o644)
    assert lab("ls").returncode == 0
    assert mode(lab_home) == 0o700 and mode(lab_home / "registry.db") == 0o600


# ------------------------------------------------------------------ item 4: a warm-instance record is checked
def write_record(temp_dir: str, file_mode: int = 0o600, **changes) -> Path:
    """A record of a dead warm instance (so `lab down` forgets it and removes its temp folder)."""
    from lab.infra import warm

    record = dict(address="127.0.0.1:1", pid=2**22 + 7, pid_started=1, uid=os.getuid(), user="me",
                  temp_dir=temp_dir, token_path=str(warm.ray_dir() / "auth_token"), num_cpus=1, pool=1)
    record.update(changes)
    warm.ray_dir().mkdir(parents=True, exist_ok=True)
    path = warm.record_path()
    path.write_text(json.dumps(record))
    os.chmod(path, file_mode)
    return path


def victim_under(tmp_path) -> tuple[Path, Path]:
    """(a temp folder for `lab down`, a folder outside it that must survive)."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("keep me")
    return temp, victim


def test_down_never_deletes_outside_the_temp_folder(tmp_path, lab_home):
    temp, victim = victim_under(tmp_path)
    record = write_record(f"{temp}/../victim")  # starts with the temp folder's name, then climbs out
    result = lab("down", env={"TMPDIR": str(temp)})
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert (victim / "precious.txt").exists()
    write_record(f"{temp}/lab-ray-x/../../victim")
    lab("down", env={"TMPDIR": str(temp)})
    lab("status", env={"TMPDIR": str(temp)})
    assert (victim / "precious.txt").exists()
    os.symlink(victim, temp / "lab-ray-link")  # a lab-ray-* name that is a link out
    write_record(str(temp / "lab-ray-link"))
    lab("down", env={"TMPDIR": str(temp)})
    assert (victim / "precious.txt").exists() and record.exists()  # untrusted: left for the user to look at


def test_a_record_others_could_write_is_not_trusted(tmp_path, lab_home):
    from lab.infra import warm

    temp = tmp_path / "tmp"
    own = temp / "lab-ray-abc"
    own.mkdir(parents=True)
    write_record(str(own), file_mode=0o644)  # everything else as `lab up` writes it
    line = one_error_line(lab("down", env={"TMPDIR": str(temp)}))
    assert "not a file of yours with mode 0600" in line and own.exists()
    assert "not a file of yours" in lab("status", env={"TMPDIR": str(temp)}).stdout
    notes = []
    assert warm.usable(note=lambda *a, **k: notes.append(a[0])) is None and "not used" in notes[0]
    write_record(str(own), file_mode=0o600, token_path=str(tmp_path / "home" / ".ssh" / "id_rsa"))
    assert "token file" in one_error_line(lab("down", env={"TMPDIR": str(temp)})) and own.exists()
    write_record(str(own), file_mode=0o600, address="203.0.113.9:6379")
    assert "address" in one_error_line(lab("down", env={"TMPDIR": str(temp)})) and own.exists()
    write_record(str(own), file_mode=0o600)  # the same record, as `lab up` writes it: trusted
    assert "no longer running" in one_error_line(lab("down", env={"TMPDIR": str(temp)}))
    assert not own.exists() and not warm.record_path().exists()


@as_root
def test_a_record_of_another_owner_is_not_trusted(tmp_path, lab_home):
    temp = tmp_path / "tmp"
    own = temp / "lab-ray-abc"
    own.mkdir(parents=True)
    record = write_record(str(own))
    os.chown(record, NOBODY, NOBODY)
    assert "not a file of yours" in one_error_line(lab("down", env={"TMPDIR": str(temp)}))
    assert own.exists()


# ------------------------------------------------------------------ item 5: exports
def test_export_hash_tells_folders_apart(tmp_path):
    from lab.results import provenance

    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    (one / "a").write_bytes(b"X\0b\0Y")  # with names and bytes joined by \0 this reads as two files...
    (two / "a").write_bytes(b"X")
    (two / "b").write_bytes(b"Y")  # ...which these are
    assert provenance.content_hash(str(one)) != provenance.content_hash(str(two))


def test_an_export_with_a_fifo_is_refused(tmp_path, lab_home):
    from lab.results import provenance

    folder = tmp_path / "policy"
    folder.mkdir()
    (folder / "saved_model.pb").write_bytes(b"graph")
    os.mkfifo(folder / "variables.data")
    for call in (provenance.content_hash, provenance.record_export):
        with pytest.raises(LabError, match="not a regular file"):
            call(str(folder))
    with pytest.raises(LabError, match="not a regular file"), provenance.private_copy(str(folder), "policy", True):
        pass


SWAP = textwrap.dedent("""
    import importlib.abc, os, shutil, sys
    import tf_keras
    from lab.results import provenance
    folder, evil = sys.argv[1], sys.argv[2]
    for name in ("good", "evil"):
        model = tf_keras.Sequential([tf_keras.Input((1,)), tf_keras.layers.Dense(1, name=name)])
        model.save(os.path.join(folder if name == "good" else evil, "model.keras"))
    provenance.record_export(folder)  # as `lab export` does: the folder and the model file in it
    provenance.record_export(os.path.join(folder, "model.keras"))

    class SwapWhileLoading(importlib.abc.MetaPathFinder):
        # runs between the loader's check and its load (the loader imports its helpers in between)
        def find_spec(self, name, path=None, target=None):
            if name == "deep.layers":
                shutil.copyfile(os.path.join(evil, "model.keras"), os.path.join(folder, "model.keras"))
            return None

    sys.meta_path.insert(0, SwapWhileLoading())
    from deep.loading import load_keras_model
    print("LOADED", load_keras_model(folder).layers[-1].name)
""")


@pytest.mark.slow
def test_a_model_swapped_after_its_check_is_not_loaded(tmp_path, lab_home):
    folder, evil = tmp_path / "export", tmp_path / "evil"
    folder.mkdir()
    evil.mkdir()
    result = subprocess.run([sys.executable, "-c", SWAP, str(folder), str(evil)], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT), "TF_USE_LEGACY_KERAS": "1"}, timeout=300)
    assert "LOADED" in result.stdout, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "LOADED good"  # the checked bytes, not the swapped ones


# ------------------------------------------------------------------ item 6: source.diff
def git_repo(folder: Path) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    git = ["git", "-C", str(folder), "-c", "user.email=a@b", "-c", "user.name=a"]
    subprocess.run([*git, "init", "-q"], check=True)
    return git


def environment_record(source: Path, **env) -> dict:
    """The environment record of a lab whose package lies in `source`/lab (a fresh process)."""
    script = "import json; from lab.results import environment; info, diff = environment.record(); print(json.dumps([info, diff]))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd="/",
                            env={**os.environ, "PYTHONPATH": str(source), **env}, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    info, diff = json.loads(result.stdout)
    return {**info, "diff": diff}


def test_source_diff_never_captures_the_users_project(tmp_path):
    project = tmp_path / "project"  # a user's project with an installed (not editable) lab inside
    git = git_repo(project)
    (project / "settings.py").write_text("DB_PASSWORD = ''\n")
    site = project / ".venv" / "lib" / "site-packages"
    shutil.copytree(ROOT / "lab", site / "lab", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([*git, "add", "settings.py"], check=True)
    subprocess.run([*git, "commit", "-qm", "one"], check=True)
    (project / "settings.py").write_text("DB_PASSWORD = 'hunter2-secret'\n")
    info = environment_record(site, LAB_RECORD_DIFF="1")
    assert "hunter2" not in json.dumps(info)
    assert info["git_commit"] is None and info["git_dirty"] is None and info["diff"] == ""


def test_source_diff_only_when_asked_and_private(tmp_path):
    from lab.infra import storage as storages
    from lab.results import environment

    checkout = tmp_path / "agent-lab"  # the lab's own checkout, with an uncommitted change
    git = git_repo(checkout)
    shutil.copytree(ROOT / "lab", checkout / "lab", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([*git, "add", "lab"], check=True)
    subprocess.run([*git, "commit", "-qm", "one"], check=True)
    with open(checkout / "lab" / "errors.py", "a") as handle:
        handle.write("# local change\n")
    info = environment_record(checkout, LAB_RECORD_DIFF="")
    assert info["git_dirty"] is True and info["diff"] == "" and "diff_file" not in info
    assert len(info["git_commit"]) == 40
    assert "LAB_RECORD_DIFF=1" in " ".join(environment.format_lines(info))
    info = environment_record(checkout, LAB_RECORD_DIFF="1")
    assert "+# local change" in info["diff"] and info["diff_file"] == environment.DIFF_FILE
    old = os.umask(0o022)
    try:
        environment.save_diff(storages.resolve(str(tmp_path / "exp-1")), info["diff"])
    finally:
        os.umask(old)
    assert mode(tmp_path / "exp-1" / environment.DIFF_FILE) == 0o600


# ------------------------------------------------------------------ item 6: what a spec can make the lab print
ALIASES = """\
a: &a [xxxxxxxx, xxxxxxxx, xxxxxxxx, xxxxxxxx, xxxxxxxx, xxxxxxxx, xxxxxxxx]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
name: *e
workload: *e
metric: *e
num_samples: *e
params: {C: *e}
"""


def test_a_spec_with_yaml_aliases_is_refused_in_one_line(tmp_path, lab_home):
    spec = tmp_path / "aliases.yaml"
    spec.write_text(ALIASES)
    assert spec.stat().st_size < 400
    started = time.monotonic()
    line = one_error_line(lab("run", str(spec)))
    assert "YAML aliases (*name) are not accepted" in line and len(line) < 300
    assert time.monotonic() - started < 120


def test_every_quoted_value_is_capped(tmp_path, lab_home):
    spec = tmp_path / "big.yaml"
    spec.write_text("name: [" + ", ".join(["xxxxxxxxxx"] * 50_000) + "]\nworkload: sklearn_cv\n"
                    f"metric: cv/accuracy\nnum_samples: '{'y' * 100_000}'\nparams: {{cv_folds: '{'z' * 100_000}'}}\n")
    result = lab("run", str(spec))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines and all(line.startswith("lab: error:") and len(line) <= 1000 for line in lines), lines
    assert len(result.stderr) < 5_000
