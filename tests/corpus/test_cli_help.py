"""Each corpus step's --help lists only the config options that step uses."""

import subprocess
import sys


def _help(step):
    r = subprocess.run([sys.executable, "-m", "koroberta", "corpus", step, "--help"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return " ".join(r.stdout.split())  # argparse wraps help text at the terminal width


def test_step_help_lists_only_its_options():
    extract, clean, sentences, split, build = (_help(s) for s in ("extract", "clean", "sentences", "split", "build"))
    assert "--min-chars" in extract and "--valid-fraction" not in extract and "--backend" not in extract
    assert "--dedup" in clean and "--min-chars" not in clean and "--workers" not in clean
    assert "--backend" in sentences and "--valid-fraction" not in sentences and "--workers" in sentences
    # split records the backend in its identity, so it takes --backend too; it runs once over all shards
    assert "--backend" in split and "--valid-fraction" in split and "--min-chars" not in split
    assert "--num-shards" in split and "--shard " not in split and "--merge" not in split and "--workers" not in split
    assert "--shard " not in clean and "--shard " in sentences
    assert all(o in build for o in ("--min-chars", "--dedup", "--backend", "--valid-fraction"))
    assert all("default: 0 = the CPUs this process may use" in h for h in (extract, sentences, build))
