"""scripts/vision_layer_check.py refuses bad layers and passes the real one.

The bad layers are built here with the host's C compiler: stub libraries whose sonames
(libc.so.6, libstdc++.so.6) and version scripts (GLIBC_2.38, GLIBCXX_3.4.99) are ours, so each
fixture needs exactly the versions a test names, whatever the host's own glibc is. The version
rules don't depend on the architecture; the host's ELF files are as good as aarch64 ones.
Run: .venv/bin/python scripts/vision_layer_check_test.py (scripts/test runs it).
"""

import contextlib
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import vision_layer_check as checker

ROOT = Path(__file__).resolve().parent.parent
BASE = ROOT / "scripts/provided-al2023-libs.txt"

STUBS = {
    # soname: (C source, version script)
    "libc.so.6": ("int old_fn(void){return 0;} int new_fn(void){return 1;}",
                  "GLIBC_2.17 { global: old_fn; local: *; }; GLIBC_2.38 { global: new_fn; } GLIBC_2.17;"),
    "libstdc++.so.6": ("int cxx_old(void){return 0;} int cxx_new(void){return 1;}",
                       "GLIBCXX_3.4.22 { global: cxx_old; local: *; }; GLIBCXX_3.4.99 { global: cxx_new; } GLIBCXX_3.4.22;"),
    "libnothere.so.1": ("int gone(void){return 0;}", "NOTHERE_1 { global: gone; local: *; };"),
}


def cc(out, source, *args):
    src = out.with_suffix(".c")
    src.write_text(source)
    subprocess.run(["cc", "-shared", "-fPIC", "-nostdlib", "-o", str(out), str(src), *args], check=True)
    src.unlink()


class LayerCheckTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = Path(tempfile.mkdtemp(prefix="layer-check-"))
        cls.stubs = cls.tmp / "stubs"
        cls.stubs.mkdir()
        for soname, (source, versions) in STUBS.items():
            script = cls.stubs / (soname + ".map")
            script.write_text(versions)
            cc(cls.stubs / soname, source, f"-Wl,-soname,{soname}", f"-Wl,--version-script,{script}")
        # The libstdc++ a layer bundles: it defines GLIBCXX_3.4.22 but not 3.4.99.
        old = cls.stubs / "old"
        old.mkdir()
        (old / "map").write_text("GLIBCXX_3.4.22 { global: cxx_old; local: *; };")
        cc(old / "libstdc++.so.6", "int cxx_old(void){return 0;}", "-Wl,-soname,libstdc++.so.6",
           f"-Wl,--version-script,{old / 'map'}")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def layer(self, libs):
        """A layer whose lib/ holds {file name: (C source, [stub sonames it links])}."""
        layer = Path(tempfile.mkdtemp(dir=self.tmp))
        (layer / "lib").mkdir()
        (layer / "models").mkdir()
        (layer / "models/model.onnx").write_bytes(b"not an ELF file")
        for name, (source, links) in libs.items():
            cc(layer / "lib" / name, source, f"-Wl,-soname,{name}", f"-L{self.stubs}", f"-L{layer / 'lib'}",
               *[f"-l:{lib}" for lib in links])
        return layer

    def run_check(self, layer, *extra):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = checker.main([str(layer), "--base", str(BASE), *extra])
        return code, out.getvalue()

    def test_a_layer_needing_only_old_glibc_and_its_own_libs_passes(self):
        layer = self.layer({
            "libhelper.so": ("extern int old_fn(void); int helper(void){return old_fn();}", ["libc.so.6"]),
            "libok.so": ("extern int helper(void); int ok(void){return helper();}", ["libhelper.so", "libc.so.6"]),
        })
        code, out = self.run_check(layer)
        self.assertEqual(code, 0, out)
        self.assertRegex(out, r"libhelper\.so\s+layer")
        self.assertIn("newest GLIBC needed: GLIBC_2.17", out)
        self.assertTrue(out.rstrip().endswith(": ok"), out)

    def test_a_glibc_version_newer_than_2_34_fails(self):
        layer = self.layer({"libnew.so": ("extern int new_fn(void); int f(void){return new_fn();}", ["libc.so.6"])})
        code, out = self.run_check(layer)
        self.assertEqual(code, 1, out)
        self.assertIn("FAIL lib/libnew.so: needs GLIBC_2.38 from libc.so.6; the base image has glibc 2.34", out)
        self.assertIn("newest GLIBC needed: GLIBC_2.38", out)

    def test_a_bundled_library_is_walked_too(self):
        layer = self.layer({
            "libhelper.so": ("extern int new_fn(void); int helper(void){return new_fn();}", ["libc.so.6"]),
            "libok.so": ("extern int helper(void); int ok(void){return helper();}", ["libhelper.so"]),
        })
        code, out = self.run_check(layer)
        self.assertEqual(code, 1, out)
        self.assertIn("FAIL lib/libhelper.so: needs GLIBC_2.38", out)
        self.assertNotIn("FAIL lib/libok.so", out)

    def test_a_library_neither_bundled_nor_in_the_base_image_fails(self):
        layer = self.layer({"libuser.so": ("extern int gone(void); int f(void){return gone();}", ["libnothere.so.1"])})
        code, out = self.run_check(layer)
        self.assertEqual(code, 1, out)
        self.assertIn("FAIL lib/libuser.so: needs libnothere.so.1, neither in lib/ nor in the base list", out)

    def test_a_glibcxx_version_the_bundled_libstdcxx_lacks_fails(self):
        layer = self.layer({"libcxx.so": ("extern int cxx_new(void); int f(void){return cxx_new();}", ["libstdc++.so.6"])})
        shutil.copy(self.stubs / "old/libstdc++.so.6", layer / "lib/libstdc++.so.6")
        code, out = self.run_check(layer)
        self.assertEqual(code, 1, out)
        self.assertIn("FAIL lib/libcxx.so: needs GLIBCXX_3.4.99 from libstdc++.so.6, which lib/libstdc++.so.6 "
                      "does not define", out)

    def test_a_layer_over_250_mib_unzipped_fails(self):
        layer = self.layer({"libok.so": ("extern int old_fn(void); int f(void){return old_fn();}", ["libc.so.6"])})
        with open(layer / "models/big.onnx", "wb") as f:  # sparse: no disk used
            f.truncate(checker.UNZIPPED_LIMIT)
        code, out = self.run_check(layer)
        self.assertEqual(code, 1, out)
        self.assertIn("Lambda's limit is 262144000", out)

    def test_a_library_for_another_machine_fails(self):
        layer = self.layer({"libok.so": ("extern int old_fn(void); int f(void){return old_fn();}", ["libc.so.6"])})
        other = "EM_X86_64" if os.uname().machine == "aarch64" else "EM_AARCH64"
        code, out = self.run_check(layer, "--machine", other)
        self.assertEqual(code, 1, out)
        self.assertIn("FAIL lib/libok.so: machine", out)

    def test_the_built_vision_layer_passes(self):
        layer = ROOT / "target/vision-layer"
        self.assertTrue((layer / "lib/libonnxruntime.so").exists(), "run ./scripts/build-vision-layer first")
        code, out = self.run_check(layer, "--machine", "EM_AARCH64")
        self.assertEqual(code, 0, out)
        for lib in ["libstdc++.so.6", "libgcc_s.so.1"]:
            self.assertRegex(out, re.escape(lib) + r"\s+layer\s")
        self.assertRegex(out, r"newest GLIBC needed: GLIBC_2\.(1\d|2\d|3[0-4])\b")


if __name__ == "__main__":
    unittest.main()
