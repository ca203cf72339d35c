"""`dorsum lesson --jobs N`: the same figures, rendered in N processes."""

from __future__ import annotations

import numpy as np
from PIL import Image
from test_lesson import GOOD, run_lesson, write

from viewer.output import read_png_parameters


def test_jobs_give_the_pictures_and_metadata_of_one_process(fixture_atlas_dir, tmp_path, capsys):
    lesson = write(tmp_path, GOOD + '\n[[figures]]\noutput = "deep.png"\nonly = ["deep"]\n')
    assert run_lesson(fixture_atlas_dir, lesson, tmp_path / "one") == 0
    capsys.readouterr()
    assert run_lesson(fixture_atlas_dir, lesson, tmp_path / "two", "--jobs", "2") == 0
    out = capsys.readouterr().out
    # Reported in lesson order whatever order the processes finish in.
    assert [line.split("/")[-1] for line in out.splitlines()] == ["all.png", "peel.png", "deep.png"]
    for name in ("all.png", "peel.png", "deep.png"):
        first, second = tmp_path / "one" / name, tmp_path / "two" / name
        assert np.array_equal(np.asarray(Image.open(first)), np.asarray(Image.open(second))), name
        assert read_png_parameters(first) == read_png_parameters(second)


def test_bad_job_counts_are_one_line_errors(fixture_atlas_dir, tmp_path, capsys):
    lesson = write(tmp_path, GOOD)
    for bad in ("0", "-1", "two", "1.5", "999"):
        assert run_lesson(fixture_atlas_dir, lesson, tmp_path / "out", "--jobs", bad) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "jobs" in err[0], err
    assert not (tmp_path / "out").exists()
