"""Self-contained reports: the dashboard's figures for a window in one HTML file, PDF or PNG."""

from app.report.document import FORMATS, METADATA_ID, Provenance, Report
from app.report.errors import (
    ExitCode,
    NoDataError,
    RendererMissingError,
    RenderFailedError,
    ReportError,
)

__all__ = [
    "FORMATS",
    "METADATA_ID",
    "ExitCode",
    "NoDataError",
    "Provenance",
    "RenderFailedError",
    "RendererMissingError",
    "Report",
    "ReportError",
]
