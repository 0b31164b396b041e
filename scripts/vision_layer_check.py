"""Checks a Lambda layer's shared libraries against the base image they will run on.

Used by scripts/check-vision-layer (see there, and the README's "Checking the layer"). Every ELF
file in the layer is read with pyelftools (so an aarch64 layer is checked on an x86_64 host):
- each DT_NEEDED must be in the layer's lib/ or in the base image's documented list;
- each version it needs from a base library must be GLIBC_x.y <= the base's glibc (GLIBC_PRIVATE
  and unknown families fail: the base's libraries are only known to be glibc's);
- each version it needs from a bundled library must be defined by that library (.gnu.version_d),
  which is how GLIBCXX_/CXXABI_/GCC_ needs are held to the libstdc++/libgcc_s that is bundled;
- the unzipped layer stays under Lambda's 250 MB.
Prints one table row per (file, needed library) and exits 1 on any failure.
"""

import argparse
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerDefSection, GNUVerNeedSection

# Lambda's quota: function and layers unzipped < 250 MB; the API states it as 262144000 bytes.
# https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
UNZIPPED_LIMIT = 262_144_000
MIB = 1_048_576  # Lambda's "250 MB" is 250 MiB


@dataclass
class ElfInfo:
    rel: str
    size: int
    machine: str
    needed: list = field(default_factory=list)
    verneed: dict = field(default_factory=dict)  # library -> [version names]
    verdef: set = field(default_factory=set)


@dataclass
class Base:
    glibc: tuple
    libs: set


def parse_version(name):
    """'GLIBCXX_3.4.22' -> ('GLIBCXX', (3, 4, 22)); None for names without a dotted number."""
    m = re.fullmatch(r"([A-Z_]*?)_?(\d+(?:\.\d+)*)", name)
    if not m:
        return None
    return m.group(1), tuple(int(p) for p in m.group(2).split("."))


def read_base(path):
    glibc, libs = None, set()
    for line in Path(path).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("glibc "):
            glibc = tuple(int(p) for p in line.split()[1].split("."))
        else:
            libs.add(line)
    if glibc is None:
        raise SystemExit(f"{path}: no 'glibc X.Y' line")
    return Base(glibc, libs)


def read_elf(path, rel):
    with open(path, "rb") as f:
        if f.read(4) != b"\x7fELF":
            return None
        f.seek(0)
        elf = ELFFile(f)
        info = ElfInfo(rel, os.stat(path).st_size, elf["e_machine"])
        for sec in elf.iter_sections():
            if isinstance(sec, DynamicSection):
                info.needed += [t.needed for t in sec.iter_tags() if t.entry.d_tag == "DT_NEEDED"]
            elif isinstance(sec, GNUVerNeedSection):
                for verneed, auxes in sec.iter_versions():
                    info.verneed.setdefault(verneed.name, []).extend(a.name for a in auxes)
            elif isinstance(sec, GNUVerDefSection):
                for _verdef, auxes in sec.iter_versions():
                    info.verdef.update(a.name for a in auxes)
        return info


def scan(layer):
    """Every ELF file in the layer (symlinks followed, as a zip of the layer would hold them)."""
    elves, total = [], 0
    for path in sorted(p for p in Path(layer).rglob("*") if p.is_file()):
        total += os.stat(path).st_size
        info = read_elf(path, str(path.relative_to(layer)))
        if info:
            elves.append(info)
    return elves, total


def highest(names):
    """The newest version of each family: ['GLIBC_2.17', 'GLIBC_2.28'] -> ['GLIBC_2.28']."""
    best = {}
    for n in names:
        v = parse_version(n)
        key = v[0] if v else n
        if key not in best or (v and parse_version(best[key])[1] < v[1]):
            best[key] = n
    return sorted(best.values())


