"""fairseq json log parsing and the PNG report."""

from koroberta.train.logs import draw_report, parse_lines

LINES = """\
2026-01-01 00:00:01 | INFO | train_inner | {"epoch": 1, "update": 0.1, "loss": "11.0", "ppl": "2048", "wps": "100", "num_updates": "5", "lr": "0.001", "gnorm": "3.0"}
2026-01-01 00:00:02 | INFO | train_inner | {"epoch": 1, "update": 0.2, "loss": "10.5", "ppl": "1448", "wps": "120", "num_updates": "10", "lr": "0.0009", "gnorm": "2.0"}
2026-01-01 00:00:02 | INFO | valid | {"epoch": 1, "valid_loss": "10.4", "valid_ppl": "1351", "valid_num_updates": "10", "valid_best_loss": "10.4"}
2026-01-01 00:00:03 | INFO | train_inner | {"epoch": 1, "update": 0.3, "loss": "10.2", "ppl": "1176", "wps": "1
# koroberta train: fairseq-train ... (restart after kill -9: update 15 is replayed)
2026-01-01 00:01:03 | INFO | train_inner | {"epoch": 1, "update": 0.3, "loss": "10.1", "ppl": "1097", "wps": "90", "num_updates": "15", "lr": "0.0008", "gnorm": "1.5"}
2026-01-01 00:01:04 | INFO | valid | {"epoch": 1, "valid_loss": "10.0", "valid_ppl": "1024", "valid_num_updates": "15", "valid_best_loss": "10.0"}
2026-01-01 00:01:04 | INFO | train | {"epoch": 1, "train_loss": "10.5", "train_ppl": "1448", "train_num_updates": "15", "train_lr": "0.0008"}
2026-01-01 00:01:04 | INFO | fairseq_cli.train | done training in 3.5 seconds
""".splitlines()


def test_parse_and_stats():
    t = parse_lines(LINES)
    assert sorted(t.inner) == [5, 10, 15] and sorted(t.valid) == [10, 15] and sorted(t.epoch) == [15]
    assert t.inner[15]["loss"] == 10.1 and t.valid[15]["best_loss"] == 10.0 and t.epoch[15]["loss"] == 10.5
    s = t.stats()
    assert (s["updates"], s["first_train_loss"], s["final_train_loss"], s["final_valid_loss"]) == (15, 11.0, 10.1, 10.0)
    assert t.series("inner", "lr") == ([5, 10, 15], [0.001, 0.0009, 0.0008])


def test_empty_log_has_no_losses():
    s = parse_lines(["nothing here"]).stats()
    assert s["updates"] == 0 and s["final_train_loss"] is None


def test_report_pngs(tmp_path):
    paths = draw_report(parse_lines(LINES), tmp_path)
    assert sorted(p.name for p in paths) == ["gnorm.png", "loss.png", "lr.png", "ppl.png", "wps.png"]
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5000


def test_progress_line_shows_only_training_records():
    from koroberta.train.logs import progress_line

    inner = ('2026-11-30 10:00:00 | INFO | train_inner | {"epoch": 1, "loss": "10.43", "wps": "10234.5", '
             '"lr": "0.00098", "num_updates": "100", "loss_scale": "128"}')
    assert progress_line(inner, 1200) == ("train update  100/1200  loss 10.430 bits  lr 0.00098  10,234 tokens/s  "
                                          "loss scale 128")
    valid = 'x | INFO | valid | {"epoch": 1, "valid_loss": "9.1", "valid_num_updates": "400"}'
    assert progress_line(valid, 1200) == "valid update  400/1200  loss 9.100 bits"
    for noise in ("2026-11-30 | INFO | fairseq_cli.train | RobertaModel(", "UserWarning: deprecated", ""):
        assert progress_line(noise, 1200) is None


SUBSET_LINES = LINES + """\
2026-01-01 00:01:05 | INFO | valid | {"epoch": 1, "valid_loss": "9.9", "valid_num_updates": "20", "valid_best_loss": "9.9"}
2026-01-01 00:01:05 | INFO | valid_ko-wiki.v2 | {"epoch": 1, "valid_ko-wiki.v2_loss": "9.5", "valid_ko-wiki.v2_num_updates": "20"}
2026-01-01 00:01:05 | INFO | valid_best | {"epoch": 1, "valid_best_loss": "10.3", "valid_best_num_updates": "20"}
2026-01-01 00:02:05 | INFO | valid_best | {"epoch": 1, "valid_best_loss": "10.6", "valid_best_num_updates": "25"}
""".splitlines()


def test_per_subset_records():
    """A subset's record is tagged with its name (logger and key prefix); a source named "best" is no
    valid_best_loss, and the mixed valid series is the same as without subsets."""
    t = parse_lines(SUBSET_LINES)
    base = parse_lines(LINES + SUBSET_LINES[len(LINES):len(LINES) + 1])
    assert t.valid == base.valid and sorted(t.subsets) == ["valid_best", "valid_ko-wiki.v2"]
    assert t.series("valid_best", "loss") == ([20, 25], [10.3, 10.6]) and t.updates == 25
    assert t.stats()["valid_subsets"] == {"valid": {"final_loss": 9.9, "best_loss": 9.9},
                                          "valid_best": {"final_loss": 10.6, "best_loss": 10.3},
                                          "valid_ko-wiki.v2": {"final_loss": 9.5, "best_loss": 9.5}}
    assert "valid_subsets" not in parse_lines(LINES).stats()


def test_per_subset_progress_line_and_plot(tmp_path):
    from koroberta.train.logs import progress_line

    assert progress_line(SUBSET_LINES[-1], 30) == "valid_best update 25/30  loss 10.600 bits"
    base = SUBSET_LINES[:len(LINES) + 1]  # the same records without the subsets'
    plain = draw_report(parse_lines(base), tmp_path / "plain")
    with_subsets = draw_report(parse_lines(SUBSET_LINES), tmp_path / "subsets")
    assert [p.name for p in plain] == [p.name for p in with_subsets]
    # the subsets add curves to loss.png only (their records hold no ppl); every other plot is the same
    for p in plain:
        same = p.read_bytes() == (tmp_path / "subsets" / p.name).read_bytes()
        assert same == (p.name != "loss.png"), p.name
