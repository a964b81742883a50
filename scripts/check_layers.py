#!/usr/bin/env python3
"""Checks that the includes of knot's source folders point one way (docs/architecture.md, "Layers").

    scripts/check_layers.py [ROOT]       exit 0: every include is allowed; 1: lists each one that is not

Three rules, each read from a table below:
  1. A file in folder A may include "B/..." only if B is in ALLOWED[A] (the layer line: each folder
     sees itself and the folders below it).
  2. The backends' folders (kernels/cpu, kernels/cuda, kernels/cuda_stub) are private to kernels/:
     code above reaches a kernel through its dispatcher header (kernels/<family>.h).
  3. A third-party backend's headers are seen by the one file that wraps it (THIRD_PARTY), so the
     other files neither need that library to compile nor rebuild when its configuration changes.
tests/, bench/ and fuzz/ may include anything. Run by ctest (layers.include_direction) and so by CI.
"""
import os
import re
import sys

BELOW_TRAIN = ["dist", "models", "data", "optim", "nn", "ops", "autograd", "kernels", "core"]
# Folder -> the folders its files may include (besides itself).
ALLOWED = {
    "core": [],
    "kernels": ["core"],
    "autograd": ["kernels", "core"],
    "ops": ["autograd", "kernels", "core"],
    "nn": ["ops", "autograd", "kernels", "core"],
    "optim": ["nn", "ops", "autograd", "kernels", "core"],
    "data": ["core"],
    "models": ["nn", "ops", "autograd", "kernels", "core"],
    "dist": ["models", "data", "optim", "nn", "ops", "autograd", "kernels", "core"],
    "export": ["models", "data", "nn", "ops", "autograd", "kernels", "core"],
    "train": BELOW_TRAIN,
    "tools": ["train", "export"] + BELOW_TRAIN,
}
FREE = {"tests", "bench", "fuzz"}  # may include anything
PRIVATE = ["kernels/cpu/", "kernels/cuda/", "kernels/cuda_stub/"]  # only from inside kernels/
# Third-party header prefix -> the files (or folders, ending in /) allowed to include it.
THIRD_PARTY = {
    "mpi.h": ["dist/comm.cpp"],
    "nccl.h": ["dist/nccl.cpp"],
    "cuda": ["kernels/cuda/", "dist/nccl.cpp"],  # cuda_runtime.h, cuda_bf16.h, ...
    "cublas": ["kernels/cuda/"],
    "cudnn": ["kernels/cuda/"],
    "onnx/": ["export/onnx.cpp"],
    "oneapi/dnnl": ["kernels/cpu/linalg.cpp"],
}
SOURCE = re.compile(r"\.(h|hpp|cpp|cu|cuh)$")
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


def check(root):
    problems, files = [], 0
    for top in sorted(os.listdir(root)):
        if top not in ALLOWED and top not in FREE:
            continue
        for dirpath, _, names in os.walk(os.path.join(root, top)):
            for name in sorted(names):
                if not SOURCE.search(name):
                    continue
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, root).replace(os.sep, "/")
                files += 1
                with open(path, encoding="utf-8") as f:
                    for lineno, line in enumerate(f, 1):
                        m = INCLUDE.match(line)
                        if not m:
                            continue
                        quote, target = m.groups()
                        where = f"{rel}:{lineno}: #include {quote}{target}{'>' if quote == '<' else chr(34)}"
                        if quote == "<":
                            if top in FREE:
                                continue
                            for prefix, owners in THIRD_PARTY.items():
                                if target.startswith(prefix) and not any(
                                        rel == o or (o.endswith("/") and rel.startswith(o)) for o in owners):
                                    problems.append(f"{where}: only {', '.join(owners)} may include <{target}>")
                            continue
                        if top in FREE or "/" not in target:
                            continue
                        folder = target.split("/", 1)[0]
                        if folder not in ALLOWED:
                            continue  # not one of our layers (a relative include of a neighbour)
                        if folder != top and folder not in ALLOWED[top]:
                            problems.append(f"{where}: {top}/ may not include {folder}/ (it sits above; "
                                            f"{top}/ may include {', '.join(ALLOWED[top]) or 'only core/'})")
                        elif top != "kernels" and any(target.startswith(p) for p in PRIVATE):
                            problems.append(f"{where}: a backend's folder is private to kernels/; include the "
                                            f"dispatcher header kernels/<family>.h instead")
    return problems, files


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    problems, files = check(root)
    for p in problems:
        print(p)
    if problems:
        print(f"check_layers: {len(problems)} include(s) against the layer table, in {files} files "
              f"(scripts/check_layers.py; docs/architecture.md)")
        return 1
    print(f"check_layers: {files} files, every include points down the layer table")
    return 0


if __name__ == "__main__":
    sys.exit(main())
