#!/usr/bin/env python3
"""The include graph of the tree, folder to folder, checked against the data flow (DESIGN.md).

  python3 tools/include_graph.py          # prints the graph; exit 1 on an include against the flow

NET -> frontend -> ir -> passes -> codegen -> Program -> runtime: a stage includes only the
stages before it. runtime/ includes nothing of codegen/ but the kernel interface
(codegen/program.h), and only codegen/ and tuner/ include Halide.h.
"""
import os, re, sys, collections

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STAGES = ["ir", "frontend", "passes", "codegen", "runtime", "tuner", "train"]
# What each stage may include besides itself.
ALLOWED = {
    "ir": set(),
    "frontend": {"ir"},
    "passes": {"ir"},
    "codegen": {"ir"},
    "runtime": {"ir", "codegen/program.h"},
    "tuner": {"ir", "codegen", "runtime"},
    "train": {"ir", "passes", "codegen", "runtime"},
}
HALIDE_OK = {"codegen", "tuner"}
INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]')


def main():
    edges = collections.defaultdict(collections.Counter)
    bad = []
    for folder in sorted(os.listdir(ROOT)):
        top = os.path.join(ROOT, folder)
        if not os.path.isdir(top) or folder.startswith((".", "build")):
            continue
        for dirpath, _, files in os.walk(top):
            for f in files:
                if not f.endswith((".h", ".cpp", ".def")):
                    continue
                path = os.path.join(dirpath, f)
                rel = os.path.relpath(path, ROOT)
                with open(path, errors="replace") as fh:
                    for n, line in enumerate(fh, 1):
                        m = INCLUDE.match(line)
                        if not m:
                            continue
                        inc = m.group(1)
                        target = inc.split("/")[0] if "/" in inc else None
                        if inc == "Halide.h" or inc.startswith("Halide"):
                            edges[folder]["Halide"] += 1
                            if folder in STAGES and folder not in HALIDE_OK:
                                bad.append(f"{rel}:{n}: includes Halide.h (only {', '.join(sorted(HALIDE_OK))} may)")
                            continue
                        if target is None or not os.path.isdir(os.path.join(ROOT, target)):
                            continue  # a system or library header
                        edges[folder][target] += 1
                        if folder in STAGES and target != folder and target not in ALLOWED[folder] \
                                and inc not in ALLOWED[folder]:
                            bad.append(f"{rel}:{n}: includes {inc}, against the data flow "
                                       f"({folder}/ may include {', '.join(sorted(ALLOWED[folder])) or 'nothing else'})")
    print("folder -> included folders (number of #include lines)")
    for folder in sorted(edges, key=lambda f: (STAGES.index(f) if f in STAGES else len(STAGES), f)):
        deps = ", ".join(f"{t} ({c})" for t, c in sorted(edges[folder].items()) if t != folder)
        print(f"  {folder:<11} -> {deps or '(itself only)'}")
    runtime_codegen = sorted({line for line in _includes("runtime") if line.startswith("codegen/")})
    print(f"  runtime/ includes of codegen/: {', '.join(runtime_codegen) or 'none'}")
    if bad:
        print(f"\n{len(bad)} include(s) against the data flow:")
        for b in bad:
            print("  " + b)
        return 1
    print("\nno include runs back up the data flow")
    return 0


def _includes(folder):
    for dirpath, _, files in os.walk(os.path.join(ROOT, folder)):
        for f in files:
            if f.endswith((".h", ".cpp")):
                with open(os.path.join(dirpath, f), errors="replace") as fh:
                    for line in fh:
                        m = INCLUDE.match(line)
                        if m:
                            yield m.group(1)


if __name__ == "__main__":
    sys.exit(main())
