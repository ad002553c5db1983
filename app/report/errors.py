"""Why a report was not written, and the exit code a scheduler sees for each reason."""

from __future__ import annotations

from enum import IntEnum
from typing import ClassVar

from pipelines.errors import AgentdashError


class ExitCode(IntEnum):
    """Exit codes of ``agentdash report``: a scheduler can alert on each one differently."""

    OK = 0
    CONFIG_OR_SOURCE = 2
    """A setting or argument is wrong, or the source could not be read (as every command)."""
    NO_DATA = 3
    """The source answered, but the window holds no message that passes the filters."""
    RENDERER_MISSING = 4
    """PDF or PNG was asked for and no Chromium is installed."""
    RENDER_FAILED = 5
    """Chromium was found but did not produce the PDF or PNG."""


class ReportError(AgentdashError):
    """A report could not be written; ``exit_code`` says why, for schedulers."""

    exit_code: ClassVar[ExitCode] = ExitCode.CONFIG_OR_SOURCE


class NoDataError(ReportError):
    """The window holds no message that passes the filters."""

    exit_code = ExitCode.NO_DATA


class RendererMissingError(ReportError):
    """No Chromium to turn the HTML into PDF or PNG."""

    exit_code = ExitCode.RENDERER_MISSING


class RenderFailedError(ReportError):
    """Chromium ran but gave no PDF or PNG."""

    exit_code = ExitCode.RENDER_FAILED