def check_needs(info, lib, where, base, bundled):
    """The problems with the versions `info` needs from `lib`, found in `where`."""
    problems = []
    for name in info.verneed.get(lib, []):
        if where == "layer":
            if name not in bundled[lib].verdef:
                problems.append(f"{info.rel}: needs {name} from {lib}, which lib/{lib} does not define")
            continue
        v = parse_version(name)
        if not v or v[0] != "GLIBC":
            problems.append(f"{info.rel}: needs {name} from base {lib}; only GLIBC_x.y is known there")
        elif v[1] > base.glibc:
            limit = ".".join(map(str, base.glibc))
            problems.append(f"{info.rel}: needs {name} from {lib}; the base image has glibc {limit}")
    return problems


def check(layer, base, machine=None):
    """(table rows, problems, figures) for the layer at `layer`."""
    elves, total = scan(layer)
    libdir = Path(layer) / "lib"
    bundled = {e.rel[len("lib/"):]: e for e in elves if e.rel.startswith("lib/")}
    rows, problems = [], []
    for info in elves:
        if machine and info.machine != machine:
            problems.append(f"{info.rel}: machine {info.machine}, not {machine}")
        for lib in info.needed or ["-"]:
            if lib == "-":
                rows.append((info, "-", "-", [], "ok"))
                continue
            # The loader searches /lib64 before /opt/lib (LD_LIBRARY_PATH), so a base library wins.
            where = "base" if lib in base.libs else "layer" if lib in bundled else "MISSING"
            found = []
            if where == "MISSING":
                kind = "not an ELF library" if (libdir / lib).exists() else "neither in lib/ nor in the base list"
                found.append(f"{info.rel}: needs {lib}, {kind}")
            else:
                found += check_needs(info, lib, where, base, bundled)
            rows.append((info, lib, where, highest(info.verneed.get(lib, [])), "ok" if not found else "FAIL"))
            problems += found
    glibc = highest(n for e in elves for names in e.verneed.values() for n in names if n.startswith("GLIBC_2"))
    if total >= UNZIPPED_LIMIT:
        problems.append(f"layer is {total} bytes unzipped; Lambda's limit is {UNZIPPED_LIMIT}")
    figures = {"total": total, "glibc": glibc[0] if glibc else "none",
               "lib": sum(os.stat(p).st_size for p in libdir.rglob("*") if p.is_file()) if libdir.exists() else 0}
    return rows, problems, figures


def print_report(layer, rows, problems, figures, base):
    print(f"{'file':<28} {'size':>9}  {'NEEDED':<24} {'from':<7} {'newest versions needed':<40} ok")
    last = None
    for info, lib, where, versions, status in rows:
        name, size = (info.rel, f"{info.size / MIB:.1f} MiB") if info is not last else ("", "")
        last = info
        print(f"{name:<28} {size:>9}  {lib:<24} {where:<7} {', '.join(versions) or '-':<40} {status}")
    total, lib = figures["total"], figures["lib"]
    print(f"\nlib/ {lib / MIB:.1f} MiB, other files {(total - lib) / MIB:.1f} MiB, total {total / MIB:.1f} MiB "
          f"unzipped (limit {UNZIPPED_LIMIT / MIB:.0f} MiB)")
    print(f"newest GLIBC needed: {figures['glibc']} (base image: glibc {'.'.join(map(str, base.glibc))})")
    outside = sorted({r[1] for r in rows if r[2] == "base"})
    print(f"from the base image: {', '.join(outside) or 'nothing'}")
    for p in problems:
        print(f"FAIL {p}")
    print(f"{layer}: {'FAILED, ' + str(len(problems)) + ' problem(s)' if problems else 'ok'}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("layer")
    ap.add_argument("--base", required=True, help="the base image's library list (provided-al2023-libs.txt)")
    ap.add_argument("--machine", help="every ELF's e_machine, e.g. EM_AARCH64")
    args = ap.parse_args(argv)
    if not Path(args.layer).is_dir():
        raise SystemExit(f"{args.layer}: no such layer directory")
    base = read_base(args.base)
    rows, problems, figures = check(args.layer, base, args.machine)
    print_report(args.layer, rows, problems, figures, base)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
