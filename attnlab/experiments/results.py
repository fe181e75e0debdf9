"""A study's results table, written twice: results.json (every number, for programs) and results.md (a
markdown table with the command that made it and the pictures, for people). Every study writes here."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attnlab.fileio import atomic_write_text


@dataclass
class Results:
    """What a study found: one table (rows of equal keys), notes, pictures, and any larger detail."""

    study: str  # the study's name, as `attnlab experiment` spells it
    command: str  # the command line that made these results
    title: str  # one line: the question the study answers
    columns: list[tuple[str, str]]  # (row key, column heading) in table order
    rows: list[dict[str, Any]]  # one per variant, model or case
    notes: list[str] = field(default_factory=list)  # sentences printed under the table
    pictures: list[str] = field(default_factory=list)  # file names, relative to the results folder
    detail: dict[str, Any] = field(default_factory=dict)  # more numbers (curves, examples): JSON only
    sections: list[tuple[str, str]] = field(default_factory=list)  # (heading, markdown) after the table

    def markdown(self) -> str:
        lines = [f"# {self.study}: {self.title}", "", f"Made by `{self.command}`.", ""]
        lines += ["| " + " | ".join(head for _, head in self.columns) + " |",
                  "|" + "---|" * len(self.columns)]
        lines += ["| " + " | ".join(_cell(row.get(key)) for key, _ in self.columns) + " |" for row in self.rows]
        for note in self.notes:
            lines += ["", note]
        lines.append("")
        for heading, text in self.sections:
            lines += [f"## {heading}", "", text.rstrip(), ""]
        lines += [f"![{name}]({name})" for name in self.pictures]
        return "\n".join(lines).rstrip() + "\n"

    def write(self, out_dir: str | Path) -> Path:
        """results.json and results.md into out_dir (created); returns the folder."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        record = {"study": self.study, "command": self.command, "title": self.title,
                  "columns": [key for key, _ in self.columns], "rows": self.rows, "notes": self.notes,
                  "pictures": self.pictures, **self.detail}
        atomic_write_text(out_dir / "results.json", json.dumps(record, ensure_ascii=False, indent=1) + "\n")
        atomic_write_text(out_dir / "results.md", self.markdown())
        return out_dir


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e-3 and value else f"{value:.3f}".rstrip("0").rstrip(".")
    return str(value).replace("|", "\\|")
