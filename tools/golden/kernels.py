"""The CPU kernel set PyTorch is using, as ATen and oneDNN report it (not as the environment asked),
for the golden generators to record beside their values (core/kernels.h is the C++ side).

Float results depend on it: run the generators on the portable set, which every x86-64 machine of
this project has, so that a file does not depend on the machine that makes it:
    ATEN_CPU_CAPABILITY=avx2 DNNL_MAX_CPU_ISA=AVX2 /usr/bin/python3 tools/golden/make_....py
"""
import ctypes
import re

import torch

# dnnl_cpu_isa_t values of oneDNN 2.x (core/kernels.h has the same table).
ONEDNN_ISA = {0x1: "sse41", 0x3: "avx", 0x7: "avx2", 0x27: "avx512_core", 0x67: "avx512_core_vnni",
              0xe7: "avx512_core_bf16"}


def kernels():
    """{"aten": "avx2", "onednn": "avx2"}; call it after the computation (asking makes ATen choose)."""
    m = re.search(r"CPU capability usage: (NO AVX|\S+)", torch.__config__.show())
    aten = "unknown" if m is None else m.group(1).lower().replace("no avx", "default")
    try:
        isa = ctypes.CDLL("libdnnl.so.2").dnnl_get_effective_cpu_isa()
        onednn = ONEDNN_ISA.get(isa, hex(isa))
    except (OSError, AttributeError):
        onednn = "unknown"
    return {"aten": aten, "onednn": onednn}
