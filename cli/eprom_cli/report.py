"""The verification's evidence for Hemit and for the registry's records: Markdown, a self-contained HTML page and
JSON, written from the verification's state (which holds no national ids, codes or answers)."""

import html
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from eprom_cli.verify import SECTIONS, Verification

_ORDER_COLUMNS = ("case", "orderReference", "formId", "formOrderId", "channel", "mustBeSigned", "onBehalfOf")
_CHECK_COLUMNS = ("#", "check", "result", "observed", "at (UTC)", "what to do")
_EVENT_COLUMNS = ("detail-type", "eventId", "formOrderId", "status", "occurredAt")
_TIMELINE_COLUMNS = ("time (UTC)", "what")


def write(verification: Verification, directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    stem = directory / f"verification-{verification.run_id}"
    paths = [stem.with_suffix(".md"), stem.with_suffix(".html"), stem.with_suffix(".json")]
    paths[0].write_text(markdown(verification))
    paths[1].write_text(html_page(verification))
    record = verification.model_dump(mode="json", exclude={"tap_queue_url", "tap_rule", "tap_bus"})
    paths[2].write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    return paths


def title(verification: Verification) -> str:
    return f"ePROM integration verification: {verification.system_name or verification.target}"


_OUTCOMES = {"passed": "PASSED", "failed": "FAILED", "incomplete": "INCOMPLETE"}


def summary(verification: Verification) -> list[tuple[str, str]]:
    environment = verification.environment.name
    if verification.eprom_api_base_url:
        environment += f" ({verification.eprom_api_base_url})"
    rows = [
        ("outcome", _OUTCOMES.get(verification.outcome, verification.outcome.upper())),
        ("ordering system", verification.system_name or "(not given: --system-name)"),
        ("ApiBaseUrl", verification.api_base_url or "-"),
        ("ePROM environment", environment),
        ("stage", f"{verification.stage} (stack {verification.target})"),
        ("integration version", verification.version or "-"),
        ("run", verification.run_id),
        ("started (UTC)", _time(verification.started_at)),
        ("finished (UTC)", _time(verification.finished_at)),
        ("expected channel", verification.expected_channel),
        ("test person", "Hemit's verification person (number not written to reports)"),
    ]
    for kind in ("signed", "on-behalf-of"):
        if kind not in verification.kinds:
            reason = verification.waivers.get(kind)
            rows.append((f"{kind} case", f"not run, waived: {reason}" if reason else "NOT RUN (Hemit requires it)"))
    return rows


def checklist(verification: Verification) -> list[tuple[str, list[tuple[str, ...]]]]:
    """Hemit's checklist, section by section: the steps of the run and the person's confirmations."""
    numbered = list(enumerate(verification.steps, start=1))
    sections = []
    for section in SECTIONS:
        rows: list[tuple[str, ...]] = [
            (str(number), step.name, "PASS" if step.passed else "FAIL", step.observed, _time(step.at), step.next or "")
            for number, step in numbered
            if step.section == section
        ]
        for item in verification.confirmations():
            if item.section == section:
                answer = verification.answers.get(item.key)
                result = (
                    {"yes": "PASS", "no": "FAIL", "simulated": "SIMULATED"}.get(answer.answer, "") if answer else ""
                )
                observed = {"yes": "confirmed by the person", "no": "NOT confirmed by the person",
                            "simulated": "the local simulator played the person"}  # fmt: skip
                rows.append(("", f"{item.question} ({item.key})", result or "OPEN",
                             observed[answer.answer] if answer else "not confirmed yet", _time(answer.at if answer
                             else None), "" if answer else f"--resume --confirm {item.key}"))  # fmt: skip
        if section == SECTIONS[-1]:
            for kind in ("on-behalf-of", "signed"):
                if kind not in verification.kinds:
                    reason = verification.waivers.get(kind)
                    rows.append(("", f"the {kind} case", "WAIVED" if reason else "NOT RUN",
                                 f"waived: {reason}" if reason else "not run; Hemit requires it", "-",
                                 "" if reason else "a new verification with it, or --waive-" + kind))  # fmt: skip
        sections.append((section, rows))
    return sections


def tables(verification: Verification) -> list[tuple[str, tuple[str, ...], Sequence[tuple[str, ...]]]]:
    cases = [(case.kind, case.order_reference, case.form_id, case.form_order_id or "-", case.channel or "-",
              _yes(case.must_be_signed), _yes(case.on_behalf_of)) for case in verification.cases]  # fmt: skip
    events = [(event.detail_type, event.event_id, event.form_order_id or "-", event.status or "-",
               event.occurred_at or "-") for event in verification.events]  # fmt: skip
    return [
        ("Orders", _ORDER_COLUMNS, cases),
        *((section, _CHECK_COLUMNS, rows) for section, rows in checklist(verification)),
        ("Timeline", _TIMELINE_COLUMNS, timeline(verification)),
        ("Outcome events delivered", _EVENT_COLUMNS, events),
    ]


def timeline(verification: Verification) -> list[tuple[str, str]]:
    """What happened when: orders sent, callbacks received (our clock), events (when their fact occurred), steps."""
    entries: list[tuple[datetime, str]] = []
    for case in verification.cases:
        if case.sent_at:
            entries.append((case.sent_at, f"{case.kind}: order {case.order_reference} sent to OrderQueue"))
        for entry in case.statuses:
            channel = f" on {entry.notification_channel}" if entry.notification_channel else ""
            what = f"{case.kind}: callback {entry.status}{channel} stored (formOrderId {case.form_order_id})"
            entries.append((_parsed(entry.received_at), what))
    for event in verification.events:
        what = f"event {event.detail_type} ({event.status}) {event.event_id} for {event.form_order_id}"
        entries.append((_parsed(event.occurred_at), what))
    for step in verification.steps:
        entries.append((step.at, f"step {'passed' if step.passed else 'FAILED'}: {step.name}"))
    entries += list(verification.notes)
    return [(_time(at), what) for at, what in sorted(entries, key=lambda entry: entry[0])]


def markdown(verification: Verification) -> str:
    lines = [f"# {title(verification)}", ""]
    lines += [f"- **{name}**: {_md(value)}" for name, value in summary(verification)]
    for heading, columns, rows in tables(verification):
        lines += ["", f"## {heading}", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(_md(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}"
    "td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top;font-size:.9em}"
    "th{background:#f3f3f3}.PASS{color:#0a0;font-weight:bold}.FAIL{color:#c00;font-weight:bold}"
    ".OPEN,.NOT-RUN{color:#b60;font-weight:bold}.SIMULATED{color:#555}h2{margin-top:1.5em}"
    ".banner{display:inline-block;padding:.3em 1em;font-size:1.4em;font-weight:bold;color:#fff;background:#888}"
    ".banner.PASSED{background:#0a0}.banner.FAILED{background:#c00}.banner.INCOMPLETE{background:#b60}"
)


def html_page(verification: Verification) -> str:
    """One file, no scripts or outside resources: it can be attached to an e-mail as is."""
    heading = html.escape(title(verification))
    parts = [f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{heading}</title>'
             f"<style>{_STYLE}</style></head><body><h1>{heading}</h1><ul>"]  # fmt: skip
    outcome = _OUTCOMES.get(verification.outcome, verification.outcome.upper())
    parts.insert(1, "")
    parts[0] = parts[0].removesuffix("<ul>") + f'<p class="banner {outcome}">{outcome}</p><ul>'
    parts += [f"<li><b>{html.escape(name)}</b>: {html.escape(value)}</li>" for name, value in summary(verification)]
    parts.append("</ul>")
    for heading, columns, rows in tables(verification):
        parts.append(f"<h2>{html.escape(heading)}</h2><table><tr>")
        parts += [f"<th>{html.escape(column)}</th>" for column in columns]
        parts.append("</tr>")
        for row in rows:
            cells = "".join(_cell(cell) for cell in row)
            parts.append(f"<tr>{cells}</tr>")
        parts.append("</table>")
    parts.append("</body></html>\n")
    return "".join(parts)


def _cell(text: str) -> str:
    marked = f' class="{text.replace(" ", "-")}"' if text in ("PASS", "FAIL", "OPEN", "SIMULATED", "NOT RUN") else ""
    return f"<td{marked}>{html.escape(text)}</td>"


def _time(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] if value else "-"


def _parsed(text: str | None) -> datetime:
    try:
        return datetime.fromisoformat(text) if text else datetime.min.replace(tzinfo=UTC)
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)


def _yes(value: bool) -> str:
    return "yes" if value else "no"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
