"""`grade --cluster` on a Dask cluster of two worker processes (loopback), with the gradebook in a real PostgreSQL
server, against the same batch graded locally with SQLite.

One batch of correct, buggy (tests/mutants) and hostile (tests/corpus) submissions of 01-losses goes through the
cluster while one worker is killed in the middle of a task and a second process writes manual grades and
comments into the gradebook, as teaching assistants in formgrader do. Every submission must get the scores of
local grading, test by test, be recorded exactly once, and keep every manual write; export and report must work
on the PostgreSQL gradebook; the PostgreSQL server and the cluster must be gone afterwards.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from autograder.notebooks import build_submission
from autograder.sandbox import bubblewrap_works
from conftest import ROOT, run_autograder
from corpus import ASSIGNMENT, NOTEBOOK, cases
from servers import dask_cluster, postgres_server, running
from test_assignments import mutant_files, split_mutant

# One worker runs every test of this module (pytest-xdist), so that the cluster batch of `batches` runs once.
pytestmark = [pytest.mark.grading, pytest.mark.xdist_group("cluster")]
LIMITS = ["--timeout", "10", "--memory", "1024", "--processes", "32", "--no-progress"]
CORPUS = ["correct", "blank", "partial", "tamper", "invalid-json", "endless-loop", "os-exit", "memory-hog", "leaky"]
MUTANTS = ["mse_grad_wrong_sign", "softmax_in_place"]
TA_GRADE, TA_CELL = 0.5, "test_mse_loss"   # what the teaching assistant's process writes

# The teaching assistant: for each submission whose result record exists (completely graded), a manual grade
# and a comment through nbgrader's Gradebook API, as formgrader writes them; until told to stop.
TA_SCRIPT = r"""
import json, sys, time
from pathlib import Path
from nbgrader.api import Gradebook
url, records, stop, out, assignment, notebook, cell, grade = sys.argv[1:9]
written = {}
while True:
    stopping = Path(stop).exists()
    for record in sorted(Path(records).glob("*.json")):
        student = record.stem
        if student in written or student.startswith("."):   # .tmp-*: a record being written
            continue
        with Gradebook(url) as gradebook:
            submitted = gradebook.find_submission_notebook(notebook, assignment, student)
            target = next(g for g in submitted.grades if g.name == cell)
            target.manual_score = float(grade)
            comment = submitted.comments[0]
            comment.manual_comment = f"TA: look again at {student}'s answer"
            comment_cell = comment.name
            gradebook.db.commit()
        written[student] = {"time": time.time(), "comment_cell": comment_cell}
    if stopping:
        break
    time.sleep(0.2)
