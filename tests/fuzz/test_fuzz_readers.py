"""Fuzzing every reader and loader: each broken file ends in a clean ValueError, in time,
without a blow-up. See fuzz_campaign for the cases and fuzz_engine for the outcomes.

Default (CI): FUZZ_EXAMPLES = 40 mutated files per reader (5 readers) and HYPOTHESIS_EXAMPLES =
15 hypothesis examples per target (7 targets), about 25 s on one core. A longer run:

    CONVSCOPE_FUZZ_EXAMPLES=5000 python -m pytest tests/fuzz -q -s     # prints the table
    python tests/fuzz/fuzz_campaign.py 5000                             # the campaign alone
"""

import gzip
import json
import os
import signal
import tempfile
import time
from pathlib import Path

import fuzz_engine
import fuzz_models
import fuzz_seeds as seeds
import numpy as np
import pytest
from fuzz_campaign import READERS, campaign, make_cases, table
from fuzz_engine import problems, run_cases, tally
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convscope.data.preprocess import preprocess_image
from convscope.data.readers import read_cifar10_batch, read_idx, read_npz
from convscope.io import load_model

FUZZ_EXAMPLES = int(os.environ.get("CONVSCOPE_FUZZ_EXAMPLES", "40"))
HYPOTHESIS_EXAMPLES = int(os.environ.get("CONVSCOPE_FUZZ_HYPOTHESIS", str(max(15, FUZZ_EXAMPLES // 20))))
SECONDS_PER_CASE = 2.0  # the mean a reader may take on a broken file (the alarm stops one at 10 s)


# ----- the engine can fail: each outcome is recognised --------------------------------------
def _raise(kind):
    def run(_):
        if kind == "key":
            raise KeyError("x")
        if kind == "value":
            raise ValueError("refused")
        if kind == "memory":
            return bytearray(4 * fuzz_engine.HEADROOM_BYTES)
        if kind == "hang":
            while True:
                pass
        if kind == "die":
            os.kill(os.getpid(), signal.SIGKILL)  # as the kernel does to a process out of memory
    return run


@pytest.mark.parametrize("kind, outcome", [("key", "unhandled"), ("value", "clean"), ("memory", "blowup"),
                                           ("hang", "hang"), ("die", "blowup"), ("fine", "accepted")])
def test_the_engine_sorts_every_outcome(monkeypatch, kind, outcome):
    monkeypatch.setattr(fuzz_engine, "CASE_SECONDS", 1)
    records = run_cases(_raise(kind), [None, None])
    assert [r["outcome"] for r in records] == [outcome, outcome]


# ----- seeds are valid; broken files are refused cleanly -----------------------------------
@pytest.mark.parametrize("reader", list(READERS))
def test_the_seed_files_are_read(tmp_path, reader):
    records = run_cases(READERS[reader][1], make_cases(reader, 4, tmp_path, broken=False))
    assert [r["outcome"] for r in records] == ["accepted"] * 4, records


@pytest.fixture(scope="module")
def results():
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        found = campaign(FUZZ_EXAMPLES, Path(tmp))
        seconds = time.perf_counter() - start
    print(f"\n{table(found)}\n{FUZZ_EXAMPLES} cases per reader in {seconds:.0f} s")
    return found, seconds


@pytest.mark.parametrize("reader", list(READERS))
def test_broken_files_end_in_clean_errors(results, reader):
    records = results[0][reader]
    assert len(records) == FUZZ_EXAMPLES and problems(records) == []
    assert tally(records)["clean"] >= 0.5 * FUZZ_EXAMPLES  # the mutations do break the files


def test_the_campaign_keeps_its_time_bound(results):
    assert results[1] < SECONDS_PER_CASE * FUZZ_EXAMPLES * len(READERS)


# ----- hypothesis: edits it chooses, on seed files of each format ------------------------------
def _seed_files():
    rng = np.random.default_rng(0)
    images = seeds.idx_bytes((rng.random((4, 5, 5)) * 255).astype(np.uint8))
    with tempfile.TemporaryDirectory() as tmp:
        models = seeds.model_seeds(Path(tmp))
    return {"idx": images, "idx.gz": gzip.compress(images),
            "cifar": bytes([3]) + bytes(rng.integers(0, 256, 3072, dtype=np.uint8)),
            "npz": seeds.npz_bytes(True, x=np.zeros((4, 5, 5), np.uint8), y=np.arange(4)),
            "png16": seeds.image_bytes("png16", rng), "jpeg": seeds.image_bytes("jpeg", rng),
            "model": models["tiny"]}


SEEDS = _seed_files()
META = {"input_shape": [1, 8, 8], "mean": [0.5], "std": [0.25], "preprocess": "resize"}
TARGETS = {"idx": read_idx, "idx.gz": read_idx, "cifar": read_cifar10_batch, "npz": read_npz,
           "png16": lambda p: preprocess_image(p, META), "jpeg": lambda p: preprocess_image(p, META),
           "model": load_model}
EDITS = st.lists(st.tuples(st.integers(0, 2**16), st.integers(0, 255)), max_size=6)
HYPOTHESIS = settings(max_examples=HYPOTHESIS_EXAMPLES, deadline=None, database=None,
                      suppress_health_check=[HealthCheck.too_slow])


def _edited(data: bytes, edits, cut, insert) -> bytes:
    out = bytearray(data)
    for at, value in edits:
        if out:
            out[at % len(out)] = value
    if insert:
        at = insert[0] % (len(out) + 1)
        out[at:at] = insert[1]
    return bytes(out[:cut] if cut is not None else out)


def _outcome(target: str, data: bytes) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"case.{target}"
        path.write_bytes(data)
        [record] = run_cases(TARGETS[target], [path])
    return record


@pytest.mark.parametrize("target", list(TARGETS))
@HYPOTHESIS
@given(edits=EDITS, cut=st.one_of(st.none(), st.integers(0, 2**16)),
       insert=st.one_of(st.none(), st.tuples(st.integers(0, 2**16), st.binary(max_size=64))))
def test_hypothesis_byte_edits_end_cleanly(target, edits, cut, insert):
    record = _outcome(target, _edited(SEEDS[target], edits, cut, insert))
    assert record["outcome"] in ("accepted", "clean"), record


JSON = st.recursive(st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=8),
                    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children,
                                                                                        max_size=4),
                    max_leaves=12)
FIELDS = ["format_version", "architecture", "class_names", "input_shape", "mean", "std", "dataset", "training",
          "preprocess", "task"]


@HYPOTHESIS
@given(field=st.sampled_from(FIELDS), value=JSON)
def test_hypothesis_metadata_values_end_cleanly(field, value):
    header, body = fuzz_models.split(SEEDS["model"])
    meta = json.loads(header["__metadata__"]["convscope"])
    meta[field] = value
    header["__metadata__"]["convscope"] = json.dumps(meta)
    record = _outcome("model", fuzz_models.frame(json.dumps(header), body))
    assert record["outcome"] in ("accepted", "clean"), record


def test_hypothesis_targets_read_their_seeds():
    for target, data in SEEDS.items():
        assert _outcome(target, data)["outcome"] == "accepted", target
