"""Report: item analysis of one graded assignment, for the instructor.

Writes ``reports/<assignment>/``:

- ``report.md``: pass rate per test cell (the share of submissions with full points on it) with its most common
  failure messages (numbers replaced by ``#`` so that "got 0.31" and "got 0.42" count as one), the score
  distribution, grading time per submission, and the submissions that were repaired, flagged for tampering,
  lost their kernel, or were rejected, plus the input files ``collect`` rejected or superseded;
- ``scores.png``: a histogram of the scores;
- ``items.csv``: the per-test numbers, for a spreadsheet.

Everything is read from the result records, so a report can be rewritten at any time, also during grading.
"""

from __future__ import annotations

import csv
import re
import statistics
from collections import Counter
from pathlib import Path

from autograder.store import Result, SafeCsvWriter, load_results, printable, reports_dir, spreadsheet_value

_NUMBER = re.compile(r"-?\d+(\.\d+)?(e[-+]?\d+)?", re.IGNORECASE)


def failure_key(message: str) -> str:
    """A message with its numbers blanked, to group failures that differ only in values."""
    return _NUMBER.sub("#", message)


def item_statistics(results: list[Result]) -> list[dict]:
    """Per test cell: points, number graded, pass rate, mean score and the most common failures."""
    items: dict[str, dict] = {}
    for result in results:
        if result.status != "graded":
            continue
        for notebook in result.notebooks:
            for test in notebook.tests:
                item = items.setdefault(test.grade_id, {"test": test.grade_id, "points": test.points, "graded": 0,
                                                        "passed": 0, "total": 0.0, "failures": Counter(),
                                                        "examples": {}, "hint": test.hint})
                item["graded"] += 1
                item["total"] += test.score
                if test.outcome == "passed":
                    item["passed"] += 1
                else:
                    key = failure_key(f"{test.outcome}: {test.message}" if test.message else test.outcome)
                    item["failures"][key] += 1
                    item["examples"].setdefault(key, test.message or test.outcome)
    for item in items.values():
        item["pass_rate"] = item["passed"] / item["graded"] if item["graded"] else 0.0
        item["mean"] = item["total"] / item["graded"] if item["graded"] else 0.0
    return list(items.values())


def histogram(results: list[Result], path: Path, assignment: str) -> Path:
    """Bar chart of the number of submissions per score."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scores = [r.score for r in results]
    top = max([r.max_score for r in results] + [1])
    figure, axes = plt.subplots(figsize=(7, 3.5))
    counts = Counter(scores)
    axes.bar(list(counts), list(counts.values()), width=0.8 if top > 5 else 0.3, color="#3b6ea8")
    axes.set_xlim(-0.5, top + 0.5)
    axes.set_title(f"{assignment}: scores of {len(scores)} submissions")
    axes.set_xlabel(f"score (out of {top:g})")
    axes.set_ylabel("submissions")
    axes.yaxis.get_major_locator().set_params(integer=True)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def _collection_rows(assignment: str) -> list[dict]:
    path = reports_dir(assignment) / "collection.csv"
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        rows = [{k: printable(spreadsheet_value(v or "")) for k, v in row.items() if k}
                for row in csv.DictReader(handle)]
    return [row for row in rows if row.get("outcome") != "accepted" or row.get("flag")]


def write_report(assignment: str) -> Path:
    """Write report.md, scores.png and items.csv; return the path of report.md."""
    results = load_results(assignment)
    folder = reports_dir(assignment)
    folder.mkdir(parents=True, exist_ok=True)
    items = item_statistics(results)
    graded = [r for r in results if r.status == "graded"]
    lines = [f"# Item analysis: {assignment}", ""]
    if not results:
        lines += ["No graded submission yet: run `python -m autograder grade` first.", ""]
        path = folder / "report.md"
        path.write_text("\n".join(lines), encoding="utf-8")
        return path
    scores = [r.score for r in results]
    top = max(r.max_score for r in results)
    lines += [f"{len(results)} submissions ({len(graded)} graded, {len(results) - len(graded)} rejected or "
              f"failed). Scores out of {top:g}: mean {statistics.mean(scores):.2f}, median "
              f"{statistics.median(scores):g}, full marks {sum(s >= top for s in scores)}, zero "
              f"{sum(s == 0 for s in scores)}.", "",
              f"![Histogram of the scores of {len(scores)} submissions of {assignment}, out of {top:g}]"
              f"({histogram(results, folder / 'scores.png', assignment).name})", "",
              "## Tests", "", "| Test | Points | Pass rate | Mean | Most common failures |",
              "| --- | ---: | ---: | ---: | --- |"]
    for item in items:
        common = "<br>".join(f"{n}× {item['examples'][key][:120]}".replace("|", "\\|")
                             for key, n in item["failures"].most_common(3))
        lines.append(f"| `{item['test']}` | {item['points']:g} | {item['pass_rate']:.0%} | {item['mean']:.2f} | "
                     f"{common or '–'} |")
    times = sorted((sum(n.seconds for n in r.notebooks), r.student_id) for r in results)
    if times:
        values = [t for t, _ in times]
        lines += ["", "## Grading time", "",
                  f"Kernel time per submission: median {statistics.median(values):.1f} s, longest "
                  f"{values[-1]:.1f} s ({times[-1][1]}), total {sum(values):.0f} s.", "",
                  "| Submission | Seconds |", "| --- | ---: |"]
        lines += [f"| {student} | {seconds:.1f} |" for seconds, student in reversed(times)]
    sections = {"Repaired": [], "Tampering (neutralised or flagged)": [], "Kernel problems": [],
                "Rejected or failed": []}
    for r in results:
        for n in r.notebooks:
            sections["Repaired"] += [f"{r.student_id}: {x}" for x in n.repairs]
            sections["Tampering (neutralised or flagged)"] += [f"{r.student_id}: {x}" for x in n.tampering]
            if n.problem and r.status == "graded":
                sections["Kernel problems"].append(f"{r.student_id}: {n.problem}")
        if r.status != "graded":
            sections["Rejected or failed"].append(f"{r.student_id} ({r.status}): {r.reason}")
    sections["Input files not accepted or flagged by collect"] = [
        f"{row['input']}: {row['outcome']}, {row['reason']}" + (f" (flagged: {row['flag']})" if row.get("flag")
                                                                else "")
        for row in _collection_rows(assignment)]
    for title, entries in sections.items():
        lines += ["", f"## {title} ({len(entries)})", ""] + ([f"- {e}" for e in entries] or ["None."])
    path = folder / "report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with (folder / "items.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = SafeCsvWriter(handle)   # failure messages come from student code: no formula gets through
        writer.writerow(["test", "points", "graded", "passed", "pass_rate", "mean_score", "most_common_failure"])
        for item in items:
            first = item["failures"].most_common(1)
            writer.writerow([item["test"], f"{item['points']:g}", item["graded"], item["passed"],
                             f"{item['pass_rate']:.3f}", f"{item['mean']:.3f}",
                             item["examples"][first[0][0]] if first else ""])
    return path
