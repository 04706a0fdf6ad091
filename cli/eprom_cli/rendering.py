r"""What the command prints: tables, JSON for scripts, progress, warnings and one-line errors.

Data is never markup (a "[/]" in a callback or a dead letter would crash the command, "[bold red]" would be
rendered), nor an emoji code: markup and emoji are off, styles are set by `style=`. Data never controls the terminal:
every control and format character in what is printed is shown escaped (`\x1b`, `\u202e`), so an orderReference of
`x\x1b]0;pwned\x07` cannot set the window's title, clear the screen or reorder the text; in a table cell or a line
about one thing, line breaks are escaped too. Lines are not wrapped: off a terminal (a pipe, a file, `2>file`) a
table is as wide as its widest row, whatever COLUMNS says; on a terminal tables still fit it. Every orderReference
shown is masked as national_id.redact masks text for display.
"""

import json
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, NoReturn

import typer
from eprom.message_item import MessageItem
from eprom.national_id import redact
from eprom.order_item import HistoryEntry, OrderItem
from rich.console import Console, ConsoleDimensions
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from eprom_cli import dead_letters, messages, orders, preflight, privacy, verify

# Off a terminal nothing is wrapped: a row is never cut into lines a script would read as two.
_UNBOUNDED_WIDTH = 1_000_000
# Characters that are not printable ASCII or a line break: checked one by one (most are letters such as ø).
_UNUSUAL = re.compile(r"[^\x20-\x7e\n]")
# Control (C0, C1, DEL), format (direction overrides, zero-width, soft hyphen), line and paragraph separators,
# surrogates (which a terminal's encoding cannot even write), private use and unassigned.
_NOT_SHOWN = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    return char.encode("unicode_escape").decode() if unicodedata.category(char) in _NOT_SHOWN else char


def shown(value: object, *, one_line: bool = True) -> str:
    r"""`value` as text the terminal shows as it is: its control and format characters escaped (`\x1b`, `\u202e`);
    line breaks too unless `one_line` is False."""
    text = _UNUSUAL.sub(_escaped, str(value))
    return text.replace("\n", "\\n") if one_line else text


def masked(reference: object) -> str:
    """An orderReference (or anything an operator typed as one) for display: what looks like a national id masked."""
    return shown(redact(str(reference), mask="*" * 11))


class _Console(Console):
    """rich's Console, escaping what it is given to print and never wrapping off a terminal."""

    def render_str(self, text: str, **options: Any) -> Text:
        return super().render_str(shown(text, one_line=False), **options)

    @property  # type: ignore[misc]  # read-only: nothing sets this console's size (rich's may be set)
    def size(self) -> ConsoleDimensions:
        # rich takes the width from COLUMNS, or from whichever standard stream is a terminal: `eprom ... | less`
        # would wrap at the terminal's width although this output is a pipe.
        return super().size if self.is_terminal else ConsoleDimensions(_UNBOUNDED_WIDTH, 25)


console = _Console(highlight=False, markup=False, emoji=False, soft_wrap=True)
errors = _Console(stderr=True, highlight=False, markup=False, emoji=False, soft_wrap=True)

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
    errors.print(Text.assemble(("error:", "red"), f" {shown(message)}"))
    raise typer.Exit(1)


def warn_personal_data(what: str) -> None:
    errors.print(PERSONAL_DATA_WARNING.format(what=what), style="yellow")


def print_json(value: Any) -> None:
    """As JSON, every character outside printable ASCII written as its escape (valid JSON, no control reaches the
    terminal); an item's orderReference masked."""
    console.print(json.dumps(value, default=_json_default, indent=2, ensure_ascii=True))


def _json_default(value: Any) -> Any:
    if isinstance(value, OrderItem):
        attributes = value.as_attributes()
        if "orderReference" in attributes:
            attributes["orderReference"] = redact(attributes["orderReference"], mask="*" * 11)
        return attributes
    return sorted(value) if isinstance(value, set) else str(value)


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]], *, fold: bool = False) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column, overflow="fold" if fold else "ellipsis")
    for row in rows:
        table.add_row(*(shown(cell) for cell in row))
    console.print(table)


