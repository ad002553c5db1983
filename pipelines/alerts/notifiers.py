"""Sending notifications: a webhook (JSON POST), Slack and Teams incoming webhooks, email.

Each notifier retries a failed delivery (an HTTP error status, a refused connection, an
SMTP error) with exponential backoff (``tenacity``), ``retries`` attempts in all, then
raises :class:`DeliveryError`; the caller logs it and goes on with the others.
"""

from __future__ import annotations

import json
import logging
import smtplib
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import requests
from tenacity import Retrying, stop_after_attempt, wait_exponential

from pipelines.alerts.rules import NotifierConfig
from pipelines.errors import AgentdashError

log = logging.getLogger(__name__)


class DeliveryError(AgentdashError):
    """A notification could not be delivered, after every retry."""


@dataclass(frozen=True)
class Notice:
    """What a notifier is told: a title, the facts as JSON, and maybe a file to attach."""

    title: str
    body: dict[str, Any]
    attachment: Path | None = None

    @classmethod
    def alert(
        cls,
        rule: str,
        group: str | None,
        state: str,
        metric: str,
        condition: str,
        value: float | None,
        at: datetime,
    ) -> Notice:
        """An alert instance that starts firing or resolves."""
        shown = "no data" if value is None else f"{value:g}"
        where = "" if group is None else f" [{group}]"
        return cls(
            f"{state.upper()}: {rule}{where}: {metric} = {shown} (condition {condition})",
            {
                "kind": "alert",
                "rule": rule,
                "group": group,
                "state": state,
                "status": state,  # as Alertmanager names it, for receivers written for it
                "metric": metric,
                "condition": condition,
                "value": value,
                "at": at.isoformat(),
            },
        )


class Notifier:
    """One configured notifier (``[notifiers.NAME]``)."""

    def __init__(self, config: NotifierConfig, backoff_seconds: float = 0.5) -> None:
        self.config = config
        self.backoff_seconds = backoff_seconds

    @property
    def name(self) -> str:
        return self.config.name

    def send(self, notice: Notice) -> None:
        """Deliver ``notice``, retrying with backoff; DeliveryError when every attempt failed."""
        retrying = Retrying(
            stop=stop_after_attempt(self.config.retries),
            wait=wait_exponential(multiplier=self.backoff_seconds, max=30),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    number = attempt.retry_state.attempt_number
                    try:
                        self._deliver(notice)
                    except (requests.RequestException, smtplib.SMTPException, OSError) as exc:
                        log.warning(
                            "notifier %s: attempt %d of %d failed: %s",
                            self.name,
                            number,
                            self.config.retries,
                            exc,
                        )
                        raise
        except (requests.RequestException, smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(
                f"notifier {self.name} ({self.config.kind}): {notice.title!r} not delivered "
                f"after {self.config.retries} attempts: {exc}"
            ) from exc

    def _deliver(self, notice: Notice) -> None:
        kind, options = self.config.kind, self.config.options
        if kind == "email":
            self._email(notice)
            return
        if kind == "webhook":
            payload: dict[str, Any] = {"title": notice.title, **notice.body}
            if notice.attachment is not None:
                payload["file"] = str(notice.attachment)
        else:  # Slack's and Teams' incoming webhooks both take a text
            text = notice.title
            if notice.attachment is not None:
                text += f"\n{notice.attachment}"
            payload = {"text": text}
        response = requests.post(
            options["url"],
            json=payload,
            headers=options.get("headers"),
            timeout=self.config.timeout_seconds,
        )
        response.raise_for_status()

    def _email(self, notice: Notice) -> None:
        options = self.config.options
        message = EmailMessage()
        message["Subject"] = notice.title
        message["From"] = options["sender"]
        message["To"] = ", ".join(options["to"])
        message.set_content(json.dumps(notice.body, indent=2))
        if notice.attachment is not None:
            message.add_attachment(
                notice.attachment.read_bytes(),
                maintype="application",
                subtype="octet-stream",
                filename=notice.attachment.name,
            )
        with smtplib.SMTP(
            options["host"], int(options.get("port", 25)), timeout=self.config.timeout_seconds
        ) as smtp:
            if options.get("starttls"):
                smtp.starttls()
            if options.get("username"):
                smtp.login(options["username"], options.get("password", ""))
            smtp.send_message(message)
