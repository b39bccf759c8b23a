"""Attacks on the sandbox: answer code that tries to reach the grader, done for real.

Each probe submission runs its attacks in the answer cells and solves its question only when
every attack of that cell failed, so the score says which group of attacks got through; the same
submission graded with ``--no-sandbox`` must lose those points, which shows that the probes can
tell. Limits, processes that outlive the run and text carried out through feedback are checked
from outside, on the real processes and files.
"""

from __future__ import annotations

import base64
import json
import os
import re
import sys
import sysconfig
import time
from pathlib import Path

import psutil
import pytest

from mlsd.grading import GradingError, GradingOptions, Limits, SandboxUnavailable, autograde

pytestmark = [pytest.mark.grading, pytest.mark.integration, pytest.mark.slow]

CANARY = "MLSD-GRADER-SECRET-3c1d9e"
DAEMON = "mlsd-probe-daemon-5f2a"
EXFIL = "EXFIL-7d41"
HIDDEN_MARKER = "HIDDEN-MARKER-7f3a"


def by_id(result):
    return {q.id: q for q in result.questions}


def written(result) -> str:
    return "".join(
        (result.out_dir / name).read_text(encoding="utf-8")
        for name in ("results.json", "summary.md", "feedback.html")
    )


def printed(result, cell_id: str) -> str:
    """What an answer cell printed (in the instructors' copy of the run): the probes' findings."""
    cell = next(c for c in result.autograded.cells if c.get("id") == cell_id)
    return "".join(o.get("text", "") + o.get("evalue", "") for o in cell.get("outputs", []))


def _probe_files(paths: dict[str, str]) -> str:
    """Answer to question 1, defined only when no file-system or process attack worked."""
    return f"""
import glob
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import mlsd.config

breaches = []
if os.getuid() == 0 or os.geteuid() == 0:
    breaches.append("runs as root")
for path in {sorted(paths.values())!r}:
    if os.path.exists(path):
        breaches.append("sees " + path)
if (mlsd.config.repo_root() / "03_instructional_team").exists():
    breaches.append("sees the instructors' folder through repo_root()")
seen = 0
environment = (os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix))  # read-only, public
for root, dirs, files in os.walk("/"):
    dirs[:] = [d for d in dirs if os.path.join(root, d) not in ("/proc", "/sys", "/dev", "/usr", *environment)]
    seen += len(files)
    for name in files:
        if name.endswith(".ipynb") or name.startswith("gradebook") or name in ("progress.jsonl", "job.json", "outcome.json"):
            breaches.append("finds " + os.path.join(root, name))
    if seen > 100_000 or len(breaches) > 20:
        break
try:
    probe = Path(sysconfig.get_paths()["purelib"]) / "zz_mlsd_probe.pth"
    probe.write_text("")
    probe.unlink()
    breaches.append("writes into the Python environment")
except OSError:
    pass
for folder in ("/", "/etc", "/dev", "/home", os.path.dirname(sys.prefix)):
    if folder.startswith("/tmp/"):
        continue  # the sandbox's own /tmp, sized like the workspace (a checkout under /tmp lands here)
    try:
        probe = Path(folder) / "zz_mlsd_probe"
        probe.write_text("x")  # memory file systems without a size would get round the workspace limit
        probe.unlink()
        breaches.append("writes into " + folder)
    except OSError:
        pass
try:
    target = Path({paths["host_tmp"]!r}) / "pwned"
    target.write_text("x")
    breaches.append("writes outside its workspace")
except OSError:
    pass
for pid in os.listdir("/proc"):
    if not pid.isdigit():
        continue
    try:
        command = Path(f"/proc/{{pid}}/cmdline").read_bytes()
        environ = Path(f"/proc/{{pid}}/environ").read_bytes()
    except OSError:
        continue
    if b"mlsd.grading._runner" in command or b"pytest" in command:
        breaches.append("sees the grader's processes")
    if {CANARY!r}.encode() in environ:
        breaches.append("reads the grader's environment")
if any({CANARY!r} in value for value in os.environ.values()):
    breaches.append("inherits the grader's environment")
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", {DAEMON!r}], start_new_session=True,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(breaches)


def add(a, b):
    return a + b if not breaches else None
"""


