"""The command line on broken files: exit 1, one stderr line naming the file, no traceback.

By default CLI_EXAMPLES = 1 broken file per reader that the library refuses (5 readers; a
model file runs through summary, predict and evaluate, an image through predict and
evaluate): 8 commands, each its own process (1-2 s each). More:
CONVSCOPE_FUZZ_CLI=100 python -m pytest tests/fuzz/test_fuzz_cli.py -q -s
"""

import os
from collections import Counter

import pytest
from fuzz_campaign import READERS, make_cases
from fuzz_cli import classify, commands, companions, run_command
from fuzz_engine import run_cases

CLI_EXAMPLES = int(os.environ.get("CONVSCOPE_FUZZ_CLI", "1"))


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    return companions(tmp_path_factory.mktemp("good"))


@pytest.mark.parametrize("reader", list(READERS))
def test_the_cli_refuses_broken_files_in_one_line(tmp_path, good, reader):
    cases = make_cases(reader, 4 * CLI_EXAMPLES, tmp_path, seed=1)
    refused = [cases[r["index"]] for r in run_cases(READERS[reader][1], cases) if r["outcome"] == "clean"]
    assert len(refused) >= CLI_EXAMPLES
    outcomes, failures = Counter(), []
    for case in refused[:CLI_EXAMPLES]:
        for argv, name in commands(reader, case, good):
            outcome, err = run_command(argv, name)
            outcomes[outcome] += 1
            if outcome != "clean":
                failures.append((argv, outcome, err[-800:]))
    print(f"\n{reader}: {sum(outcomes.values())} commands: {dict(outcomes)}")
    assert failures == []


@pytest.mark.parametrize("code, stderr, outcome", [
    (1, "convscope summary: error: m.safetensors: corrupt header\n", "clean"),
    (1, "Traceback (most recent call last):\n  ...\nKeyError: 'x'\n", "traceback"),
    (0, "", "exit 0"), (1, "note: one\nconvscope summary: error: m.safetensors: bad\n", "not one line"),
    (1, "convscope summary: error: corrupt header\n", "no file named")])
def test_the_cli_check_can_fail(code, stderr, outcome):
    assert classify(code, stderr, "m.safetensors") == outcome


def test_a_good_model_runs_and_a_missing_image_is_one_line(good, tmp_path):
    assert run_command(["summary", str(good["m5"])], "m5")[0] == "exit 0"
    assert run_command(["predict", str(good["m5"]), str(tmp_path / "missing.png")], "missing.png")[0] == "clean"
