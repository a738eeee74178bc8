"""Bring your own data: scans in NIfTI, NRRD, MetaImage, DICOM or ordinary images to challenge cases, and masks back.

`python -m convert` writes the npz cases `python -m inference` reads, with a sidecar
JSON that keeps the source's geometry, and writes segmentations back on the source's
grid. Neither inference nor evaluation depends on this package.
"""