def _probe_database(server_port: int) -> str:
    """Answer to question 2, defined only when no database attack worked (and client COPY does)."""
    return f"""
import io
import os
from urllib.parse import parse_qs, urlsplit

import psycopg2

db_breaches = []
url = os.environ["DATABASE_URL"]
query = parse_qs(urlsplit(url).query)
socket_dir, socket_port = query.get("host", ["/tmp"])[0], query.get("port", ["5432"])[0]


def attempt(name, *args, **kwargs):
    try:
        psycopg2.connect(*args, connect_timeout=5, **kwargs).close()
        db_breaches.append(name)
    except psycopg2.Error:
        pass


attempt("a superuser through the socket", host=socket_dir, port=socket_port, user="postgres", dbname="postgres")
attempt("another database", url, dbname="postgres")
attempt("a superuser over TCP", host="127.0.0.1", port={server_port}, user="postgres", dbname="postgres")
own = psycopg2.connect(url)
own.autocommit = True
with own.cursor() as cur:
    cur.execute("SELECT rolsuper OR rolcreaterole OR rolcreatedb OR rolreplication OR rolbypassrls "
                "FROM pg_roles WHERE rolname = current_user")
    if cur.fetchone()[0]:
        db_breaches.append("a privileged role")
    for role in ("pg_execute_server_program", "pg_read_server_files", "pg_write_server_files"):
        cur.execute("SELECT pg_has_role(current_user, %s, 'MEMBER')", (role,))
        if cur.fetchone()[0]:
            db_breaches.append("member of " + role)
    for statement in ("COPY (SELECT 1) TO PROGRAM 'true'", "SELECT pg_read_file('/etc/hostname')",
                      "CREATE EXTENSION IF NOT EXISTS plpython3u", "ALTER ROLE CURRENT_USER SUPERUSER"):
        try:
            cur.execute(statement)
            db_breaches.append(statement)
        except psycopg2.Error:
            pass
    cur.execute("CREATE TEMP TABLE copied (x int)")
    cur.copy_expert("COPY copied FROM STDIN", io.StringIO("1\\n2\\n3\\n"))
    cur.execute("SELECT count(*) FROM copied")
    if cur.fetchone()[0] != 3:
        db_breaches.append("client-side COPY does not work")
own.close()
print(db_breaches)


def count_rows(conn):
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM demo_loans")
        return cur.fetchone()[0] if not db_breaches else -1
"""


PROBE_NETWORK = """
import csv
import socket

reached = []
for host, port in (("pypi.org", 443), ("1.1.1.1", 53), ("10.0.0.1", 80)):
    try:
        socket.create_connection((host, port), timeout=3).close()
        reached.append(host)
    except OSError:
        pass
print(reached)


def default_rate(path):
    with open(path, newline="") as handle:
        known = [row["defaulted"] for row in csv.DictReader(handle) if row["defaulted"].strip()]
    rate = sum(int(value) for value in known) / len(known) if known else 0.0
    return rate if not reached else -1.0
"""


@pytest.fixture(scope="module")
def canary():
    os.environ["MLSD_TEST_CANARY"] = CANARY  # in the grader's own environment, for the probes to find
    yield CANARY
    os.environ.pop("MLSD_TEST_CANARY", None)


@pytest.fixture(scope="module")
def probe_path(make_submission, course, pg_url, tmp_path_factory):
    from mlsd.config import repo_root

    host_tmp = tmp_path_factory.mktemp("host_tmp")
    paths = {
        "course": str(course),
        "repo": str(repo_root() / "03_instructional_team"),
        "tests": str(repo_root() / "05_src" / "tests"),
        "host_tmp": str(host_tmp),
        "pytest_tmp": str(host_tmp.parent),
    }
    port = int(re.search(r":(\d+)/", pg_url).group(1))
    path = make_submission(
        "probe",
        answers={
            "add_answer": _probe_files(paths),
            "count_answer": _probe_database(port),
            "rate_answer": PROBE_NETWORK,
        },
    )
    return path, host_tmp


def _daemons() -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if DAEMON in " ".join(proc.info["cmdline"] or []):
            found.append(proc)
    return found


