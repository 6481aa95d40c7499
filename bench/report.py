"""Write one benchmark's section of docs/benchmarks.md, stamped with the machine and date."""

from __future__ import annotations

import datetime
import os
import platform
import re
from pathlib import Path

BENCHMARKS_MD = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
HEADER = (
    "# Benchmarks\n\nWritten by `make bench` (`python -m bench [name]`). Every benchmark "
    "measures a baseline and ours in the same run and reports the ratio.\n"
)


def machine() -> str:
    """One line describing where the numbers were measured."""
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    cpu = platform.processor() or platform.machine()
    return (
        f"{os.cpu_count()} CPU cores ({cpu}), {memory_gib:.0f} GiB RAM, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


def write_section(name: str, title: str, body: str, path: Path = BENCHMARKS_MD) -> None:
    """Replace (or append) the section ``name`` of the benchmarks document."""
    stamp = f"Measured {datetime.date.today().isoformat()} on {machine()}."
    section = (
        f"<!-- bench:{name} -->\n## {title}\n\n{stamp}\n\n{body.strip()}\n<!-- /bench:{name} -->\n"
    )
    text = path.read_text() if path.exists() else HEADER
    pattern = re.compile(
        rf"<!-- bench:{re.escape(name)} -->.*?<!-- /bench:{re.escape(name)} -->\n", re.S
    )
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else f"{text}\n{section}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def table(header: list[str], rows: list[list]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
