"""A whole term on a real JupyterHub, in a browser: nbgitpuller links, nbgrader's exchange, formgrader.

The instructor releases 01-losses to the exchange (`python -m autograder exchange release`) and logs in; each
student opens a chapter through the website's nbgitpuller link (the first click logs in, starts their server and
clones the course), fetches the assignment in the Assignments tab, fills in the answers (alice correctly, bob with
a softmax that overflows), validates and submits. The instructor collects and grades with `python -m autograder`,
opens formgrader on the pipeline's gradebook, gives bob partial credit with a comment, and returns the feedback;
each student fetches it in the Assignments tab and sees the right score, and `export` has the manual grade. Last,
the course changes and a second click on the link updates alice's clone without touching her edits.

Screenshots of every step: tests/artifacts/hub/. Run alone with `pytest -m hub`.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, expect, sync_playwright

from answers import ASSIGNMENT, NOTEBOOK, ROOT, answered
from hubtools import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, Account, Hub, _git
from hubtools import hub  # noqa: F401 (the fixture: accounts, git daemon, hub and proxy, all removed afterwards)
from autograder.course import load_config

pytestmark = [pytest.mark.hub, pytest.mark.browser, pytest.mark.grading]
CHAPTER = "book/02-loss-functions.ipynb"
PARTIAL_CREDIT = 1          # of test_softmax's 3 points, given by hand to bob
COMMENT = "Right idea; subtract the row maximum before np.exp so that large logits do not overflow."
SPAWN = 240_000             # ms: a user's first server start, on a busy 2-core machine
ACTION = 120_000            # ms: an nbgrader action (fetch, validate, submit) in a server
expect.set_options(timeout=ACTION)


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def autograder(hub: Hub, *args: str) -> str:
    """The instructor's `python -m autograder` (the grading folder, the exchange)."""
    env = {**os.environ, "DLCOURSE_GRADING_DIR": str(hub.grading), "NBGRADER_EXCHANGE_ROOT": str(hub.exchange),
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    result = subprocess.run([sys.executable, "-m", "autograder", *args], cwd=ROOT, env=env, text=True,
                            capture_output=True, timeout=600)
    assert result.returncode == 0, f"autograder {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def hub_link(hub: Hub, path: str) -> str:
    """The website's JupyterHub link (autograder.course, from _config.yml) with this test's hub and repository."""
    from dataclasses import replace

    branch = _git("symbolic-ref", "--short", "HEAD", cwd=hub.repo).strip()
    config = replace(load_config(ROOT), repository_url=hub.repo_url, branch=branch, jupyterhub_url=hub.url)
    return config.jupyterhub_link(path)


def gradebook_scores(hub: Hub) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{hub.grading / 'gradebook.db'}") as gradebook:
        return {s.student.id: s.score for s in gradebook.find_assignment(ASSIGNMENT).submissions}


def autograded_score(hub: Hub, student: str, grade_id: str) -> float:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{hub.grading / 'gradebook.db'}") as gradebook:
        return float(gradebook.find_grade(grade_id, Path(NOTEBOOK).stem, ASSIGNMENT, student).auto_score)


def log_in(page: Page, account: Account) -> None:
    page.wait_for_selector("#username_input")
    page.fill("#username_input", account.name)
    page.fill("#password_input", account.password)
    page.click("#login_submit")


def xsrf(context: BrowserContext) -> dict:
    return {"X-XSRFToken": next(c["value"] for c in context.cookies() if c["name"] == "_xsrf")}


def assignments_tab(page: Page) -> None:
    page.click("#jp-menu-panel >> text=Nbgrader")
    page.click(".lm-Menu-itemLabel:has-text('Assignment List')")
    page.wait_for_selector("#released_assignments_list")


def test_a_term_on_jupyterhub(hub: Hub):
    started = time.monotonic()
    out = autograder(hub, "exchange", "release", ASSIGNMENT)
    assert "released 01-losses" in out, out
    link = hub_link(hub, CHAPTER)
    assert link.startswith(f"{hub.url}/hub/user-redirect/git-pull?")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        contexts = {a.name: browser.new_context(viewport={"width": 1400, "height": 900})
                    for a in [hub.instructor, *hub.students]}
        pages = {name: context.new_page() for name, context in contexts.items()}
        for page in pages.values():
            page.set_default_timeout(ACTION)
        teacher = pages[hub.instructor.name]

        # Everyone logs in at once (the servers start in parallel): the instructor on the hub's login page,
        # the students by clicking the chapter's link on the website.
        teacher.goto(f"{hub.url}/hub/login")
        log_in(teacher, hub.instructor)
        for student in hub.students:
            pages[student.name].goto(link)
            log_in(pages[student.name], student)

        teacher.wait_for_selector("#jp-main-dock-panel", timeout=SPAWN)
        formgrader = f"{hub.url}/user/{hub.instructor.name}/formgrader"
        teacher.goto(f"{formgrader}/manage_assignments")
        expect(teacher.locator("tr", has_text=ASSIGNMENT)).to_contain_text("released")
        shot(teacher, "01-instructor-formgrader-released")

        clones = {}
        for number, student in enumerate(hub.students):
            page = pages[student.name]
            page.wait_for_url(f"**/user/{student.name}/lab/tree/{hub.repo.name}/{CHAPTER}", timeout=SPAWN)
            expect(page.locator(".jp-NotebookPanel:visible .jp-Cell").first).to_be_visible(timeout=SPAWN)
            shot(page, f"02-{student.name}-chapter-via-nbgitpuller")
            clones[student.name] = student.home / hub.repo.name
            assert (clones[student.name] / CHAPTER).is_file()
            assert clones[student.name].stat().st_uid == student.uid, "the clone should belong to the student"

        # Each student: fetch, answer (alice right, bob with a bug), validate, submit.
        for student, with_bug in zip(hub.students, (False, True)):
            page, context = pages[student.name], contexts[student.name]
            assignments_tab(page)
            page.click("#released_assignments_list button:has-text('Fetch')")
            page.wait_for_selector(f"#fetched_assignments_list a.assignment-notebooks-link:has-text('{ASSIGNMENT}')")
            shot(page, f"03-{student.name}-fetched")
            fetched = student.home / ASSIGNMENT / NOTEBOOK
            assert fetched.read_bytes() == (ROOT / "exercises" / ASSIGNMENT / NOTEBOOK).read_bytes()
            # The answers go in through the student's own server (the contents API JupyterLab saves with).
            api = f"{hub.url}/user/{student.name}/api/contents/{ASSIGNMENT}/{NOTEBOOK}"
            released = context.request.get(api, headers=xsrf(context)).json()["content"]
            body = {"type": "notebook", "format": "json", "content": answered(released, with_bug)}
            response = context.request.put(api, headers=xsrf(context), data=json.dumps(body))
            assert response.ok, response.text()
            page.click("#fetched_assignments_list a.assignment-notebooks-link")
            page.click("#fetched_assignments_list button:has-text('Validate')")
            dialog = page.locator(".jp-Dialog")
            expect(dialog).to_contain_text("Success! Your notebook passes all the tests.")   # visible tests only
            shot(page, f"04-{student.name}-validated")
            dialog.locator("button").last.click()
            page.click("#fetched_assignments_list button:has-text('Submit')")
            page.wait_for_selector("#submitted_assignments_list .list_item")
            expect(page.locator("#submitted_assignments_list")).to_contain_text(" UTC")
            shot(page, f"05-{student.name}-submitted")

        # The instructor collects and grades with the pipeline.
        out = autograder(hub, "exchange", "collect", ASSIGNMENT)
        assert "2 submissions" in out, out
        alice, bob = hub.students
        for student in hub.students:
            assert (hub.grading / "submitted" / student.name / ASSIGNMENT / NOTEBOOK).is_file(), out
        autograder(hub, "grade", ASSIGNMENT, "--workers", "2", "--no-progress")
        scores = gradebook_scores(hub)
        assert scores[alice.name] == 15, scores
        autograded = scores[bob.name]
        assert autograded < 15, scores
        softmax_auto = autograded_score(hub, bob.name, "test_softmax")   # bob's bug is in softmax: partial credit
        assert softmax_auto < 3, softmax_auto
        subprocess.run(["chown", "-R", f"{hub.instructor.name}:", str(hub.grading)], check=True)

        # formgrader on the pipeline's gradebook: both autograded submissions, then a manual grade and a comment.
        teacher.goto(f"{formgrader}/gradebook/{ASSIGNMENT}/{Path(NOTEBOOK).stem}")
        table = teacher.locator("table")
        expect(table).to_contain_text(alice.name)
        expect(table).to_contain_text(bob.name)
        shot(teacher, "06-instructor-formgrader-submissions")
        listing = contexts[hub.instructor.name].request.get(
            f"{formgrader}/api/submitted_notebooks/{ASSIGNMENT}/{Path(NOTEBOOK).stem}",
            headers=xsrf(contexts[hub.instructor.name])).json()
        submission = next((s for s in listing if s["student"] == bob.name), listing)
        assert submission["score"] == autograded
        teacher.goto(f"{formgrader}/submissions/{submission['id']}")
        score = teacher.locator("input.score#test_softmax")
        expect(score).to_have_attribute("placeholder", f"{round(softmax_auto, 2):g}")   # the autograder's score
        with teacher.expect_response(lambda r: "/formgrader/api/grade/" in r.url and r.request.method == "PUT"):
            score.fill(str(PARTIAL_CREDIT))
            score.press("Tab")
        comment = teacher.locator("textarea#softmax-comment")      # on bob's answer cell
        with teacher.expect_response(lambda r: "/formgrader/api/comment/" in r.url and r.request.method == "PUT"):
            comment.fill(COMMENT)
            comment.press("Tab")
        shot(teacher, "07-instructor-manual-grade")
        final = {alice.name: 15.0, bob.name: autograded - softmax_auto + PARTIAL_CREDIT}   # manual replaces auto

        out = autograder(hub, "export", ASSIGNMENT)
        rows = {r["student_id"]: r for r in
                csv.DictReader((hub.grading / "exports" / ASSIGNMENT / "grades.csv").open(encoding="utf-8"))}
        assert {name: float(rows[name]["score"]) for name in final} == final, rows
        assert float(rows[bob.name]["test_softmax"]) == PARTIAL_CREDIT
        out = autograder(hub, "exchange", "feedback", ASSIGNMENT)
        assert "feedback released to 2 students" in out, out

        # Each student fetches the feedback in the Assignments tab and sees the right score.
        for student in hub.students:
            page = pages[student.name]
            page.click("#submitted_assignments_list button:has-text('Fetch Feedback')")
            view = page.locator("#submitted_assignments_list a:has-text('view feedback')")
            expect(view).to_be_visible()
            shot(page, f"08-{student.name}-feedback-fetched")
            pages_found = list((student.home / ASSIGNMENT / "feedback").glob(f"*/{Path(NOTEBOOK).stem}.html"))
            assert len(pages_found) == 1, pages_found
            relative = pages_found[0].relative_to(student.home).as_posix()
            page.goto(f"{hub.url}/user/{student.name}/files/{relative}")
            expect(page.locator(".final-score")).to_have_text(f"{final[student.name]:g} / 15")
            text = page.locator("body").inner_text()
            assert "BEGIN HIDDEN TESTS" not in text
            assert (COMMENT in text) == (student is bob)
            shot(page, f"09-{student.name}-feedback")

        # The course changes; alice's second click updates her clone and keeps her own edits.
        clone = clones[alice.name]
        chapter = clone / CHAPTER
        notebook = json.loads(chapter.read_text(encoding="utf-8"))
        notebook["cells"].append({"cell_type": "markdown", "metadata": {}, "source": "My own notes."})
        api = f"{hub.url}/user/{alice.name}/api/contents/{hub.repo.name}/{CHAPTER}"
        body = {"type": "notebook", "format": "json", "content": notebook}
        assert contexts[alice.name].request.put(api, headers=xsrf(contexts[alice.name]), data=json.dumps(body)).ok
        update = hub.work / "update"
        _git("clone", "--quiet", str(hub.repo), str(update), cwd=hub.work)
        (update / "book" / "intro.md").write_text((update / "book" / "intro.md").read_text() + "\nAn update.\n")
        (update / "NEWS.md").write_text("A new file of the course.\n")
        _git("add", "-A", cwd=update)
        _git("commit", "--quiet", "-m", "course update", cwd=update)
        _git("push", "--quiet", "origin", "HEAD", cwd=update)
        page = pages[alice.name]
        page.goto(link)
        page.wait_for_url(f"**/user/{alice.name}/lab/tree/{hub.repo.name}/{CHAPTER}", timeout=SPAWN)
        expect(page.locator(".jp-NotebookPanel:visible .jp-Cell").last).to_contain_text("My own notes.")
        shot(page, "10-alice-chapter-after-update")
        assert (clone / "NEWS.md").read_text() == "A new file of the course.\n"
        assert (clone / "book" / "intro.md").read_text().endswith("\nAn update.\n")
        assert "My own notes." in chapter.read_text(encoding="utf-8")
        browser.close()
    print(f"the term took {time.monotonic() - started:.0f} s")
