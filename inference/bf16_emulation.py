"""bf16 arithmetic on any CPU, for measuring how a bf16 model moves masks where the CPU has no bf16.

CPUs with native bf16 (AVX512-BF16, AMX) multiply bf16 operands and accumulate in f32;
the results are stored as bf16 again. `Bf16Products` does the same to every matrix
product and convolution of a torch model: it rounds their operands to bf16, computes
in f32 (a product of two bf16 numbers is exact in f32) and rounds the result to bf16.
Only the accumulation order differs from a native kernel's. Other operations (norms,
softmax, activations) stay f32. torch's own CPU bf16 autocast computes much the same
but far slower on CPUs without bf16 (52 s per LiteMedSAM encoder call, against 3 s
here and 1.6 s in f32), which is why it is not used.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

PRODUCTS: frozenset[Callable] = frozenset({
    F.linear, F.conv1d, F.conv2d, F.conv3d, F.conv_transpose2d, torch.matmul, torch.bmm, torch.mm,
    torch.addmm, torch.baddbmm, torch.einsum, torch.Tensor.matmul, torch.Tensor.__matmul__, torch.Tensor.__rmatmul__,
})


def round_to_bf16(value: object) -> object:
    """A floating tensor rounded to the nearest bf16 value (kept in its own dtype); anything else as it is."""
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value.to(torch.bfloat16).to(value.dtype)
    if isinstance(value, (list, tuple)):
        return type(value)(round_to_bf16(item) for item in value)
    return value


class Bf16Products(TorchFunctionMode):
    """Within the block, matrix products and convolutions compute as bf16 hardware does (see the module's text)."""

    def __torch_function__(self, func: Callable, types: object, args: tuple = (), kwargs: dict | None = None) -> object:
        kwargs = kwargs or {}
        if func not in PRODUCTS:
            return func(*args, **kwargs)
        result = func(*round_to_bf16(args), **{key: round_to_bf16(value) for key, value in kwargs.items()})
        return round_to_bf16(result)
