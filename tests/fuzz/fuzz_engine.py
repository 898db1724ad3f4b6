"""Running readers on hostile files in forked, memory-capped children, and sorting the outcomes.

Each batch of cases runs in a child process forked from the test (so nothing is imported
again) with ``RLIMIT_AS`` set to the address space it already has plus HEADROOM_BYTES, and
an alarm per case. A case ends as one of

    accepted   the reader returned (a mutation the format cannot detect, e.g. a pixel changed)
    clean      it raised a ValueError (every convscope refusal is one: ModelFileError,
               MissingFileError, ShapeError...)
    unhandled  it raised anything else (IndexError, KeyError, TypeError, RecursionError...)
    hang       it ran past CASE_SECONDS
    blowup     MemoryError, or the child died (killed for memory, a crash in C)

The data readers' size limits are scaled down in the child (SCALED_ARRAY_BYTES) so that a
bomb inside the limit is cheap to inflate; the code paths are the same.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import traceback
from collections import Counter
from collections.abc import Callable, Sequence

HEADROOM_BYTES = 768 * 2**20
CASE_SECONDS = 10
SCALED_ARRAY_BYTES = 64 * 2**20
OUTCOMES = ("accepted", "clean", "unhandled", "hang", "blowup")


class Hang(BaseException):
    """Raised by the alarm in a case that runs too long (a BaseException: no reader catches it)."""


def _on_alarm(signum, frame):
    raise Hang()


def _address_space() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * resource.getpagesize()


def _classify(call: Callable[[], object]) -> tuple[str, str]:
    signal.alarm(CASE_SECONDS)
    try:
        call()
        return "accepted", ""
    except Hang:
        return "hang", ""
    except MemoryError:
        return "blowup", "MemoryError"
    except ValueError as error:
        return "clean", str(error)[:300]
    except Exception as error:  # noqa: BLE001 - exactly what the fuzz looks for
        where = traceback.extract_tb(error.__traceback__)[-1]
        return "unhandled", f"{type(error).__name__}: {str(error)[:200]} at {where.filename}:{where.lineno}"
    finally:
        signal.alarm(0)


def _child(run: Callable[[object], object], cases: Sequence[object], start: int, out: int) -> None:
    from convscope.data import bounded
    bounded.MAX_ARRAY_BYTES = SCALED_ARRAY_BYTES
    limit = _address_space() + HEADROOM_BYTES
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    signal.signal(signal.SIGALRM, _on_alarm)
    with os.fdopen(out, "w", buffering=1) as pipe:
        for index in range(start, len(cases)):
            pipe.write(json.dumps({"start": index}) + "\n")
            outcome, detail = _classify(lambda case=cases[index]: run(case))
            pipe.write(json.dumps({"index": index, "outcome": outcome, "detail": detail}) + "\n")


def run_cases(run: Callable[[object], object], cases: Sequence[object]) -> list[dict]:
    """``run(case)`` for every case, in forked memory-capped children; one record per case:
    ``{"index", "outcome", "detail"}``. A child that dies is replaced from the next case."""
    records, start = [], 0
    while start < len(cases):
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns into the test
            os.close(read)
            code = 0
            try:
                _child(run, cases, start, write)
            except BaseException:  # noqa: BLE001 - the engine itself failed: say why, end the child
                traceback.print_exc()
                code = 3
            os._exit(code)
        os.close(write)
        current = start
        with os.fdopen(read) as pipe:
            for line in pipe:
                message = json.loads(line)
                if "start" in message:
                    current = message["start"]
                else:
                    records.append(message)
        _, status = os.waitpid(pid, 0)
        done = {r["index"] for r in records}
        if current not in done:  # the child died inside this case
            records.append({"index": current, "outcome": "blowup", "detail": f"child ended with status {status}"})
        start = current + 1
    return records


def tally(records: Sequence[dict]) -> Counter:
    """How many cases ended in each outcome."""
    return Counter(r["outcome"] for r in records)


def problems(records: Sequence[dict]) -> list[dict]:
    """The records that are failures of the reader: unhandled, hang, blow-up."""
    return [r for r in records if r["outcome"] in ("unhandled", "hang", "blowup")]
