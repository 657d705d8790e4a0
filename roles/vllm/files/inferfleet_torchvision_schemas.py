"""Register torchvision's two op schemas before torchvision is imported.

Why: PyPI's torchvision wheel is a CUDA build; its C++ extension does not load
against the CPU build of torch, so ``torch.ops.torchvision.nms``/``qnms`` never
get defined, yet ``torchvision/_meta_registrations.py`` registers fake kernels
for exactly those two ops unconditionally and ``import torchvision`` fails with
``operator torchvision::nms does not exist``.  vLLM's Qwen3-VL image processor
needs torchvision's transforms (not its detection ops), so defining the two
schemas (without kernels) is enough.  Installed by inferfleet.gpu.vllm
(roles/vllm/tasks/cpu_quirks.yml) together with a ``.pth`` file that calls
``install()``: an import hook, so nothing is imported until torchvision is.
"""
import importlib.abc
import sys

_SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)
_LIB = []


def define_schemas():
    import torch

    if _LIB:
        return
    lib = torch.library.Library("torchvision", "FRAGMENT")
    for schema in _SCHEMAS:
        name = schema.split("(", 1)[0]
        try:
            torch._C._dispatch_find_schema_or_throw("torchvision::" + name, "")
        except RuntimeError:
            lib.define(schema)
    _LIB.append(lib)


class _BeforeTorchvision(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        if fullname == "torchvision":
            sys.meta_path.remove(self)
            define_schemas()
        return None


def install():
    if not any(isinstance(f, _BeforeTorchvision) for f in sys.meta_path):
        sys.meta_path.insert(0, _BeforeTorchvision())
