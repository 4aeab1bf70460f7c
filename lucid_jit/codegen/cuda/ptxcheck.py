"""Compile the CUDA kernels a simulator run launched to PTX, for a real GPU, without one.

numba's CUDA simulator runs kernels as Python, so it accepts code the CUDA target would reject
(a type numba cannot unify, an unsupported function). This check closes that gap where no GPU is
at hand: run tests under the simulator with LUCID_JIT_CUDA_SIGNATURES=sigs.jsonl set (each
launched kernel's module and argument types are recorded), then, without the simulator and with
NVVM installed (`pip install nvidia-nvvm nvidia-cuda-nvrtc`; no GPU or driver needed):

    python -m lucid_jit.codegen.cuda.ptxcheck sigs.jsonl [--cc 8.0]

It compiles every recorded (kernel, signature) with `numba.cuda.compile_ptx` and prints the
failures; the exit status is the number of kernels that did not compile.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys


def _type(desc):
    from numba import types

    if isinstance(desc, list):
        _, dtype, ndim = desc
        return types.Array(getattr(types, "boolean" if dtype == "bool" else dtype), ndim, "A")
    return getattr(types, "boolean" if desc == "bool" else desc)


def _load(path: str, k: int):
    spec = importlib.util.spec_from_file_location(f"lucid_jit_ptxcheck_{k}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("signatures")
    parser.add_argument("--cc", default="8.0", help="compute capability (default 8.0)")
    args = parser.parse_args(argv)
    from numba import cuda

    if cuda.simulator_enabled if hasattr(cuda, "simulator_enabled") else False:
        raise SystemExit("run ptxcheck without NUMBA_ENABLE_CUDASIM")
    cc = tuple(int(x) for x in args.cc.split("."))
    records = [json.loads(line) for line in open(args.signatures) if line.strip()]
    modules: dict[str, object] = {}
    failures = 0
    done = set()
    for rec in records:
        key = (rec["module"], json.dumps(rec["args"]))
        if key in done:
            continue
        done.add(key)
        if rec["module"] not in modules:
            modules[rec["module"]] = _load(rec["module"], len(modules))
        kernel = modules[rec["module"]].kernel
        sig = tuple(_type(t) for t in rec["args"])
        try:
            cuda.compile_ptx(kernel.py_func, sig, cc=cc)
        except Exception as exc:  # noqa: BLE001 (reported, counted)
            failures += 1
            first = str(exc).strip().splitlines()
            print(f"FAILED {rec['module']} {rec['args']}: {type(exc).__name__}: "
                  f"{first[0] if first else ''}")
    print(f"{len(done) - failures} of {len(done)} kernels compiled to PTX for sm_"
          f"{cc[0]}{cc[1]}")
    return failures


if __name__ == "__main__":
    raise SystemExit(main())
