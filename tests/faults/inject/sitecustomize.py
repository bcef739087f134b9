"""Fault injection for subprocesses of the fault tests (imported at interpreter start).

The fault tests start ``etl`` with this directory on ``PYTHONPATH`` and
``ETL_FAULT`` set to a JSON object::

    {"target": "etl.load:write_batch",   module:attribute (dots for class members)
     "k": 3,                             die at the k-th matching call
     "when": "before" | "after" | "pause",  before calling it, after it returned, or
                                         (pause) wait before it until "release" exists
     "release": "/tmp/.../go",           the file a paused process waits for
     "match": "-[r:",                    optional: only calls whose query text contains it
     "peek": true,                       optional: pull the result's first record first
     "mark": "/tmp/.../hit"}             a file written just before the SIGKILL

The process SIGKILLs itself at that exact point: no ``finally`` blocks, no
flushes, nothing the product could clean up, like a power cut of the process.
Nothing here runs unless ``ETL_FAULT`` is set.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any


def _texts(args: tuple[Any, ...]) -> Iterator[str]:
    """The query texts a call carries: str arguments, or ``Statement``s in a work list."""
    for a in args:
        if isinstance(a, str):
            yield a
        elif isinstance(a, list):
            for item in a:
                first = item[0] if isinstance(item, tuple) and item else item
                text = getattr(first, "text", None)
                if isinstance(text, str):
                    yield text


def _install(cfg: dict[str, Any]) -> None:
    module_name, _, attr = str(cfg["target"]).partition(":")
    owner: Any = importlib.import_module(module_name)
    *path, name = attr.split(".")
    for part in path:
        owner = getattr(owner, part)
    original = getattr(owner, name)
    k, when, match = int(cfg["k"]), str(cfg.get("when", "before")), cfg.get("match")
    lock = threading.Lock()
    seen = [0]

    def reached() -> None:
        mark = cfg.get("mark")
        if mark:
            with open(mark + ".tmp", "w", encoding="utf-8") as f:
                f.write(json.dumps({"target": cfg["target"], "k": k, "when": when}))
            os.replace(mark + ".tmp", mark)

    def die() -> None:
        reached()
        os.kill(os.getpid(), signal.SIGKILL)

    def pause() -> None:
        reached()
        while not os.path.exists(str(cfg["release"])):
            time.sleep(0.02)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if match is not None and not any(match in t for t in _texts(args)):
            return original(*args, **kwargs)
        with lock:
            seen[0] += 1
            hit = seen[0] == k
        if hit and when == "pause":
            pause()
        elif hit and when == "before":
            die()
        result = original(*args, **kwargs)
        if hit and when == "after":
            if cfg.get("peek"):
                result.peek()  # the statement ran in the (still open) transaction
            die()
        return result

    setattr(owner, name, wrapper)


_SPEC = os.environ.get("ETL_FAULT")
if _SPEC:
    _install(json.loads(_SPEC))
