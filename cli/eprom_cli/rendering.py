"""What the command prints: tables, JSON for scripts, progress, warnings and one-line errors.

Data is never markup (a "[/]" in a callback or a dead letter would crash the command, "[bold red]" would be
rendered): markup is off, styles are set by `style=`. Lines are not wrapped (a script or `2>file` reads one line
per message); tables still fit the terminal.
"""

import json
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, NoReturn

import typer
from eprom.order_item import HistoryEntry, OrderItem
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from eprom_cli import orders, preflight, privacy, verify

console = Console(highlight=False, markup=False, soft_wrap=True)
errors = Console(stderr=True, highlight=False, markup=False, soft_wrap=True)

PERSONAL_DATA_WARNING = (
    "This shows personal health data ({what}). Use it only for the work you are doing now; this access to the "
    "table, bucket or secret is recorded by CloudTrail (with data events on for the bucket)."
)
_SHOWN_FIELDS = (
    "form_order_id", "order_reference", "form_id", "status", "status_error_code", "notification_channel",
    "preferred_notification_channel", "created_at", "placed_at", "updated_at", "single_use_code", "login_url",
)  # fmt: skip
_HISTORY_FIELDS = ("received_at", "status", "notification_channel", "status_error_code", "status_timestamp_utc")
_HISTORY_COLUMNS = ("received", "status", "channel", "error code", "ePROM time (UTC)", "answers")
_ORPHAN_COLUMNS = ("formOrderId", "status", "patient-initiated", "channel", "first callback", "last change")
_DEAD_LETTER_COLUMNS = ("queue", "class", "reference", "age (h)", "receives", "reason")


def fail(message: str) -> NoReturn:
    errors.print(Text.assemble(("error:", "red"), f" {message}"))
    raise typer.Exit(1)


def warn_personal_data(what: str) -> None:
    errors.print(PERSONAL_DATA_WARNING.format(what=what), style="yellow")


def print_json(value: Any) -> None:
    console.print_json(json.dumps(value, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, OrderItem):
        return value.as_attributes()
    return sorted(value) if isinstance(value, set) else str(value)


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]], *, fold: bool = False) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column, overflow="fold" if fold else "ellipsis")
    for row in rows:
        table.add_row(*row)
    console.print(table)


def print_listing(rows: list[Any], *, as_json: bool, empty: str, table: Callable[[list[Any]], None]) -> None:
    """The rows as JSON (for scripts), else `empty` when there are none, else as `table` prints them."""
    if as_json:
        print_json(rows)
    elif not rows:
        console.print(empty)
    else:
        table(rows)


def print_invalid_order(order: orders.CheckedOrder) -> None:
    errors.print(Text.assemble((str(order.path), "red"), " is not a valid order:"))
    for problem in (order.problem or "").split("; "):
        errors.print(f"  {problem}")


def print_item(item: OrderItem) -> None:
    """An order's attributes (by their names in the item), where its answers and signed document are, and its
    callbacks."""
    summary = Table(show_header=False, box=None)
    for field in _SHOWN_FIELDS:
        if getattr(item, field) is not None:
            summary.add_row(_attribute_name(field), str(getattr(item, field)))
    for field in ("answers", "signed_document"):
        pointer = getattr(item, field)
        summary.add_row(_attribute_name(field),
                        f"s3 key {pointer.key} (version {pointer.version_id})" if pointer else "none")  # fmt: skip
    if item.expires_at is not None:
        summary.add_row(_attribute_name("expires_at"), datetime.fromtimestamp(item.expires_at, UTC).isoformat())
    console.print(summary)
    history = [_callback_row(entry) for entry in item.status_history]
    print_table("callbacks (statusHistory)", _HISTORY_COLUMNS, history)


def _attribute_name(field: str) -> str:
    return str(OrderItem.model_fields[field].alias)


def _callback_row(entry: HistoryEntry) -> tuple[str, ...]:
    return (*(str(getattr(entry, field) or "") for field in _HISTORY_FIELDS), "yes" if entry.answers_sha256 else "")


def print_orphans(items: list[OrderItem]) -> None:
    rows = [(item.form_order_id, *("" if value is None else str(value) for value in (item.status,
             item.is_patient_initiated, item.notification_channel, item.created_at, item.updated_at)))
            for item in sorted(items, key=lambda item: str(item.created_at))]  # fmt: skip
    print_table(f"{len(items)} callback-only item(s)", _ORPHAN_COLUMNS, rows)


def print_dead_letters(summaries: list[dict[str, Any]]) -> None:
    """One row per dead letter (by queue, class, oldest first), then the number of messages per class."""
    ordered = sorted(summaries, key=lambda s: (s["queue"], s["rejectionClass"], -s["ageHours"]))
    rows = [(s["queue"], s["rejectionClass"], s["reference"], f"{s['ageHours']:.1f}", str(s["receiveCount"]),
             s["rejectionReason"]) for s in ordered]  # fmt: skip
    print_table(f"{len(summaries)} dead letter(s)", _DEAD_LETTER_COLUMNS, rows, fold=True)
    per_class = Table(title="per class")
    per_class.add_column("queue")
    per_class.add_column("class")
    per_class.add_column("messages", justify="right")
    for (name, rejection_class), count in sorted(Counter((s["queue"], s["rejectionClass"]) for s in summaries).items()):
        per_class.add_row(name, rejection_class, str(count))
    console.print(per_class)


_SETTING_FIELDS = ("pvkId", "name", "type", "status", "sequenceNumber", "createdDateTimeOffset",
                   "lastChangedDateTimeOffset")  # fmt: skip


def print_privacy_setting(person: str, setting: dict[str, Any]) -> None:
    for name, value in [("person", person), *((name, str(setting.get(name))) for name in _SETTING_FIELDS)]:
        console.print(f" {name:<26} {value}")


def print_residents(residents: list[dict[str, Any]], *, reveal: bool) -> None:
    rows = [(privacy.masked(str(resident.get("nationalId")), reveal=reveal), str(resident.get("sequenceNumber")),
             str(resident.get("lastChangedDateTimeOffset"))) for resident in residents]  # fmt: skip
    print_table(f"the first {len(rows)}", ("nationalId", "sequenceNumber", "last changed"), rows)


def print_step(step: verify.Step) -> None:
    mark = ("PASS", "green") if step.passed else ("FAIL", "red")
    console.print(Text.assemble(mark, f" {step.name}: {step.observed}"))


def print_preflight(report: preflight.Report) -> None:
    for line in report.passed:
        console.print(Text.assemble(("ok", "green"), f"       {line}"))
    for line in report.notes:
        console.print(Text.assemble(("note", "yellow"), f"     {line}"))
    for line in report.problems:
        console.print(Text.assemble(("problem", "red"), f"  {line}"))


@contextmanager
def spinner(first: str, *, transient: bool = False) -> Iterator[Callable[[str], None]]:
    """A spinner with the time elapsed on standard error; yields the function that changes its text."""
    with Progress(SpinnerColumn(), TextColumn("{task.description}", markup=False), TimeElapsedColumn(),
                  console=errors, transient=transient) as bar:  # fmt: skip
        task = bar.add_task(first, total=None)
        yield lambda text: bar.update(task, description=text)


@contextmanager
def counter(description: str, total: int) -> Iterator[Callable[[], None]]:
    """A progress bar of `total` steps on standard error; yields the function that counts one."""
    with Progress(SpinnerColumn(), TextColumn("{task.description}", markup=False), console=errors) as bar:
        task = bar.add_task(description, total=total)
        yield lambda: bar.advance(task)
