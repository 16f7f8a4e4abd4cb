"""Stage-wise tables, the shape of the paper's Table 11: one row per training stage (CPT / + SFT / + RL), one column
per suite, in Markdown, CSV or LaTeX, optionally beside a paper's published rows.

Rows come from the lineage of the evaluated checkpoint (`results["policy_lineage"]`, vla_bench/lineage.py): a result
belongs to the row (pipeline, stage label). A chain of single commands (`train`, then `rl --init`) has no pipeline
name and is grouped by its root checkpoint instead. A result without lineage (a scripted policy, a checkpoint from
before lineage.json) is an error rather than a row named after its directory: a stage table's row claims which stage
of which pipeline made the numbers, and a directory name cannot back that claim (`vla-bench table` without --by shows
such runs one row each). Two results for one (row, suite) are an error naming both files, never an average.

A cell is the metric (success by default): a rate in percent with its 95% interval, or a mean with its standard
error, and its count. With several eval seeds the interval already includes the spread between seeds and the count
reads episodes x seeds (`n=50x3`). Reference rows (leaderboards/reference/*.json) are plain published numbers in a
block of their own; they never enter our cells, and in CSV their `source` column says where they come from.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from vla_bench.envs.registry import suites as registered_suites
from vla_bench.eval.results import RESULTS_FILE, load_results
from vla_bench.eval.table import NOT_COMPARABLE, _metric, _not_comparable
from vla_bench.lineage import STAGES, chain, describe

REFERENCE_DIR = Path(__file__).resolve().parents[2] / "leaderboards" / "reference"
REFERENCE_NOTE = "\u2021"  # double dagger: the reference figure is not measured the way our column is
FORMATS = ("markdown", "csv", "latex")
CSV_COLUMNS = ("source", "pipeline", "row", "stage", "lineage", "suite", "metric", "kind", "value", "ci95_low",
               "ci95_high", "stderr", "n", "n_episodes", "seeds", "errors", "complete", "note", "file")


@dataclass(frozen=True)
class Cell:
    """One metric of one suite from one results file; rates (value, ci95) in percent."""
    kind: str  # rate | mean
    value: float
    ci95: tuple[float, float] | None  # rates only
    stderr: float | None  # means only
    n: int  # episode rows: episodes x seeds
    n_episodes: int
    seeds: int
    errors: int
    complete: bool
    not_comparable: str | None  # why this suite's figures do not compare to published ones, or None
    file: Path


@dataclass
class StageRow:
    group: str  # the pipeline's name, or "<root checkpoint> (no pipeline)"
    label: str  # the stage's label in its pipeline
    stage: str  # t2a | cpt | sft | rl
    depth: int  # records in the lineage chain
    lineage: str  # 'cpt > sft > rl'
    checkpoint: tuple[str, str]  # (path, created): which checkpoint, to refuse two in one row
    title: str = ""  # the paper's row label: 'CPT' for a group's first row, then '+ SFT', '+ RL'
    cells: dict[str, Cell] = field(default_factory=dict)


@dataclass
class ReferenceRow:
    label: str  # 'CPT', '+ SFT', ...
    stage: str | None
    source: str  # 'paper Table 11'
    values: dict[str, tuple[float, str]]  # suite -> (percent, the paper's column name)


@dataclass
class Reference:
    name: str
    title: str
    citation: str
    file: Path
    rows: list[ReferenceRow]
    notes: dict[str, str]  # the paper's column -> how its figure differs from ours


@dataclass
class StageTable:
    metric: str
    suites: list[str]
    rows: list[StageRow]
    reference: Reference | None = None

    @property
    def groups(self) -> list[str]:
        return list(dict.fromkeys(r.group for r in self.rows))


def find_results(paths: list[str | Path]) -> list[Path]:
    """results.json files: each path a results file, or a directory searched recursively (an eval run directory, a
    pipeline run's eval/<stage>/<suite>/ tree, a folder of runs). A file reached twice counts once."""
    found: dict[Path, Path] = {}
    for p in map(Path, paths):
        if p.is_file():
            files = [p]
        elif p.is_dir():
            files = sorted(p.rglob(RESULTS_FILE))
            if not files:
                raise FileNotFoundError(f"no {RESULTS_FILE} under {p}")
        else:
            raise FileNotFoundError(f"no results at {p}")
        for f in files:
            found.setdefault(f.resolve(), f)
    return list(found.values())


def _group(lineage: dict) -> str:
    """The name of the chain a lineage belongs to: its pipeline, or for single commands its root checkpoint."""
    return lineage.get("pipeline") or f"{Path(chain(lineage)[0]['checkpoint']).name} (no pipeline)"


def _make_cell(results: dict, suite: str, metric: str, file: Path) -> Cell | None:
    summary = results["metrics"]["suites"][suite]
    m = _metric(summary, metric)
    if not m or not m["n"] or m["value"] is None:
        return None
    seeds = m.get("seeds", 1)
    rate = m["kind"] == "rate"
    return Cell(kind=m["kind"], value=100 * m["value"] if rate else m["value"],
                ci95=(100 * m["ci95"][0], 100 * m["ci95"][1]) if rate else None,
                stderr=None if rate else m.get("stderr"), n=m["n"], n_episodes=m.get("n_episodes", m["n"] // seeds),
                seeds=seeds, errors=summary.get("errors", 0), complete=results.get("complete", True),
                not_comparable=_not_comparable(results, suite), file=file)


def stage_table(paths: list[str | Path], metric: str = "success", reference: str | None = None) -> StageTable:
    """The stage rows of every results.json under `paths`; `reference`: a name from leaderboards/reference/ (or a
    path to such a JSON file) whose rows are shown beside ours."""
    rows: dict[tuple, StageRow] = {}
    files: dict[tuple, Path] = {}  # (row key, suite) -> the file that filled it
    first_file: dict[tuple, Path] = {}  # row key -> the file that made the row
    for file in find_results(paths):
        results = load_results(file)
        lineage = results.get("policy_lineage")
        if not lineage:
            raise ValueError(f"{file}: the evaluated policy {results['config']['policy']!r} has no lineage (not a "
                             "checkpoint, or one written before lineage.json), so it has no stage: leave it out, or "
                             "use `vla-bench table` without --by (one row per run)")
        group = _group(lineage)
        key = (group, lineage["label"])
        checkpoint = (lineage["checkpoint"], lineage.get("created", ""))
        row = rows.setdefault(key, StageRow(group=group, label=lineage["label"],
                                            stage=lineage["stage"], depth=len(chain(lineage)),
                                            lineage=describe(lineage), checkpoint=checkpoint))
        first = first_file.setdefault(key, file)
        if row.checkpoint != checkpoint:
            raise ValueError(f"stage {row.label!r} of {group} comes from two checkpoints: {row.checkpoint[0]} "
                             f"(created {row.checkpoint[1]}, in {first}) and {checkpoint[0]} (created {checkpoint[1]},"
                             f" in {file}); pass the results of one")
        for suite in results["metrics"]["suites"]:
            if (key, suite) in files:
                raise ValueError(f"two results for stage {row.label!r} of {group} on {suite}: {files[key, suite]} and "
                                 f"{file}; pass one of them (results are never averaged)")
            files[key, suite] = file
            cell = _make_cell(results, suite, metric, file)
            if cell:
                row.cells[suite] = cell
    if not any(r.cells for r in rows.values()):
        raise KeyError(f"no result has the metric {metric!r}")
    order = {name: i for i, name in enumerate(registered_suites())}
    suites = sorted({s for r in rows.values() for s in r.cells}, key=lambda s: (order.get(s, len(order)), s))
    groups = list(dict.fromkeys(r.group for r in rows.values()))  # in the order the files were given
    ordered = sorted(rows.values(), key=lambda r: (groups.index(r.group), r.depth, STAGES.index(r.stage), r.label))
    for i, r in enumerate(ordered):
        # "+ SFT" when a row above (same pipeline) is its ancestor, as in the paper; a branch of a pipeline that
        # starts elsewhere (SFT from scratch beside SFT from T2A) keeps its plain label.
        ancestors = set(r.lineage.split(" > ")[:-1])
        follows = any(o.group == r.group and o.label in ancestors for o in ordered[:i])
        r.title = f"+ {r.label.upper()}" if follows else r.label.upper()
    table = StageTable(metric=metric, suites=suites, rows=ordered)
    if reference:
        table.reference = load_reference(reference, metric, suites)
    return table


def known_references() -> dict[str, Path]:
    """Reference name -> its file in leaderboards/reference/."""
    if not REFERENCE_DIR.is_dir():
        return {}
    return {json.loads(p.read_text())["name"]: p for p in sorted(REFERENCE_DIR.glob("*.json"))}


def load_reference(name: str, metric: str, suites: list[str]) -> Reference:
    """A paper's rows placed in our columns `suites` (those of its figures that measure `metric` on them)."""
    path = Path(name)
    if not (path.suffix == ".json" and path.is_file()):
        known = known_references()
        if name not in known:
            raise KeyError(f"unknown reference {name!r}; known: {', '.join(known) or 'none'} (the files in "
                           f"{REFERENCE_DIR}), or the path of such a JSON file")
        path = known[name]
    doc = json.loads(path.read_text())
    benchmarks = doc["benchmarks"]
    rows = []
    for r in doc["rows"]:
        values: dict[str, tuple[float, str]] = {}
        for column, value in r["values"].items():
            if column not in benchmarks:
                raise ValueError(f"{path}: row {r['label']!r} has a value for {column!r}, which `benchmarks` lacks")
            if benchmarks[column].get("metric", "success") != metric:
                continue
            for suite in benchmarks[column]["suites"]:
                if suite in values:
                    raise ValueError(f"{path}: row {r['label']!r} puts {values[suite][1]!r} and {column!r} both in "
                                     f"{suite}")
                if suite in suites:
                    values[suite] = (float(value), column)
        if values:
            rows.append(ReferenceRow(label=r["label"], stage=r.get("stage"), source=r["source"], values=values))
    if not rows:
        covered = sorted({f"{c} ({', '.join(b['suites'])})" for c, b in benchmarks.items()
                          if b["suites"] and b.get("metric", "success") == metric})
        raise ValueError(f"{doc['title']} reports {metric} on none of this table's suites ({', '.join(suites)}); it "
                         f"reports: {'; '.join(covered) or 'nothing for this metric'}")
    shown = {column for r in rows for _, column in r.values.values()}
    notes = {c: b["note"] for c, b in benchmarks.items() if c in shown and b.get("note")}
    return Reference(name=doc["name"], title=doc["title"], citation=doc["citation"], file=path, rows=rows,
                     notes=notes)


def _cell_parts(c: Cell, times: str = "x") -> tuple[str, str, str]:
    """(value, its interval or standard error, its count and caveats)."""
    if c.kind == "rate":
        head, spread = f"{c.value:.1f}", f"[{c.ci95[0]:.0f}, {c.ci95[1]:.0f}]"
    else:
        head, spread = f"{c.value:.3g}", "" if c.stderr is None else f"\u00b1 {c.stderr:.3g}"
    count = f"n={c.n_episodes}{times}{c.seeds}" if c.seeds > 1 else f"n={c.n}"
    count += (f", {c.errors} errors" if c.errors else "") + ("" if c.complete else ", partial")
    return head, spread, count


def _cell_text(c: Cell | None) -> str:
    if c is None:
        return "-"
    return " ".join(p for p in _cell_parts(c) if p) + (f" {NOT_COMPARABLE}" if c.not_comparable else "")


def _ref_text(row: ReferenceRow, suite: str, notes: dict[str, str], missing: str = "-") -> str:
    if suite not in row.values:
        return missing
    value, column = row.values[suite]
    return f"{value:.1f}" + (f" {REFERENCE_NOTE}" if column in notes else "")


def _headers(table: StageTable) -> list[str]:
    return (["pipeline"] if len(table.groups) > 1 else []) + ["stage", "lineage", *table.suites]


def footnotes(table: StageTable) -> list[str]:
    """Lines under the table: suites not comparable to published numbers, then the reference's caveats and source."""
    notes = {}
    for r in table.rows:
        for s, c in r.cells.items():
            if c.not_comparable:
                notes.setdefault(s, c.not_comparable)
    lines = [f"{NOT_COMPARABLE} {s}: {reason}" for s, reason in notes.items()]
    ref = table.reference
    if ref:
        lines += [f"{REFERENCE_NOTE} {ref.title}, {column}: {note}" for column, note in ref.notes.items()]
        lines.append(f"{ref.title}: {ref.citation}; published figures in percent (no intervals or episode "
                     "counts), not our runs.")
    return lines


def to_markdown(table: StageTable) -> str:
    headers = _headers(table)
    multi = len(table.groups) > 1
    title = [] if table.metric == "success" else [f"{table.metric}:", ""]
    lines = title + ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for r in table.rows:
        cells = ([r.group] if multi else []) + [r.title, r.lineage] + [_cell_text(r.cells.get(s)) for s in table.suites]
        lines.append("| " + " | ".join(cells) + " |")
    ref = table.reference
    if ref:
        lines.append("| " + " | ".join([f"**{ref.title}, reference (not our runs)**"] + [""] * (len(headers) - 1))
                     + " |")
        for r in ref.rows:
            cells = [_ref_text(r, s, ref.notes) for s in table.suites]
            lines.append("| " + " | ".join(([ref.title] if multi else []) + [r.label, r.source, *cells]) + " |")
    return "\n".join(lines + [""] + footnotes(table)).rstrip() + "\n"


def to_csv(table: StageTable) -> str:
    """One line per filled cell (tidy: pivot on `suite` for the table's shape); rates in percent."""
    buf = io.StringIO()
    out = csv.DictWriter(buf, CSV_COLUMNS, lineterminator="\n")
    out.writeheader()
    for r in table.rows:
        for s in table.suites:
            c = r.cells.get(s)
            if c is None:
                continue
            out.writerow({"source": "ours", "pipeline": r.group, "row": r.title, "stage": r.stage,
                          "lineage": r.lineage, "suite": s, "metric": table.metric, "kind": c.kind,
                          "value": round(c.value, 4), "ci95_low": round(c.ci95[0], 4) if c.ci95 else "",
                          "ci95_high": round(c.ci95[1], 4) if c.ci95 else "",
                          "stderr": "" if c.stderr is None else c.stderr, "n": c.n, "n_episodes": c.n_episodes,
                          "seeds": c.seeds, "errors": c.errors, "complete": c.complete,
                          "note": c.not_comparable or "", "file": str(c.file)})
    ref = table.reference
    if ref:
        for r in ref.rows:
            for s in table.suites:
                if s in r.values:
                    value, column = r.values[s]
                    note = f"paper column {column}" + (f": {ref.notes[column]}" if column in ref.notes else "")
                    out.writerow({"source": f"reference:{ref.name}", "pipeline": ref.title, "row": r.label,
                                  "stage": r.stage or "", "lineage": r.source, "suite": s, "metric": table.metric,
                                  "kind": "rate", "value": value, "note": note, "file": str(ref.file)})
    return buf.getvalue()


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
        "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", NOT_COMPARABLE: r"$^\dagger$",
        REFERENCE_NOTE: r"$^\ddagger$", "\u00b1": r"$\pm$", ">": r"$>$"}


def _tex(text: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in text)


def _tex_cell(c: Cell | None) -> str:
    if c is None:
        return "--"
    head, spread, count = _cell_parts(c, times="\u00d7")
    small = _tex(" ".join(p for p in (spread, count) if p)).replace("\u00d7", r"$\times$")
    return _tex(head) + r" {\scriptsize " + small + "}" + (r"$^\dagger$" if c.not_comparable else "")


def to_latex(table: StageTable) -> str:
    """A booktabs tabular; footnotes follow it as small paragraphs."""
    headers = _headers(table)
    multi = len(table.groups) > 1
    lines = [r"\begin{tabular}{" + "l" * (len(headers) - len(table.suites)) + "c" * len(table.suites) + "}",
             r"\toprule", " & ".join(_tex(h) for h in headers) + r" \\", r"\midrule"]
    for r in table.rows:
        cells = [_tex(x) for x in ([r.group] if multi else []) + [r.title, r.lineage]]
        cells += [_tex_cell(r.cells.get(s)) for s in table.suites]
        lines.append(" & ".join(cells) + r" \\")
    ref = table.reference
    if ref:
        lines += [r"\midrule", rf"\multicolumn{{{len(headers)}}}{{l}}{{\textit{{{_tex(ref.title)}, reference (not "
                  r"our runs)}} \\"]
        for r in ref.rows:
            cells = [_tex(x) for x in ([ref.title] if multi else []) + [r.label, r.source]]
            cells += [_tex(_ref_text(r, s, ref.notes, missing="--")) for s in table.suites]
            lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    lines += [r"{\footnotesize " + _tex(note) + r"}\par" for note in footnotes(table)]
    return "\n".join(lines) + "\n"


def render(table: StageTable, fmt: str = "markdown") -> str:
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; valid: {', '.join(FORMATS)}")
    return {"markdown": to_markdown, "csv": to_csv, "latex": to_latex}[fmt](table)
