"""Each corpus step's --help lists only the config options that step uses."""

import subprocess
import sys


def _help(step):
    r = subprocess.run([sys.executable, "-m", "koroberta", "corpus", step, "--help"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_step_help_lists_only_its_options():
    extract, clean, split, build = (_help(s) for s in ("extract", "clean", "split", "build"))
    assert "--min-chars" in extract and "--valid-fraction" not in extract and "--backend" not in extract
    assert "--dedup" in clean and "--min-chars" not in clean and "--workers" not in clean
    assert "--backend" in split and "--valid-fraction" in split and "--min-chars" not in split
    assert all(o in build for o in ("--min-chars", "--dedup", "--backend", "--valid-fraction"))
