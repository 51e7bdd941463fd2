#!/usr/bin/env python3
"""Assembles the PTX of every kernel of some models with the CUDA Toolkit's ptxas for one GPU
architecture (sm_90: the H200), and reports each kernel's registers, spills and shared memory.

  python3 tools/check_ptx.py --cnnc build/cnnc models/resnet50.cnn models/vgg16.cnn [--arch sm_90]

The PTX comes from `cnnc compile NET --target cuda --emit ptx`, which needs no GPU. Exits 1 when
a kernel does not assemble or spills registers to local memory (each named), 0 otherwise.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile


def find_ptxas():
    for candidate in (shutil.which("ptxas"), "/usr/local/cuda/bin/ptxas"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    sys.exit("check_ptx: ptxas not found (the CUDA Toolkit: on PATH or in /usr/local/cuda/bin)")


def kernels(ptx_listing):
    """(layer, schedule, ptx) for each distinct kernel of `cnnc compile --emit ptx`'s output."""
    out, head, body = [], None, []
    for line in ptx_listing.splitlines(keepends=True):
        m = re.match(r"# kernel of layer '([^']+)' \(([^)]+)\), schedule=(.*), target ", line)
        if m or line.startswith("# kernel of layer"):
            if head and body:
                out.append((*head, "".join(body)))
            head, body = ((m.group(1), m.group(3)) if m else None), []
        elif head:
            body.append(line)
    if head and body:
        out.append((*head, "".join(body)))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("nets", nargs="+")
    ap.add_argument("--cnnc", default="build/cnnc")
    ap.add_argument("--arch", default="sm_90")
    ap.add_argument("--batch", default="1")
    args = ap.parse_args()
    ptxas = find_ptxas()
    failed, total = [], 0
    with tempfile.TemporaryDirectory() as tmp:
        for net in args.nets:
            listing = subprocess.run(
                [args.cnnc, "compile", net, "--target", "cuda", "--emit", "ptx", "--batch", args.batch],
                check=True, capture_output=True, text=True).stdout
            found = kernels(listing)
            if not found:
                failed.append(f"{net}: no PTX in cnnc's output")
            regs_all = []
            for layer, schedule, ptx in found:
                total += 1
                src = os.path.join(tmp, "k.ptx")
                with open(src, "w") as f:
                    f.write(ptx)
                r = subprocess.run([ptxas, f"-arch={args.arch}", "-v", src, "-o", os.path.join(tmp, "k.cubin")],
                                   capture_output=True, text=True)
                info = r.stdout + r.stderr
                if r.returncode != 0:
                    failed.append(f"{net} {layer}: ptxas failed: {info.strip()[-400:]}")
                    continue
                regs = [int(x) for x in re.findall(r"Used (\d+) registers", info)]
                spills = sum(int(a) + int(b) for a, b in
                             re.findall(r"(\d+) bytes spill stores, (\d+) bytes spill loads", info))
                regs_all.append(max(regs or [0]))
                print(f"{os.path.basename(net):20s} {layer:32s} {max(regs or [0]):4d} registers "
                      f"{spills:6d} spill bytes  {schedule}")
                if spills:
                    failed.append(f"{net} {layer}: {spills} bytes of spills ({schedule})")
            if regs_all:
                print(f"# {net}: {len(regs_all)} distinct kernels assembled for {args.arch}, "
                      f"registers {min(regs_all)}-{max(regs_all)} per thread")
    for f in failed:
        print("FAIL", f, file=sys.stderr)
    print(f"# {total} kernels, {len(failed)} failures")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
