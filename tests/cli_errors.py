"""What every bad-input case checks: exit code 2, exactly one stderr line ``error: ... — fix: ...`` holding the
needles, no traceback, and (optionally) nothing complete-looking left in an output directory."""

from __future__ import annotations

from pathlib import Path


def error_line(stderr: str, *needles: str, absent: tuple[str, ...] = ()) -> str:
    """The single error line of ``stderr``, after checking its shape and that it holds every needle."""
    lines = [l for l in stderr.splitlines() if l.strip()]
    assert "Traceback" not in stderr and len(lines) == 1, stderr[-3000:]
    line = lines[0]
    assert line.startswith("error: ") and " — fix: " in line, line
    for n in needles:
        assert n in line, (n, line)
    for n in absent:
        assert n not in line, (n, line)
    return line


def after_needs(stderr: str, stage: str, *, warned: bool | None = None) -> str:
    """``stderr`` without its first line, which must be the stage's needs line (koroberta.resources: an error found
    while the stage works -- a disk that fills, fairseq failing, a parity check on the export -- comes after it), nor
    the low-disk WARNING after it (``warned``: True it must be there, None it may, False it must not)."""
    lines = [l for l in stderr.splitlines() if l.strip()]
    assert lines and f"| INFO | " in lines[0] and f" | {stage}: needs about " in lines[0], stderr[-3000:]
    rest = lines[1:]
    if rest and "| WARNING |" in rest[0] and "free on the filesystem of" in rest[0]:
        assert warned is not False, stderr[-3000:]
        rest = rest[1:]
    else:
        assert not warned, f"no low-disk warning: {stderr[-3000:]}"
    return "\n".join(rest) + "\n"


def main_error(capsys, argv: list, *needles: str, absent: tuple[str, ...] = (), out: Path | None = None) -> str:
    """``koroberta.cli.main(argv)`` in this process (no interpreter start per case): exit 2 and one error line."""
    from koroberta.cli import main

    assert main([str(a) for a in argv]) == 2
    line = error_line(capsys.readouterr().err, *needles, absent=absent)
    if out is not None:
        assert not out.exists() or not list(out.rglob("_COMPLETE")), out
    return line
