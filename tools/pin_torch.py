#!/usr/bin/env python3
"""Pins PyPI's CUDA torch wheel and its CUDA runtime wheels for `--config=cuda`.

    tools/pin_torch.py --default=2.11.0 2.11.0 2.15.0   # what torch_wheels.bzl holds now

For each version: the Linux x86_64 torch wheel (its LibTorch is the same whichever Python tag;
the first CPython one is taken) and every `nvidia-*` wheel torch requires, directly or through
the `cuda-toolkit` meta-package, each with its URL and sha256 from the package index pip uses
(PIP_INDEX_URL, else PyPI). A requirement the index does not have is listed under `missing`,
so a build that needs it says so. The output is the one place the versions and hashes live;
third_party/libtorch/torch_wheel.bzl reads it.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import urllib.request

from pip._vendor.packaging.requirements import Requirement
from pip._vendor.packaging.specifiers import SpecifierSet
from pip._vendor.packaging.version import Version

OUT = os.path.join(os.path.dirname(__file__), "..", "third_party", "libtorch", "torch_wheels.bzl")
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64", "linux_x86_64"]


def index_url():
    return os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/")


def files(project):
    req = urllib.request.Request(f"{index_url()}/{project}/",
                                 headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.load(r)["files"]


def linux_wheel(project, spec, python_tag=None):
    """(url, sha256, filename, version) of the newest Linux x86_64 wheel of the project that
    `spec` ("==2.11.0", "==13.1.0.3.*") allows, or None."""
    norm = re.sub(r"[-_.]+", "_", project).lower()
    allowed = SpecifierSet(spec)
    best = None
    for f in files(project):
        name = f["filename"]
        parts = name[:-4].split("-") if name.endswith(".whl") else []
        if len(parts) < 5 or re.sub(r"[-_.]+", "_", parts[0]).lower() != norm:
            continue
        if not allowed.contains(parts[1], prereleases=True) or "x86_64" not in parts[-1]:
            continue
        if "linux" not in parts[-1] or parts[-2].endswith("t"):  # no free-threaded builds
            continue
        if python_tag and not parts[-3].startswith(python_tag):
            continue
        if best is None or Version(parts[1]) > Version(best[3]):
            best = (f["url"].split("#")[0], f["hashes"]["sha256"], name, parts[1])
    return best


def metadata(spec):
    """Core metadata of one distribution, as pip resolves it (no install, no dependencies)."""
    with tempfile.TemporaryDirectory() as d:
        report = os.path.join(d, "report.json")
        cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--no-deps", "--quiet",
               "--ignore-installed", "--only-binary=:all:", "--python-version", "3.11",
               "--target", os.path.join(d, "t"), "--report", report, spec]
        for p in PLATFORMS:
            cmd += ["--platform", p]
        subprocess.run(cmd, check=True)
        return json.load(open(report))["install"][0]["metadata"]


def pinned_requirements(requires, extras=("",)):
    """name -> (specifier, extras) for `name==version` requirements that apply on Linux x86_64."""
    out = {}
    for line in requires:
        r = Requirement(line)
        env = {"platform_system": "Linux", "sys_platform": "linux", "platform_machine": "x86_64",
               "python_version": "3.11", "python_full_version": "3.11.0"}
        if r.marker and not any(r.marker.evaluate(dict(env, extra=e)) for e in extras):
            continue
        if any(s.operator == "==" for s in r.specifier):
            out[r.name.lower()] = (str(r.specifier), sorted(r.extras))
    return out


def pin(version):
    torch = linux_wheel("torch", f"=={version}", python_tag="cp3")
    if torch is None:
        sys.exit(f"pin_torch: the index has no Linux x86_64 torch {version} wheel")
    reqs = pinned_requirements(metadata(f"torch=={version}")["requires_dist"])
    runtime, missing, cuda = {}, [], ""
    if "cuda-toolkit" in reqs:  # CUDA 13 wheels pin most libraries through this meta-package
        tk_spec, tk_extras = reqs.pop("cuda-toolkit")
        cuda = tk_spec.lstrip("=")
        tk = metadata(f"cuda-toolkit{tk_spec}")
        reqs.update({k: v for k, v in pinned_requirements(tk["requires_dist"], tk_extras).items()
                     if k not in reqs})
    for name, (spec, _) in sorted(reqs.items()):
        if not name.startswith("nvidia-"):
            continue
        w = linux_wheel(name, spec)
        if w is None:
            missing.append(f"{name}{spec}")
        else:
            runtime[name] = {"version": w[3], "url": w[0], "sha256": w[1]}
    return {"torch": {"url": torch[0], "sha256": torch[1], "file": torch[2]}, "cuda": cuda,
            "runtime": runtime, "missing": missing}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("versions", nargs="+")
    ap.add_argument("--default", help="the version --config=cuda builds when none is chosen")
    args = ap.parse_args()
    default = args.default or args.versions[-1]
    pins = {v: pin(v) for v in args.versions}
    with open(OUT, "w") as f:
        f.write('"""PyPI\'s CUDA torch wheels and their CUDA runtime wheels, pinned by sha256.\n\n'
                "Generated by: tools/pin_torch.py --default=" + default + " " +
                " ".join(args.versions) + "\nDo not edit. `--config=cuda` fetches\nDEFAULT_TORCH_VERSION, or "
                "$TRAINLAB_TORCH_VERSION, through third_party/libtorch/torch_wheel.bzl.\n"
                '"""\n\n')
        f.write(f'DEFAULT_TORCH_VERSION = "{default}"\n\n')
        f.write("TORCH_WHEELS = " + json.dumps(pins, indent=4, sort_keys=True) + "\n")
    print(f"pin_torch: wrote {os.path.normpath(OUT)}: " +
          ", ".join(f"{v} ({len(p['runtime'])} runtime wheels, {len(p['missing'])} missing)"
                    for v, p in pins.items()))


if __name__ == "__main__":
    main()