@pytest.fixture(scope="module")
def probed(probe_path, grade, canary):
    path, host_tmp = probe_path
    sandboxed = grade(path, learner="probe")
    time.sleep(1)
    survivors = _daemons()
    wrote_outside = (host_tmp / "pwned").exists()
    unsandboxed = grade(path, learner="probe-control", sandbox=False)
    for proc in _daemons():  # the control run has no sandbox to end them
        proc.kill()
    return sandboxed, unsandboxed, survivors, host_tmp, wrote_outside


def test_no_file_process_or_environment_attack_gets_through(probed):
    sandboxed, _, _, _, wrote_outside = probed
    q = by_id(sandboxed)
    passed = (q["test_add_visible"].status, q["test_add_hidden"].status) == ("passed", "passed")
    assert passed, printed(sandboxed, "add_answer")
    assert not wrote_outside
    assert not (Path(sysconfig.get_paths()["purelib"]) / "zz_mlsd_probe.pth").exists()


def test_no_database_attack_gets_through_and_client_copy_works(probed):
    q = by_id(probed[0])
    assert q["test_count"].status == "passed", printed(probed[0], "count_answer")


def test_no_network(probed):
    q = by_id(probed[0])
    assert q["test_rate"].status == "passed", printed(probed[0], "rate_answer")


def test_the_probes_can_tell_without_a_sandbox(probed):
    """The control: the same notebook without a sandbox finds the grader and the network."""
    _, control, _, host_tmp, _ = probed
    q = by_id(control)
    assert q["test_add_visible"].status == "failed" and q["test_count"].status == "failed"
    assert (host_tmp / "pwned").exists()  # the unsandboxed kernel could write outside its folder
    assert (
        control.sandbox == "none"
        and json.loads((control.out_dir / "results.json").read_text())["sandbox"] == "none"
    )


def test_no_process_outlives_the_run(probed):
    assert probed[2] == [], "a process started in a new session survived the graded run"


def test_probes_are_flagged_for_review(probed):
    result = probed[0]
    data = json.loads((result.out_dir / "results.json").read_text())
    assert data["review"] == "required"
    reasons = "\n".join(data["review_reasons"])
    for expected in ("imports subprocess", "names '/proc/'"):
        assert expected in reasons, reasons
    assert "Review required" in (result.out_dir / "summary.md").read_text()


# -- limits: each reached limit is an error on its question, with the limit named ------------------

MEMORY = "blob = bytearray(6 * 1024 ** 3)\n\n\ndef add(a, b):\n    return a + b\n"
OPEN_FILES = (
    "handles = [open(f'/tmp/handle_{i}', 'w') for i in range(500)]\n\n\ndef count_rows(conn):\n    return 0\n"
)
FILE_SIZE = (
    "with open('big.bin', 'wb') as handle:\n"
    "    for _ in range(64):\n"
    "        handle.write(b'x' * 1024 * 1024)\n\n\n"
    "def default_rate(path):\n    return 0.25\n"
)
WORKSPACE = (
    "for number in range(200):\n"
    "    with open(f'part_{number}.bin', 'wb') as handle:\n"
    "        handle.write(b'x' * 4 * 1024 * 1024)\n\n\n"
    "def add(a, b):\n    return a + b\n"
)
PROCESSES = (
    "import subprocess\n\nchildren = []\ntry:\n"
    "    for _ in range(500):\n"
    "        children.append(subprocess.Popen(['sleep', '60']))\n"
    "finally:\n"
    "    for child in children:\n"
    "        child.kill()\n\n\n"
    "def count_rows(conn):\n    return 0\n"
)
CPU = "while True:\n    pass\n"


@pytest.fixture(scope="module")
def limited(make_submission, grade):
    first = make_submission(
        "limits-1", answers={"add_answer": MEMORY, "count_answer": OPEN_FILES, "rate_answer": FILE_SIZE}
    )
    second = make_submission(
        "limits-2", answers={"add_answer": WORKSPACE, "count_answer": PROCESSES, "rate_answer": CPU}
    )
    limits = {"memory_mb": 2048, "open_files": 64, "file_size_mb": 16, "workspace_mb": 64, "processes": 64}
    one = grade(first, learner="limits-1", **limits)
    started = time.perf_counter()
    two = grade(second, learner="limits-2", cpu_seconds=20, cell_timeout=120, **limits)
    return one, two, time.perf_counter() - started


