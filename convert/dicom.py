"""DICOM: choosing and reading a series from a folder, and the challenge's name for a DICOM modality."""

from __future__ import annotations

from pathlib import Path

import SimpleITK as sitk

from convert.errors import ConvertError

MODALITY_TAG = "0008|0060"
# DICOM Modality (0008,0060) codes -> the modality names of the challenge's case names.
CHALLENGE_MODALITIES = {
    "CT": "CT", "MR": "MR", "PT": "PET", "US": "US", "MG": "Mammography", "OPT": "OCT", "OP": "Fundus",
    "ES": "Endoscopy", "SM": "Microscope", "XC": "Dermoscopy", "CR": "XRay", "DX": "XRay", "DR": "XRay",
    "RF": "XRay", "XA": "XRay",
}


def challenge_modality(code: str) -> str:
    """The challenge's modality name for a DICOM Modality code (`PT` -> `PET`); an unknown code as it is."""
    return CHALLENGE_MODALITIES.get(code.strip().upper(), code.strip())


def series_files(folder: Path) -> dict[str, list[str]]:
    """SeriesInstanceUID -> its files in slice order, for every series directly in `folder`."""
    uids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder))
    return {uid: list(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), uid)) for uid in uids}


def choose_series(folder: Path, series: dict[str, list[str]], uid: str | None) -> str:
    """The UID asked for, or the series with the most slices (the first UID in sorted order on a tie)."""
    if not series:
        raise ConvertError(folder, "no DICOM series in this folder")
    if uid is None:
        return max(sorted(series), key=lambda name: len(series[name]))
    if uid not in series:
        raise ConvertError(folder, f"no series {uid}; the folder holds {', '.join(sorted(series))}")
    return uid


def read_series(folder: Path, uid: str | None = None) -> tuple[sitk.Image, str | None, str]:
    """The series `uid` (default: the one with the most slices) of a folder: image, Modality code, its UID."""
    series = series_files(folder)
    chosen = choose_series(folder, series, uid)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(series[chosen])
    reader.MetaDataDictionaryArrayUpdateOn()
    image = reader.Execute()
    modality = reader.GetMetaData(0, MODALITY_TAG) if reader.HasMetaDataKey(0, MODALITY_TAG) else None
    return image, modality, chosen


def read_file(path: Path) -> tuple[sitk.Image, str | None]:
    """One DICOM file (a slice, a multi-frame image or an RGB picture) and its Modality code.

    GDCM applies the rescale slope and intercept (CT in Hounsfield units) and
    inverts MONOCHROME1 images, so that bright means dense in every image read.
    """
    reader = sitk.ImageFileReader()
    reader.SetImageIO("GDCMImageIO")
    reader.SetFileName(str(path))
    image = reader.Execute()
    modality = reader.GetMetaData(MODALITY_TAG) if reader.HasMetaDataKey(MODALITY_TAG) else None
    return image, modality
