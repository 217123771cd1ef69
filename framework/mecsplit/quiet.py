"""Solver output off at the source, unless the user asks for it (``--verbose`` sets ``MECSPLIT_VERBOSE=1``,
which bench workers inherit).

* :func:`highs` — a ``highspy.Highs`` with ``output_flag`` off. HiGHS prints its banner ("Running HiGHS
  ... Copyright") from the C++ constructor of the first instance in a process, before any option can be
  set, so that one construction runs with the output descriptors pointed away.
* :func:`highs_options` — HiGHS options (a random seed, the number of threads) for every model :func:`highs`
  makes inside a block.
* :func:`silenced` — everything written to file descriptors 1 and 2 inside the block (C/C++ libraries
  included: HiGHS warnings from Pyomo's ``appsi_highs``, SCIP, Ipopt) goes to a temporary file, and its
  text to the caller (a result's ``extra``), instead of the terminal. A file, not a pipe: a library that
  writes while holding the GIL cannot fill it and stall.
"""

from __future__ import annotations

import ctypes
import os
import sys
import tempfile
from contextlib import contextmanager
from typing import Iterator

_banner_done = False
_options: dict = {}   # HiGHS options for the models highs() makes (set by highs_options)


def verbose() -> bool:
    return os.environ.get("MECSPLIT_VERBOSE", "") not in ("", "0")


def _flush_all() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, ValueError, OSError):
            pass
    try:  # C stdio buffers (HiGHS and SCIP print through them); NULL flushes every open stream
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):  # pragma: no cover - no C library handle on this platform
        pass


@contextmanager
def silenced(log: list[str] | None = None) -> Iterator[None]:
    """Run the block with fds 1 and 2 pointed at a temporary file; append what was written to ``log``.
    Does nothing when verbose."""
    if verbose():
        yield
        return
    _flush_all()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 1)
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            _flush_all()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            if log is not None:
                tmp.seek(0)
                log.append(tmp.read().decode("utf-8", "replace"))


def highs(options: dict | None = None):
    """A new ``highspy.Highs`` that prints nothing (unless verbose), with the block's options
    (:func:`highs_options`) and ``options`` set. An option HiGHS refuses (a misspelt name, a value of
    the wrong type or out of range) raises instead of being ignored: ``setOptionValue`` only returns a
    status."""
    global _banner_done
    import highspy

    if verbose():
        h = highspy.Highs()
    else:
        if _banner_done:
            h = highspy.Highs()
        else:
            with silenced():
                h = highspy.Highs()
            _banner_done = True
        h.setOptionValue("output_flag", False)
    for name, value in {**_options, **(options or {})}.items():
        if h.setOptionValue(name, value) != highspy.HighsStatus.kOk:
            raise RuntimeError(f"HiGHS {h.version()} refused the option {name}={value!r}")
    return h


@contextmanager
def highs_options(random_seed: int | None = None, threads: int = 0) -> Iterator[None]:
    """Every model :func:`highs` makes inside the block gets HiGHS' ``random_seed`` (taken mod 2³¹, HiGHS'
    range; None: HiGHS' default) and ``threads`` (0: HiGHS' own choice). HiGHS' task scheduler is global
    to the process and takes its number of threads from the first model run after it starts: a model
    asking for another number afterwards fails ("Option 'threads' is set to 1 but the scheduler has
    already been initialized to use 2 threads"), one left at HiGHS' default runs on whatever is there.
    So with ``threads`` the scheduler is reset on entry, and again on exit, where the next model starts
    it at HiGHS' default. Only for code that runs HiGHS from one thread at a time (a reset under a
    running model is unsafe)."""
    global _options
    import highspy

    options = {} if random_seed is None else {"random_seed": int(random_seed) % 2**31}
    reset = None
    if threads:
        reset = getattr(highspy.Highs, "resetThreadScheduler", None) or getattr(highspy.Highs, "resetGlobalScheduler", None)
        if reset is not None:   # (a highspy without either: HiGHS' own number of threads)
            options["threads"] = int(threads)
    saved = _options
    _options = {**saved, **options}
    if reset is not None:
        reset(True)
    try:
        yield
    finally:
        _options = saved
        if reset is not None:
            reset(True)