def print_listing(rows: list[Any], *, as_json: bool, empty: str, table: Callable[[list[Any]], None]) -> None:
    """The rows as JSON (for scripts), else `empty` when there are none, else as `table` prints them."""
    if as_json:
        print_json(rows)
    elif not rows:
        console.print(empty)
    else:
        table(rows)


def print_invalid_order(order: orders.CheckedOrder | messages.CheckedMessage) -> None:
    what = "message" if isinstance(order, messages.CheckedMessage) else "order"
    errors.print(Text.assemble((shown(order.path), "red"), f" is not a valid {what}:"))
    for problem in (order.problem or "").split("; "):
        errors.print(f"  {shown(problem)}")


def print_item(item: OrderItem) -> None:
    """An order's attributes (by their names in the item), where its answers and signed document are, and its
    callbacks."""
    summary = Table(show_header=False, box=None)
    for field in _SHOWN_FIELDS:
        if (value := getattr(item, field)) is not None:
            summary.add_row(_attribute_name(field), masked(value) if field == "order_reference" else shown(value))
    for field in ("answers", "signed_document"):
        pointer = getattr(item, field)
        where = f"s3 key {pointer.key} (version {pointer.version_id})" if pointer else "none"
        summary.add_row(_attribute_name(field), shown(where))
    if item.expires_at is not None:
        summary.add_row(_attribute_name("expires_at"), datetime.fromtimestamp(item.expires_at, UTC).isoformat())
    console.print(summary)
    history = [_callback_row(entry) for entry in item.status_history]
    print_table("callbacks (statusHistory)", _HISTORY_COLUMNS, history)


def _attribute_name(field: str) -> str:
    return str(OrderItem.model_fields[field].alias)


def _callback_row(entry: HistoryEntry) -> tuple[str, ...]:
    return (*(str(getattr(entry, field) or "") for field in _HISTORY_FIELDS), "yes" if entry.answers_sha256 else "")


def print_message(item: MessageItem) -> None:
    """A message's attributes (by their names in the item) and ePROM's callbacks about it."""
    summary = Table(show_header=False, box=None)
    for name, value in item.as_attributes().items():
        if name not in ("statusHistory", "historyKeys"):
            summary.add_row(name, masked(value) if name in ("messageReference", "linkedReference") else shown(value))
    console.print(summary)
    rows = [(entry.received_at, entry.sent_status or "", entry.notification_channel or "")
            for entry in item.status_history]  # fmt: skip
    print_table("callbacks (statusHistory)", ("received", "sentStatus", "channel"), rows)


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
        per_class.add_row(name, shown(rejection_class), str(count))
    console.print(per_class)


def dead_letter(letter: dead_letters.DeadLetter) -> str:
    """A dead letter in one line: its queue, message id, reference (masked) and class."""
    return f"{letter.queue} {letter.message_id} {shown(letter.reference)} ({shown(letter.rejection_class)})"


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
    console.print(Text.assemble(mark, f" {shown(step.name)}: {shown(step.observed)}"))
    if step.next:
        console.print(f"     next: {shown(step.next)}")


def print_preflight(report: preflight.Report) -> None:
    for line in report.passed:
        console.print(Text.assemble(("ok", "green"), f"       {shown(line)}"))
    for line in report.notes:
        console.print(Text.assemble(("note", "yellow"), f"     {shown(line)}"))
    for line in report.problems:
        console.print(Text.assemble(("problem", "red"), f"  {shown(line)}"))


@contextmanager
def spinner(first: str, *, transient: bool = False) -> Iterator[Callable[[str], None]]:
    """A spinner with the time elapsed on standard error; yields the function that changes its text."""
    with Progress(SpinnerColumn(), TextColumn("{task.description}", markup=False), TimeElapsedColumn(),
                  console=errors, transient=transient) as bar:  # fmt: skip
        task = bar.add_task(shown(first), total=None)
        yield lambda text: bar.update(task, description=shown(text))


@contextmanager
def counter(description: str, total: int) -> Iterator[Callable[[], None]]:
    """A progress bar of `total` steps on standard error; yields the function that counts one."""
    with Progress(SpinnerColumn(), TextColumn("{task.description}", markup=False), console=errors) as bar:
        task = bar.add_task(shown(description), total=total)
        yield lambda: bar.advance(task)
