#!/usr/bin/env python3
"""Checks that every kernel has a CPU<->CUDA parity case (issue 20: "every CUDA kernel a CPU parity test").

    scripts/check_kernel_coverage.py [ROOT]   exit 0: every kernel is covered; 1: lists each one that is not

The kernels are read from the families' lists in ROOT/kernels/*.h (the X-macros `KNOT_<FAMILY>_KERNELS(X)`
whose entries `X(ret, name, (params))` declare each kernel once for the CPU and CUDA backends and
define its CUDA stub; kernels/dispatch.h). A kernel is covered when a TEST_CASE of
ROOT/tests/test_cuda.cpp calls it as `kernels::name(...)` (the dispatcher, on CUDA tensors) or
`kernels::cpu::name` / `kernels::cuda::name`: those cases run the kernel on both devices and compare
(they skip, saying why, where there is no GPU). Run by ctest (kernels.cuda_parity_coverage) and so
by CI; a new kernel without a parity case fails it.
"""
import os
import re
import sys

ENTRY = re.compile(r"\bX\(\s*[\w:<>, ]+?,\s*(\w+)\s*,\s*\(")
LIST = re.compile(r"#define (KNOT_\w+_KERNELS)\(X\)((?:[^\n]*\\\n)*[^\n]*\n)")
CASE = re.compile(r'TEST_CASE\("([^"]+)"')
CALL = re.compile(r"kernels::(?:cpu::|cuda::)?(\w+)\s*\(")


def kernels(root):
    found = {}  # name -> family header
    folder = os.path.join(root, "kernels")
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".h"):
            continue
        text = open(os.path.join(folder, name), encoding="utf-8").read()
        for m in LIST.finditer(text):
            body = re.sub(r"/\*.*?\*/", "", m.group(2), flags=re.S)
            for k in ENTRY.finditer(body):
                found[k.group(1)] = "kernels/" + name
    return found


def parity_cases(root):
    text = open(os.path.join(root, "tests", "test_cuda.cpp"), encoding="utf-8").read()
    text = re.sub(r"/\*.*?\*/", "", re.sub(r"//[^\n]*", "", text), flags=re.S)  # a comment is not a call
    starts = [(m.start(), m.group(1)) for m in CASE.finditer(text)] + [(len(text), None)]
    covered = {}  # kernel -> first case that calls it
    for (pos, case), (end, _) in zip(starts, starts[1:]):
        for k in CALL.findall(text[pos:end]):
            covered.setdefault(k, case)
    return covered


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "."
    ks = kernels(root)
    if not ks:
        print("check_kernel_coverage: no kernel lists found under " + os.path.join(root, "kernels"))
        return 1
    covered = parity_cases(root)
    missing = [(k, h) for k, h in sorted(ks.items()) if k not in covered]
    for k, h in missing:
        print(f"{h}: kernel '{k}' has no CPU<->CUDA parity case in tests/test_cuda.cpp")
    if missing:
        print(f"check_kernel_coverage: {len(missing)} of {len(ks)} kernels uncovered")
        return 1
    print(f"check_kernel_coverage: every one of the {len(ks)} kernels has a parity case")
    return 0


if __name__ == "__main__":
    sys.exit(main())
