#!/usr/bin/env python
"""deploy/run_daphne.py, able to say what its heap holds (tests/bench/memory_census.py).

    .venv/bin/python tests/bench/census_daphne.py CENSUS_FILE --bind unix:PATH

Runs the launcher unchanged (runpy, as ``__main__``), with two signal handlers:

- SIGUSR1 starts tracemalloc (TRACE_FRAMES frames per allocation): only what is allocated
  from then on is traced, so a census after opening sockets shows what they allocated;
- SIGUSR2 writes a census to CENSUS_FILE (JSON, written whole then renamed):
  tracemalloc's top allocation sites if it is tracing; the cyclic garbage waiting for a
  collection, by type (found by a collection that keeps it aside, then freed); then every
  live object, by type (count, sys.getsizeof total, and the size of their instance
  __dict__s).

Test tooling only: the product's launcher knows nothing of it. The handlers run when the
interpreter next runs Python code, within a second (daphne's own timers wake the loop).
"""

import gc
import json
import runpy
import signal
import sys
import tracemalloc
from collections import defaultdict
from pathlib import Path

RUN_DAPHNE = Path(__file__).resolve().parents[2] / "deploy" / "run_daphne.py"
TRACE_FRAMES = 6
TOP_SITES = 40
TOP_TRACEBACKS = 15


def type_name(cls):
    return f"{cls.__module__}.{cls.__qualname__}"


def heap_objects():
    """Every object the collector tracks, and the untracked ones they refer to (strings,
    bytes, numbers, atomic-only dicts and tuples), each once."""
    objects = gc.get_objects()
    seen = {id(o) for o in objects}
    frontier = objects
    while frontier:
        found = []
        for referent in gc.get_referents(*frontier):
            if id(referent) not in seen and not gc.is_tracked(referent):
                seen.add(id(referent))
                found.append(referent)
        objects.extend(found)
        frontier = found
    return objects


def by_type(objects):
    """{type: [count, bytes, bytes of their instance __dict__s]}; a __dict__ counted under
    its owner's type is not counted again as a dict."""
    table = defaultdict(lambda: [0, 0, 0])
    owned_dicts = set()
    for o in objects:
        cls = type(o)
        if issubclass(cls, type) or cls.__name__ == "module":
            continue
        try:
            attributes = object.__getattribute__(o, "__dict__")
        except (AttributeError, TypeError):
            continue
        if type(attributes) is dict:
            owned_dicts.add(id(attributes))
            table[type_name(cls)][2] += sys.getsizeof(attributes)
    for o in objects:
        if id(o) in owned_dicts:
            continue
        row = table[type_name(type(o))]
        row[0] += 1
        row[1] += sys.getsizeof(o, 0)
    return {name: row for name, row in table.items() if row[0]}


def garbage_by_type():
    """The cyclic garbage waiting for a collection, by type; freed afterwards."""
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        table = by_type(list(gc.garbage))
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    gc.collect()
    return table


def tracemalloc_sites():
    if not tracemalloc.is_tracing():
        return None
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, __file__)]
    )
    traced, _ = tracemalloc.get_traced_memory()
    return {
        "traced_bytes": traced,
        "sites": [
            {
                "site": f"{s.traceback[0].filename}:{s.traceback[0].lineno}",
                "bytes": s.size,
                "count": s.count,
            }
            for s in snapshot.statistics("lineno")[:TOP_SITES]
        ],
        "tracebacks": [
            {
                "frames": [f"{f.filename}:{f.lineno}" for f in s.traceback],
                "bytes": s.size,
                "count": s.count,
            }
            for s in snapshot.statistics("traceback")[:TOP_TRACEBACKS]
        ],
    }


def write_census(census_file):
    def handler(_signum, _frame):
        census = {"tracemalloc": tracemalloc_sites()}  # first: the census allocates too
        census["garbage"] = garbage_by_type()  # then the live objects are what is left
        objects = heap_objects()
        census["objects"] = by_type(objects)
        del objects
        partial = Path(f"{census_file}.partial")
        partial.write_text(json.dumps(census))
        partial.rename(census_file)

    return handler


def main():
    census_file = sys.argv.pop(1)
    signal.signal(signal.SIGUSR1, lambda *_: tracemalloc.start(TRACE_FRAMES))
    signal.signal(signal.SIGUSR2, write_census(census_file))
    sys.argv[0] = str(RUN_DAPHNE)
    runpy.run_path(str(RUN_DAPHNE), run_name="__main__")


if __name__ == "__main__":
    main()
