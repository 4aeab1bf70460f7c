"""Side-by-side timings (`make bench`). Compiles block here (the "sync" compile mode), so a timed
loop never measures calls that ran on the interpreter while a worker compiled; the compile-latency
rows set the mode they measure explicitly."""

import os

os.environ.setdefault("LUCID_JIT_MODE", "sync")