Path(out).write_text(json.dumps(written))
"""


def write_batch(folder: Path) -> list[str]:
    by_id = {case.student_id: case for case in cases(ROOT, folder / "no-gradebook", fork_bomb=False)}
    for student in CORPUS:
        (folder / student).mkdir(parents=True)
        (folder / student / NOTEBOOK).write_bytes(by_id[student].build(ROOT))
    mutants = {p.stem: p for p in mutant_files(ASSIGNMENT)}
    for name in MUTANTS:
        (folder / f"mutant-{name}").mkdir(parents=True)
        nbformat.write(build_submission(ASSIGNMENT, split_mutant(mutants[name])[1]),
                       folder / f"mutant-{name}" / NOTEBOOK)
    return sorted([*CORPUS, *(f"mutant-{name}" for name in MUTANTS)])


def read_csv(path: Path) -> dict[str, dict]:
    with path.open(newline="") as handle:
        return {row["student_id"]: row for row in csv.DictReader(handle)}


@pytest.fixture(scope="module")
def batches(tmp_path_factory):
    """The batch graded locally (SQLite), then on the cluster (PostgreSQL) with a worker killed and a TA writing."""
    tmp = tmp_path_factory.mktemp("cluster")
    students = write_batch(tmp / "submissions")
    isolation = [] if bubblewrap_works() else ["--isolation", "none"]
    local_env = dict(os.environ, DLCOURSE_GRADING_DIR=str(tmp / "local"))
    local = run_autograder("grade", ASSIGNMENT, str(tmp / "submissions"), "--output", str(tmp / "local.csv"),
                           "--workers", "2", *LIMITS, *isolation, env=local_env, timeout=600)
    assert local.returncode == 0, local.stdout + local.stderr[-5000:]

    from distributed import Client

    with postgres_server() as postgres, dask_cluster(workers=2) as cluster:
        env = dict(os.environ, DLCOURSE_GRADING_DIR=str(tmp / "cluster"), DLCOURSE_GRADEBOOK_URL=postgres.url,
                   PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
        records = tmp / "cluster" / "results" / ASSIGNMENT
        coordinator = subprocess.Popen(
            [sys.executable, "-m", "autograder", "grade", ASSIGNMENT, str(tmp / "submissions"), "--output",
             str(tmp / "cluster.csv"), "--cluster", cluster.address, *LIMITS, *isolation],
            cwd=ROOT, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        ta = subprocess.Popen([sys.executable, "-c", TA_SCRIPT, postgres.url, str(records), str(tmp / "stop"),
                               str(tmp / "ta.json"), ASSIGNMENT, NOTEBOOK.removesuffix(".ipynb"), TA_CELL,
                               str(TA_GRADE)], env=env, stderr=subprocess.PIPE, text=True)
        killed: list[str] = []   # the tasks the killed worker was running
        with Client(cluster.address, timeout=30) as client:
            deadline = time.monotonic() + 300
            while not killed and coordinator.poll() is None and time.monotonic() < deadline:
                names = {address: info["name"] for address, info in client.scheduler_info()["workers"].items()}
                busy = [key for address, keys in client.processing().items() if names.get(address) == "w1"
                        for key in keys]
                if busy and records.is_dir() and any(records.glob("*.json")):
                    cluster.workers["w1"].send_signal(signal.SIGKILL)
                    cluster.workers["w1"].wait()
                    killed = [str(key) for key in busy]
                time.sleep(0.1)
        stdout, stderr = coordinator.communicate(timeout=600)
        finished = time.time()
        (tmp / "stop").touch()
        ta.wait(timeout=120)
        assert ta.returncode == 0, ta.stderr.read()[-3000:]
        assert coordinator.returncode == 0, stdout + stderr[-5000:] + cluster.log("w2")[-3000:]
        exported = run_autograder("export", ASSIGNMENT, env=env, timeout=300)
        reported = run_autograder("report", ASSIGNMENT, env=env, timeout=300)
        from nbgrader.api import Gradebook

        with Gradebook(postgres.url) as gradebook:
            submissions = gradebook.assignment_submissions(ASSIGNMENT)
            gradebook_rows = sorted((s.student.id, len(s.notebooks), sum(len(n.grades) for n in s.notebooks))
                                    for s in submissions)
            comments = {s.student.id: {c.name: c.manual_comment for n in s.notebooks for c in n.comments}
                        for s in submissions}
            manual = {s.student.id: {g.name: g.manual_score for n in s.notebooks for g in n.grades}
                      for s in submissions}
        server_pid = postgres.pid
        survivor_log = cluster.log("w2")
        cluster_pids = [cluster.scheduler.pid, *(p.pid for p in cluster.workers.values())]
    return {"students": students, "local": read_csv(tmp / "local.csv"), "cluster": read_csv(tmp / "cluster.csv"),
            "stdout": stdout, "killed": killed, "ta": json.loads((tmp / "ta.json").read_text()), "finished": finished,
            "export": exported, "report": reported, "gradebook": gradebook_rows, "comments": comments,
            "manual": manual, "server_pid": server_pid, "tmp": tmp, "survivor_log": survivor_log,
            "local_output": local.stdout, "cluster_pids": cluster_pids}


def test_the_cluster_gives_the_scores_of_local_grading_with_a_worker_killed(batches):
    assert batches["killed"], "the worker was not killed while it ran a task"
    local, remote = batches["local"], batches["cluster"]
    assert sorted(remote) == sorted(local) == batches["students"]
    for student in batches["students"]:
        # every column: score, max_score, status, notes (repairs, flags) and the score of each test cell. The grades
        # table reads the gradebook, so a manual grade the teaching assistant wrote before `grade` wrote the table
        # replaces the autograde of its cell there (and the export has it in every case: see below).
        row = dict(remote[student])
        if row.get(TA_CELL) not in (None, local[student].get(TA_CELL)) and float(row[TA_CELL]) == TA_GRADE:
            row["score"] = str(round(float(row["score"]) - TA_GRADE + float(local[student][TA_CELL]), 6))
            row[TA_CELL] = local[student][TA_CELL]
        assert {k: (float(v) if k == "score" else v) for k, v in row.items()} == \
            {k: (float(v) if k == "score" else v) for k, v in local[student].items()}, student
    assert float(local["correct"]["score"]) == 15.0
    assert float(local["blank"]["score"]) == 0.0
    assert local["invalid-json"]["status"] == "rejected"
    assert 0 < float(local["tamper"]["score"]) < 15 and "tampering" in local["tamper"]["notes"]
    assert float(local["endless-loop"]["test_mae_loss"]) == 0.0
    assert all(float(local[f"mutant-{m}"]["score"]) < 15 for m in MUTANTS)


def test_every_submission_is_graded_exactly_once(batches):
    listed = [line.split()[0] for line in batches["stdout"].splitlines()
              if line and not line.startswith("grades written")]
    assert sorted(listed) == batches["students"]
    # one submission per student in the gradebook, with one notebook and its 7 graded test cells
    # (+ the written answers' comments are not grades): nothing duplicated by the retried tasks
    assert [row[0] for row in batches["gradebook"]] == batches["students"]
    assert {row[1:] for row in batches["gradebook"]} == {(1, 7)}


def test_manual_grades_written_during_the_batch_are_kept(batches):
    ta = batches["ta"]
    assert sorted(ta) == batches["students"]
    assert min(entry["time"] for entry in ta.values()) < batches["finished"], "nothing written while it ran"
    for student, entry in ta.items():
        assert batches["manual"][student][TA_CELL] == TA_GRADE, student
        assert batches["comments"][student][entry["comment_cell"]] == f"TA: look again at {student}'s answer"


def test_export_and_report_read_the_postgresql_gradebook(batches):
    assert batches["export"].returncode == 0, batches["export"].stderr[-3000:]
    assert batches["report"].returncode == 0, batches["report"].stderr[-3000:]
    export = batches["tmp"] / "cluster" / "exports" / ASSIGNMENT
    rows = {}
    for path in export.glob("*.csv"):
        with path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames and "student_id" in reader.fieldnames and "score" in reader.fieldnames:
                rows = {row["student_id"]: row for row in reader}
                break
    assert sorted(rows) == batches["students"]
    for student, local in batches["local"].items():
        # the manual grade replaces the autograde of its cell: the export has it, the rest is unchanged
        expected = float(local["score"]) - float(local[TA_CELL]) + TA_GRADE
        assert float(rows[student]["score"]) == pytest.approx(expected), student


def test_no_server_is_left_running(batches):
    assert not running(batches["server_pid"])
    assert not any(running(pid) for pid in batches["cluster_pids"])
