"""Copy a run's results into the device tool's ``$OUT`` without breaking its limits.

    python -m training.gpu.outbox OUT teacher=RUN/teacher/teacher_ema.p*.ckpt teacher=RUN/teacher/metrics.json ...

Each argument is ``FOLDER=PATTERN`` (a glob; FOLDER may be ``.`` for OUT itself), in priority order: files
are copied in that order, and one that would break a limit is left out and reported, so the most
important files always come back. The limits (the device tool's): at most 8 files, 16 MiB each,
64 MiB together, no more than two folders below OUT, and names of letters, digits, ``.``, ``_`` and
``-`` only.
"""

from __future__ import annotations

import argparse
import glob
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

MAX_FILES = 8
MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_TOTAL_BYTES = 64 * 1024 * 1024
_NAME = re.compile(r"^[A-Za-z0-9._-]+$")


@dataclass(frozen=True)
class Decision:
    """One file's fate: copied to ``target``, or left out for ``reason``."""

    source: Path
    target: Path | None
    reason: str = ""


def plan(out: Path, requests: list[tuple[str, str]]) -> list[Decision]:
    """Decide which files go where, in request order (nothing is copied).

    Args:
        out: the folder that comes back.
        requests: (folder under ``out``, glob pattern) pairs, most important first.
    """
    decisions: list[Decision] = []
    files = total = 0
    for folder, pattern in requests:
        sources = sorted(Path(p) for p in glob.glob(pattern))
        if not sources:
            decisions.append(Decision(Path(pattern), None, "no such file"))
        parts = [] if folder in ("", ".") else Path(folder).parts
        for source in sources:
            size = source.stat().st_size if source.is_file() else -1
            reason = ""
            if size < 0:
                reason = "not a file"
            elif len(parts) > 2:
                reason = f"folder {folder!r} is more than two levels deep"
            elif not all(_NAME.match(n) for n in (*parts, source.name)):
                reason = "name has characters other than letters, digits, '.', '_' and '-'"
            elif size > MAX_FILE_BYTES:
                reason = f"{size / 2**20:.1f} MiB is over the 16 MiB a file"
            elif files + 1 > MAX_FILES:
                reason = f"the {MAX_FILES} files are taken"
            elif total + size > MAX_TOTAL_BYTES:
                reason = f"{(total + size) / 2**20:.1f} MiB together would pass 64 MiB"
            if reason:
                decisions.append(Decision(source, None, reason))
                continue
            decisions.append(Decision(source, out.joinpath(*parts, source.name)))
            files, total = files + 1, total + size
    return decisions


def copy(decisions: list[Decision]) -> None:
    """Copy every file that :func:`plan` accepted."""
    for d in decisions:
        if d.target is not None:
            d.target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(d.source, d.target)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.gpu.outbox", description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the folder that comes back ($OUT)")
    parser.add_argument("requests", nargs="+", metavar="FOLDER=PATTERN", help="most important first")
    args = parser.parse_args(argv)
    requests = []
    for request in args.requests:
        folder, sep, pattern = request.partition("=")
        if not sep or not pattern:
            print(f"error: {request!r} is not FOLDER=PATTERN (use .=PATTERN for OUT itself)", file=sys.stderr)
            return 1
        requests.append((folder, pattern))
    decisions = plan(args.out, requests)
    copy(decisions)
    kept = [d for d in decisions if d.target is not None]
    size = sum(d.source.stat().st_size for d in kept)
    print(f"{args.out}: {len(kept)} files, {size / 2**20:.1f} MiB")
    for d in decisions:
        if d.target is not None:
            print(f"  {d.target.relative_to(args.out)}  {d.source.stat().st_size / 2**20:6.2f} MiB")
        else:
            print(f"  left out: {d.source} ({d.reason})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
