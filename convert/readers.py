"""Read a scan or a label image in any supported format, as SimpleITK sees it (native order, nothing resampled)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import SimpleITK as sitk

from convert import dicom
from convert.errors import ConvertError

# File name ending -> (format name, the ITK ImageIO that reads it). Naming the
# ImageIO makes a broken file fail as what its name says it is.
FORMATS = {
    ".nii.gz": ("NIfTI", "NiftiImageIO"),
    ".nii": ("NIfTI", "NiftiImageIO"),
    ".nrrd": ("NRRD", "NrrdImageIO"),
    ".nhdr": ("NRRD", "NrrdImageIO"),
    ".mha": ("MetaImage", "MetaImageIO"),
    ".mhd": ("MetaImage", "MetaImageIO"),
    ".png": ("PNG", "PNGImageIO"),
    ".jpg": ("JPEG", "JPEGImageIO"),
    ".jpeg": ("JPEG", "JPEGImageIO"),
    ".tif": ("TIFF", "TIFFImageIO"),
    ".tiff": ("TIFF", "TIFFImageIO"),
    ".bmp": ("BMP", "BMPImageIO"),
    ".dcm": ("DICOM", "GDCMImageIO"),
    ".dicom": ("DICOM", "GDCMImageIO"),
    ".ima": ("DICOM", "GDCMImageIO"),
}
DICOM_SERIES = "DICOM series"
DICOM_PREAMBLE = 128  # a DICOM file's bytes 128..131 read "DICM"


@dataclass(frozen=True)
class Scan:
    """An image as read: the file or folder, the SimpleITK image, its format and, for DICOM, its Modality code."""

    path: Path
    image: sitk.Image
    format: str
    modality_code: str | None = None
    series_uid: str | None = None


def file_format(path: Path) -> tuple[str, str] | None:
    """(format name, ImageIO) for a file, from its name or, without a known ending, the DICOM preamble; else None."""
    name = path.name.lower()
    for ending, found in FORMATS.items():
        if name.endswith(ending):
            return found
    with open(path, "rb") as handle:
        handle.seek(DICOM_PREAMBLE)
        if handle.read(4) == b"DICM":
            return FORMATS[".dcm"]
    return None


def read_scan(path: Path, series_uid: str | None = None) -> Scan:
    """Read a 2D or 3D image: a file of a supported format, or a folder holding a DICOM series."""
    path = Path(path)
    if not path.exists():
        raise ConvertError(path, "does not exist")
    found = (DICOM_SERIES, "") if path.is_dir() else _readable_format(path)
    try:
        if path.is_dir():
            image, code, uid = dicom.read_series(path, series_uid)
            scan = Scan(path, image, DICOM_SERIES, code, uid)
        elif found[1] == "GDCMImageIO":
            image, code = dicom.read_file(path)
            scan = Scan(path, image, found[0], code)
        else:
            scan = Scan(path, sitk.ReadImage(str(path), imageIO=found[1]), found[0])
    except RuntimeError as err:
        raise ConvertError(path, f"cannot read as {found[0]}: {itk_message(err)}") from err
    if scan.image.GetDimension() not in (2, 3):
        raise ConvertError(path, f"a {scan.image.GetDimension()}D image (size {scan.image.GetSize()}): "
                                 "only 2D images and 3D volumes can be converted")
    return scan


def _readable_format(path: Path) -> tuple[str, str]:
    """The format of a file, or a ConvertError saying why it cannot be read."""
    try:
        found = file_format(path)
    except OSError as err:
        raise ConvertError(path, f"cannot read: {err.strerror or err}") from err
    if found is None:
        raise ConvertError(path, f"unsupported file type (supported: {', '.join(FORMATS)}, or a DICOM series folder)")
    return found


def itk_message(err: RuntimeError) -> str:
    """The useful last line of an ITK exception (its first lines name ITK's own source files)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    last = lines[-1] if lines else type(err).__name__
    return last.removeprefix("sitk::ERROR:").strip()
