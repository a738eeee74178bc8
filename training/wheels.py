"""Pinned registry wheels that ship real medical images for distillation (fetched like the demo's wheels)."""

from __future__ import annotations

from demo.wheels import STARDIST, Wheel

WHEELS: dict[str, Wheel] = {
    "dipy": Wheel(
        "dipy==1.12.1",
        "dipy-1.12.1-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.manylinux_2_28_x86_64.whl",
        "65013b80f6e61c4c52de7b61da6e36afa76b09ccfe8c456414519b36609d7bb6",
    ),
    "nibabel": Wheel(
        "nibabel==5.4.2",
        "nibabel-5.4.2-py3-none-any.whl",
        "553482c5f1e1034fc312edf6fb7f32236c0056439845d1c29293b7e8c98d4854",
    ),
    "scikit-image": Wheel(
        "scikit-image==0.26.0",
        "scikit_image-0.26.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
        "74aa5518ccea28121f57a95374581d3b979839adc25bb03f289b1bc9b99c58af",
    ),
    "stardist": STARDIST,
}
