"""The organizers' own baseline script, fetched at a pinned commit and run as their image ran it.

`CVPR24_LiteMedSAM_infer.py` of the LiteMedSAM branch of bowang-lab/MedSAM, with the
modules it imports from that repository, is fetched file by file from the pinned commit
(or read from a local clone of it, `--organizers-repo PATH`, for machines without GitHub)
and checked by sha256; nothing of it is kept in this repository. It runs with its own
defaults (the overlay figure it saves for every case included) on our verified
LiteMedSAM weights, each case in a fresh process, as the organizers' `predict.sh` did.

Its two third-party imports that only their CUDA wheels provide here are stood in for:
`timm` (DropPath with drop rate 0, which is the identity, to_2tuple, trunc_normal_ for
weights the checkpoint then replaces, register_model) and the `torchvision` functions
that segment_anything's unused predictor and mask generator import. The script calls
none of the stand-ins' arithmetic, so its masks and its work are its own.
"""

from __future__ import annotations

import hashlib
import shlex
import subprocess
import urllib.request
from pathlib import Path

from common.atomic import write_atomic

REPOSITORY = "bowang-lab/MedSAM"
# The head of the repository's LiteMedSAM branch, which holds the challenge's baseline.
COMMIT = "b0fab476e54e631dd412b25e0db9fdf2a2b0f54c"
SCRIPT = "CVPR24_LiteMedSAM_infer.py"
RAW_URL = "https://raw.githubusercontent.com/{repository}/{commit}/{path}"
FILES = {
    SCRIPT: "0a4d1ea94ec03e0a0781ef3eecf50e7c5fe41d36f1e64ed676379d81fe98d06d",
    "tiny_vit_sam.py": "7b2f2103b7bc19a09c1f1e2fe1097ead8105fed59ab62e436430032a3a0e6c49",
    "segment_anything/__init__.py": "1c22ab77db285b05b7e0a60cd417459182613ea5c746dffec6993a5f86cdbcf1",
    "segment_anything/automatic_mask_generator.py": "77842dcb57c68e6eeaeed8a73c5fd079cd20967c2176daf1f115d5be2b2416d9",
    "segment_anything/build_sam.py": "29362c2c738263109b3419265bbcc6809932ca023192143dd48f3e0b1cfeaf23",
    "segment_anything/modeling/__init__.py": "7bd468bf97fea2758bcdf18977dc8e60d6f90d1d02f5413a2870740005ecfbe8",
    "segment_anything/modeling/common.py": "77581b8217e25c9ace51f7356fccd1a07ed2962d0f74aae2491f1001750565f1",
    "segment_anything/modeling/image_encoder.py": "afd56922b0c2903f0ddcc75ea2819b42c534c6a830082794f8b93028a2d0c19c",
    "segment_anything/modeling/mask_decoder.py": "270dea7cb1103e7ad04932b7c45e5b0d5ba0db0a8a13734a55bbce0e002fadf7",
    "segment_anything/modeling/prompt_encoder.py": "6961f2b6b336501ecaed497b5642e2626d60a81e6b861455822678df256f3664",
    "segment_anything/modeling/sam.py": "4a5eb2d47f10e2762c29eed6212c190a54709edc3ce01c1f136bce6d901473a6",
    "segment_anything/modeling/transformer.py": "9bd360481a8f693e0b4054a229b5a5bb60efc38bb92e004de138009eba98cd94",
    "segment_anything/predictor.py": "f4125a596a7871043c3f29217b9ff69dfc779490beec2f743d71d8ffe8c51a40",
    "segment_anything/utils/__init__.py": "5f0b78fc8a07e575fded364917a215ebb440df00d90c789d9a3d801fee6f1223",
    "segment_anything/utils/amg.py": "a308a3908bdab30515e0f68f4f3ff7dfd00a35055106b4e83635dc0c5df2ef11",
    "segment_anything/utils/onnx.py": "1e89e913b79660ac1c8870c8d494adc23ee9f591e90c14d53ec6587e6ce18ade",
    "segment_anything/utils/transforms.py": "6351ec01f61abfb69a529bb7de105f86a52d519e5d25c004c96b0e483b9791af",
}
UNUSED = "raise NotImplementedError('not used by the baseline script')"
STAND_INS = {
    "timm/__init__.py": "",
    "timm/models/__init__.py": "",
    "timm/models/layers.py": f'''"""What tiny_vit_sam.py imports from timm."""
import collections.abc

import torch


class DropPath(torch.nn.Module):
    def __init__(self, drop_prob=0.0):
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x):
        if self.drop_prob and self.training:
            {UNUSED}
        return x


def to_2tuple(x):
    return tuple(x) if isinstance(x, collections.abc.Iterable) else (x, x)


trunc_normal_ = torch.nn.init.trunc_normal_
''',
    "timm/models/registry.py": "def register_model(function):\n    return function\n",
    "torchvision/__init__.py": "",
    "torchvision/ops/__init__.py": "",
    "torchvision/ops/boxes.py": f"def batched_nms(*args, **kwargs):\n    {UNUSED}\n\n\n"
                                f"def box_area(*args, **kwargs):\n    {UNUSED}\n",
    "torchvision/transforms/__init__.py": "",
    "torchvision/transforms/functional.py": f"def resize(*args, **kwargs):\n    {UNUSED}\n\n\n"
                                            f"def to_pil_image(*args, **kwargs):\n    {UNUSED}\n",
}


class OrganizersScriptError(RuntimeError):
    """The pinned script could not be fetched, or a file differs from its pinned hash."""


def _from_github(path: str) -> bytes:
    url = RAW_URL.format(repository=REPOSITORY, commit=COMMIT, path=path)
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.read()
    except OSError as error:
        raise OrganizersScriptError(
            f"cannot download {url} ({error}); on a machine without GitHub, clone {REPOSITORY} elsewhere and pass "
            "--organizers-repo PATH") from error


def _from_clone(clone: Path, path: str) -> bytes:
    shown = subprocess.run(["git", "-C", str(clone), "show", f"{COMMIT}:{path}"], capture_output=True)
    if shown.returncode != 0:
        raise OrganizersScriptError(f"{clone} has no {path} at commit {COMMIT}: {shown.stderr.decode().strip()}")
    return shown.stdout


def fetch_script(cache_dir: Path, clone: Path | None = None) -> Path:
    """The folder holding the pinned script, its modules (checked by sha256) and the stand-ins; fetched once."""
    folder = cache_dir / f"MedSAM-{COMMIT[:12]}"
    for path, digest in FILES.items():
        target = folder / path
        if target.is_file() and hashlib.sha256(target.read_bytes()).hexdigest() == digest:
            continue
        data = _from_clone(clone, path) if clone else _from_github(path)
        if hashlib.sha256(data).hexdigest() != digest:
            raise OrganizersScriptError(f"{path} at {COMMIT} does not match its pinned sha256")
        write_atomic(target, data)
    for path, text in STAND_INS.items():
        write_atomic(folder / "stand-ins" / path, text)
    return folder


def script_command(folder: Path, python: str, weights: Path, overlays: Path) -> str:
    """The command template (with {inputs} and {outputs}) that runs the script as the organizers' predict.sh did."""
    path = f"{folder}:{folder / 'stand-ins'}"
    return (f"env PYTHONPATH={shlex.quote(path)} {shlex.quote(python)} {shlex.quote(str(folder / SCRIPT))} "
            f"-i {{inputs}} -o {{outputs}} -lite_medsam_checkpoint_path {shlex.quote(str(weights))} "
            f"-png_save_dir {shlex.quote(str(overlays))}")
