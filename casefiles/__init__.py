"""The case-file contract shared by inference and evaluation: names, discovery, safe npz reading.

It depends on neither the models nor the metrics (numpy only).
"""

from casefiles.errors import READ_ERRORS, CaseError
from casefiles.names import case_kind, discover_cases, ignored_entries, is_3d, modality
from casefiles.npz import array_headers, load_arrays

__all__ = ["READ_ERRORS", "CaseError", "array_headers", "case_kind", "discover_cases", "ignored_entries", "is_3d", "load_arrays", "modality"]