@pytest.mark.parametrize(
    ("run", "question", "limit"),
    [
        (0, "test_add_hidden", "the memory limit (2048 MiB)"),
        (0, "test_count", "the limit on open files (64)"),
        (0, "test_rate", "the file size limit (16 MiB)"),
        (1, "test_add_hidden", "the workspace size limit (64 MiB)"),
        (1, "test_count", "the limit on processes (64)"),
        (1, "test_rate", "the CPU time limit (20 s)"),
    ],
)
def test_a_reached_limit_is_an_error_that_names_it(limited, run, question, limit):
    q = by_id(limited[run])[question]
    assert q.status == "error" and q.points == 0 and limit in q.message, q


def test_limits_never_hang_the_grader(limited):
    assert limited[0].status == limited[1].status == "graded"
    assert limited[2] < 120


# -- carrying hidden tests out -------------------------------------------------------------------

CAPTURE = """
captured = []


def _keep(lines):
    captured.append("".join(lines))
    return lines


get_ipython().input_transformers_post.append(_keep)


def add(a, b):
    return a + b
"""
LEAK = """
import base64
import csv

print(base64.b64encode("\\n".join(captured).encode()).decode())


def default_rate(path):
    with open(path, newline="") as handle:
        known = [row["defaulted"] for row in csv.DictReader(handle) if row["defaulted"].strip()]
    return sum(int(value) for value in known) / len(known) if known else 0.0
"""


@pytest.fixture(scope="module")
def exfiltrated(make_submission, grade):
    import nbformat

    def extra_cells(nb):
        payload = "base64.b64encode('\\n'.join(captured).encode()).decode()"
        nb.cells.append(nbformat.v4.new_code_cell(f"raise ValueError('{EXFIL}' + {payload})"))
        nb.cells.append(nbformat.v4.new_code_cell("raise AssertionError('add should work for floats')"))
        nb.cells.append(
            nbformat.v4.new_code_cell(
                f"class {EXFIL.replace('-', '_')}(Exception): pass\nraise {EXFIL.replace('-', '_')}()"
            )
        )

    path = make_submission("exfil", answers={"add_answer": CAPTURE, "rate_answer": LEAK}, edit=extra_cells)
    return grade(path, learner="exfil")


def test_hidden_tests_do_not_leave_through_feedback(exfiltrated):
    text = written(exfiltrated)
    assert exfiltrated.score == 8  # the answers are right; only the leak failed
    assert HIDDEN_MARKER not in text and EXFIL not in text and EXFIL.replace("-", "_") not in text
    assert "add should work for floats" not in text  # no confirmation of a guessed hidden message
    assert not re.search(r"[A-Za-z0-9+/]{40,}={0,2}", text), "a long base64 string reached the feedback"

    # The control: inside the kernel the capture worked (the instructors' copy keeps its outputs).
    printed = [
        o.get("text", "")
        for c in exfiltrated.autograded.cells
        if "base64.b64encode" in c.get("source", "")
        for o in c.get("outputs", [])
        if o.get("output_type") == "stream"
    ]
    assert any(HIDDEN_MARKER in base64.b64decode(text.strip()).decode() for text in printed if text.strip())


def test_the_capture_is_flagged(exfiltrated):
    assert exfiltrated.review.required
    assert any("input_transformers_post" in reason for reason in exfiltrated.review.reasons)


# -- where no sandbox can be built -----------------------------------------------------------------


def test_without_bubblewrap_grading_refuses_and_says_where_it_runs(blank, course, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # a machine without bubblewrap
    with pytest.raises(SandboxUnavailable) as caught:
        autograde("demo", blank, "octocat", out_dir=tmp_path / "out", course=course)
    message = str(caught.value)
    assert "bubblewrap" in message and "GitHub Actions" in message and "--no-sandbox" in message
    assert isinstance(caught.value, GradingError)
    assert not (tmp_path / "out").exists()


def test_options_are_validated():
    with pytest.raises(ValueError, match="memory_mb must be a positive whole number"):
        Limits(memory_mb=0)
    assert GradingOptions().limits == Limits()
    assert sys.platform.startswith("linux")
