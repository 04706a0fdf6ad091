"""`eprom`: the operator's command for a deployed stack (--stack NAME) or the local one (--local)."""

import getpass
import json
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from botocore.exceptions import BotoCoreError, ClientError
from eprom.api_key import UNSENDABLE_API_KEY, ApiKeyConfigurationError, is_sendable, parse_api_keys
from eprom.order_item import OrderItem
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from eprom_cli import dead_letters, orders, preflight, report, verify
from eprom_cli.files import FileRefused, directory_for_files, write_private
from eprom_cli.target import Target, TargetError, deployed_stack, local_stack

# Data is never markup (a "[/]" in a callback or a dead letter would crash the command, "[bold red]" would be
# rendered): markup is off, styles are set by `style=`. Lines are not wrapped (a script or `2>file` reads one line
# per message); tables still fit the terminal.
console = Console(highlight=False, markup=False, soft_wrap=True)
errors = Console(stderr=True, highlight=False, markup=False, soft_wrap=True)

# Hemit's verification person (eprom-contract §6); test stages only (smoke refuses prod).
TEST_PERSON_NATIONAL_ID = verify.VERIFICATION_PERSON
PERSONAL_DATA_WARNING = (
    "This shows personal health data ({what}). Use it only for the work you are doing now; this access to the "
    "table, bucket or secret is recorded by CloudTrail (with data events on for the bucket)."
)


class _OneLineErrors(TyperGroup):
    """AWS errors (a queue or table missing, no permission, no credentials) and files not written as one line and
    exit 1, never a traceback."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ClientError as error:
            detail = error.response.get("Error", {})
            _fail(f"AWS refused: {detail.get('Code', '?')}: {detail.get('Message', '')}")
        except BotoCoreError as error:
            _fail(f"cannot reach AWS: {error}")
        except FileRefused as error:
            _fail(str(error))


class _NoEchoOfArguments(_OneLineErrors):
    """`eprom api-key THE-KEY` by mistake: click's "No such command 'THE-KEY'" would print the key."""

    def resolve_command(self, ctx: typer.Context, args: list[str]) -> Any:
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            _fail(f"no such command (what was given is not repeated: it may be a key); the commands: "
                  f"{', '.join(self.commands)}")  # fmt: skip
        return super().resolve_command(ctx, args)


def _app(help_text: str, cls: type[TyperGroup] = _OneLineErrors) -> typer.Typer:
    return typer.Typer(
        help=help_text, cls=cls, no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False
    )


app = _app(
    "Operate the ePROM integration: look up orders, handle the dead-letter queues, set the ApiKey, smoke-test a "
    "stage and verify it with Hemit. Choose the stack with --stack NAME (a deployed one; region from your profile or "
    "--region) or --local (the stack `make serve` runs)."
)
orders_app = _app("Send orders, look them up by orderReference, list callback-only items, download results.")
dead_letters_app = _app(
    "The order DLQ (refused, retries exhausted, ambiguous) and the signed-document DLQ: list, redrive, export."
)
api_key_app = _app("The ePROM ApiKey in Secrets Manager.", cls=_NoEchoOfArguments)
app.add_typer(orders_app, name="orders")
app.add_typer(dead_letters_app, name="dead-letters")
app.add_typer(api_key_app, name="api-key")


@dataclass(frozen=True)
class _Choice:
    stack: str | None
    local: bool
    region: str | None
    profile: str | None


@app.callback()
def choose_target(
    ctx: typer.Context,
    stack: Annotated[str | None, typer.Option(help="The deployed stack's name, e.g. eprom-integration-qa.")] = None,
    local: Annotated[bool, typer.Option("--local", help="The local stack of `make serve`.")] = False,
    region: Annotated[str | None, typer.Option(help="AWS region of --stack (default: your profile's).")] = None,
    profile: Annotated[str | None, typer.Option(help="AWS profile for --stack.")] = None,
) -> None:
    ctx.obj = _Choice(stack, local, region, profile)


def _target(ctx: typer.Context) -> Target:
    choice: _Choice = ctx.find_root().obj
    if bool(choice.stack) == choice.local:
        _fail("choose the stack: --stack NAME or --local (before the command, e.g. `eprom --local orders ...`)")
    try:
        return local_stack() if choice.local else deployed_stack(choice.stack, region=choice.region,
                                                                   profile=choice.profile)  # fmt: skip
    except TargetError as error:
        _fail(str(error))


def _fail(message: str) -> NoReturn:
    errors.print(Text.assemble(("error:", "red"), f" {message}"))
    raise typer.Exit(1)


def _warn_personal_data(what: str) -> None:
    errors.print(PERSONAL_DATA_WARNING.format(what=what), style="yellow")


# --- orders ---------------------------------------------------------------------------------------------------------


@orders_app.command("send")
def send_orders(
    ctx: typer.Context,
    files: Annotated[list[Path], typer.Argument(help="Order messages: JSON files shaped like events/orders/*.json.")],
    skip_invalid: Annotated[bool, typer.Option(help="Send the valid ones even if some are invalid.")] = False,
) -> None:
    """Check each order with the placer's own model and the stage's settings, then send them to OrderQueue.
    Nothing is sent if any is invalid, unless --skip-invalid."""
    target = _target(ctx)
    checked = [orders.check(path, target) for path in files]
    invalid = [order for order in checked if order.problem]
    for order in invalid:
        errors.print(Text.assemble((str(order.path), "red"), " is not a valid order:"))
        for problem in order.problem.split("; "):
            errors.print(f"  {problem}")
    if invalid and not skip_invalid:
        _fail(f"{len(invalid)} of {len(checked)} files invalid: nothing sent (--skip-invalid sends the others)")
    for order in checked:
        if not order.problem:
            message_id = orders.send(target, order)
            console.print(f"sent {order.path} (orderReference {order.order_reference}) "
                          f"as message {message_id}")  # fmt: skip
    if invalid:
        console.print(f"skipped {len(invalid)} invalid file(s)")
    if invalid and len(invalid) == len(checked):
        _fail(f"all {len(checked)} files invalid: nothing sent")


@orders_app.command("show")
def show_order(
    ctx: typer.Context,
    order_reference: Annotated[str, typer.Argument(help="The orderReference upstream gave the order.")],
    reveal: Annotated[bool, typer.Option(help="Also show the single-use code, login URL and the answers.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="The item(s) as JSON, for scripts.")] = False,
) -> None:
    """An order's formOrderId, status and its history of callbacks, channel, where its answers and signed document
    are stored. No personal data unless --reveal."""
    target = _target(ctx)
    items = orders.items_of(target, order_reference)
    if not items:
        _fail(f"no order with orderReference {order_reference} in {target.name} (placed orders only; see the DLQs)")
    if reveal:
        _warn_personal_data("single-use codes, login URLs and form answers")
    shown = items if reveal else [item.without_personal_data() for item in items]
    if as_json:
        _print_items_json(shown)
        return
    for item in shown:
        _print_item(item)
        if reveal and item.answers is not None:
            console.print("answers:", markup=False)
            console.print(orders.pretty_answers(orders.stored_object(target, item.answers)), markup=False)


_SHOWN_FIELDS = (
    "form_order_id", "order_reference", "form_id", "status", "status_error_code", "notification_channel",
    "preferred_notification_channel", "created_at", "placed_at", "updated_at", "single_use_code", "login_url",
)  # fmt: skip


def _attribute_name(field: str) -> str:
    return str(OrderItem.model_fields[field].alias)


def _print_item(item: OrderItem) -> None:
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
    history = Table(title="callbacks (statusHistory)")
    for column in ("received", "status", "channel", "error code", "ePROM time (UTC)", "answers"):
        history.add_column(column)
    for entry in item.status_history:
        history.add_row(*(str(value or "") for value in (entry.received_at, entry.status, entry.notification_channel,
                                                         entry.status_error_code, entry.status_timestamp_utc)),
                        "yes" if entry.answers_sha256 else "")  # fmt: skip
    console.print(history)


def _print_items_json(items: list[OrderItem]) -> None:
    console.print_json(json.dumps([item.as_attributes() for item in items], default=_json_default))


def _json_default(value: Any) -> Any:
    return sorted(value) if isinstance(value, set) else str(value)


@orders_app.command("orphans")
def orphan_items(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="As JSON, for scripts.")] = False,
) -> None:
    """Items that exist only through ePROM's callbacks (no orderReference): patient-initiated forms, or an order
    whose answer was lost in an ambiguous attempt. Compare their times with the parked Ambiguous dead letters."""
    target = _target(ctx)
    found = [item.without_personal_data() for item in orders.store(target).callback_only_items()]
    if as_json:
        _print_items_json(found)
        return
    if not found:
        console.print("no callback-only items")
        return
    table = Table(title=f"{len(found)} callback-only item(s)")
    for column in ("formOrderId", "status", "patient-initiated", "channel", "first callback", "last change"):
        table.add_column(column)
    for item in sorted(found, key=lambda item: str(item.created_at)):
        shown = (item.status, item.is_patient_initiated, item.notification_channel, item.created_at, item.updated_at)
        table.add_row(item.form_order_id, *("" if value is None else str(value) for value in shown))
    console.print(table)


@orders_app.command("answers")
def download_answers(
    ctx: typer.Context,
    order_reference: Annotated[str, typer.Argument(help="The orderReference upstream gave the order.")],
    out: Annotated[Path, typer.Option(help="Directory for {formOrderId}-answers.json and -signed.pdf.")],
) -> None:
    """Download an order's answers (JSON) and signed PDF: an explicit export of personal data, readable only by
    you (file mode 600)."""
    target = _target(ctx)
    items = orders.items_of(target, order_reference)
    if not items:
        _fail(f"no order with orderReference {order_reference} in {target.name}")
    _warn_personal_data("form answers and signed documents")
    written = [path for item in items for path in orders.download_results(target, item, out)]
    if not written:
        _fail(f"order {order_reference} has no answers or signed document yet")
    for path in written:
        console.print(f"wrote {path}")


# --- dead letters ---------------------------------------------------------------------------------------------------


class Queue(StrEnum):
    orders = "orders"  # OrderDeadLetterQueue
    documents = "documents"  # SignedDocumentDeadLetterQueue
    all = "all"


QueueChoice = Annotated[Queue, typer.Option(help="orders: the order DLQ; documents: the signed-document DLQ.")]
ClassChoice = Annotated[str | None, typer.Option("--class", help="Only this rejectionClass, e.g. RefusedByEprom.")]
ReferenceChoice = Annotated[str | None, typer.Option("--reference", help="Only this orderReference (or formOrderId).")]


@dead_letters_app.command("list")
def list_dead_letters(
    ctx: typer.Context,
    queue: QueueChoice = Queue.all,
    as_json: Annotated[bool, typer.Option("--json", help="As JSON, for scripts.")] = False,
) -> None:
    """Every dead letter with its class, reason, orderReference, age and receive count, and the counts per class.
    Reading does not remove them (they are let go again at once)."""
    target = _target(ctx)
    now = datetime.now(UTC)
    with dead_letters.held(target, queue.value) as letters:
        summaries = [letter.summary(now) for letter in letters]
    if as_json:
        console.print_json(json.dumps(summaries))
        return
    if not summaries:
        console.print("no dead letters")
        return
    table = Table(title=f"{len(summaries)} dead letter(s)")
    for column in ("queue", "class", "reference", "age (h)", "receives", "reason"):
        table.add_column(column, overflow="fold")
    for summary in sorted(summaries, key=lambda s: (s["queue"], s["rejectionClass"], -s["ageHours"])):
        age, receives = f"{summary['ageHours']:.1f}", str(summary["receiveCount"])
        table.add_row(summary["queue"], summary["rejectionClass"], summary["reference"], age, receives,
                      summary["rejectionReason"])  # fmt: skip
    console.print(table)
    counts = Table(title="per class")
    counts.add_column("queue")
    counts.add_column("class")
    counts.add_column("messages", justify="right")
    for (name, rejection_class), count in sorted(_counts(summaries).items()):
        counts.add_row(name, rejection_class, str(count))
    console.print(counts)


def _counts(summaries: list[dict[str, Any]]) -> dict[tuple[str, str], int]:
    counts: dict[tuple[str, str], int] = {}
    for summary in summaries:
        key = (summary["queue"], summary["rejectionClass"])
        counts[key] = counts.get(key, 0) + 1
    return counts


@dead_letters_app.command("redrive")
def redrive_dead_letters(
    ctx: typer.Context,
    queue: QueueChoice = Queue.orders,
    rejection_class: ClassChoice = None,
    reference: ReferenceChoice = None,
    dry_run: Annotated[bool, typer.Option(help="Show what would be sent back; change nothing.")] = False,
) -> None:
    """Send dead letters back to their source queue (with their attributes), deleting each from the DLQ only after
    it was sent. Copies of one message are sent once (the newest), the others deleted after it. Fix the cause
    first; an Ambiguous one only after ePROM Admin shows no such order."""
    target = _target(ctx)
    with dead_letters.held(target, queue.value) as letters:
        picked, copies = dead_letters.newest_per_order(dead_letters.chosen(letters, rejection_class, reference))
        if not picked:
            _fail("no dead letters match" if letters else "the dead-letter queue is empty")
        if dry_run:
            for letter in picked:
                console.print(f"would redrive {letter.queue} {letter.message_id} {letter.reference} "
                              f"({letter.rejection_class})")  # fmt: skip
            console.print(f"{len(picked)} would be sent back and {len(copies)} older copies of them deleted; "
                          "nothing changed (--dry-run)")  # fmt: skip
            return
        with Progress(SpinnerColumn(), TextColumn("{task.description}", markup=False), console=errors) as progress:
            task = progress.add_task("redriving", total=len(picked) + len(copies))
            for letter in picked:
                dead_letters.redrive(target, letter)
                progress.advance(task)
            for copy in copies:  # only after every letter was sent back
                dead_letters.delete(target, copy)
                progress.advance(task)
    console.print(f"sent {len(picked)} dead letter(s) back to their queue; deleted {len(copies)} older copies of them")


@dead_letters_app.command("export")
def export_dead_letters(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(help="Directory for one {orderReference}.{messageId}.json per message.")],
    queue: QueueChoice = Queue.orders,
    rejection_class: ClassChoice = None,
    reference: ReferenceChoice = None,
    delete: Annotated[bool, typer.Option(help="Delete them from the DLQ once written.")] = False,
) -> None:
    """Write dead letters' bodies to files (mode 600: they hold national ids) to fix and `orders send` again."""
    target = _target(ctx)
    _warn_personal_data("order messages with national ids")
    directory_for_files(out)
    with dead_letters.held(target, queue.value) as letters:
        picked = dead_letters.chosen(letters, rejection_class, reference)
        if not picked:
            _fail("no dead letters match" if letters else "the dead-letter queue is empty")
        for letter in picked:
            path = out / dead_letters.export_file_name(letter)
            write_private(path, letter.body.encode())
            console.print(f"wrote {path} ({letter.rejection_class}: {letter.reason})")
            if delete:
                dead_letters.delete(target, letter)
    if delete:
        console.print(f"deleted {len(picked)} from the dead-letter queue")


# --- ApiKey ---------------------------------------------------------------------------------------------------------


@api_key_app.command("set")
def set_api_key(
    ctx: typer.Context,
    on_command_line: Annotated[str | None, typer.Argument(hidden=True, metavar="", show_default=False)] = None,
) -> None:
    """Put the first ApiKey Hemit sent into the secret (read from standard input, never from the command line),
    replacing the placeholder the deploy generated; no previous key is kept. Later keys: `api-key rotate`."""
    if on_command_line is not None:  # never echoed: it is (most likely) the key
        _fail("the ApiKey is read from standard input, never from the command line (that stays in your shell history "
              "and the process list): `eprom ... api-key set < key.txt`, or type it at the prompt")  # fmt: skip
    target = _target(ctx)
    new = _read_new_key()
    secrets = target.client("secretsmanager")
    secrets.put_secret_value(SecretId=target.secret_id, SecretString=json.dumps({"apiKey": new, "previousApiKeys": []}))
    console.print("the ApiKey is set (no previous key kept); the functions read it within 5 minutes, the placer at "
                  "once after a 401: next, `eprom smoke`")  # fmt: skip


# Arguments are taken in, not refused by the parser: its usage error would print them, and one may be the key.
@api_key_app.command("rotate", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def rotate_api_key(
    ctx: typer.Context,
    drop_previous: Annotated[bool, typer.Option(help="End the window: accept only the current key.")] = False,
) -> None:
    """Put a new ApiKey (read from standard input, never from the command line) into the secret; the current one
    moves to previousApiKeys, so callbacks signed with either keep working until --drop-previous."""
    if ctx.args:
        _fail("the new ApiKey is read from standard input, never from the command line; nothing changed (if you "
              "gave the key as an argument, it is in your shell history now)")  # fmt: skip
    target = _target(ctx)
    secrets = target.client("secretsmanager")
    try:  # the functions' own reading of the secret, so the command accepts exactly what they do
        keys = parse_api_keys(secrets.get_secret_value(SecretId=target.secret_id)["SecretString"],
                              secret_id=target.secret_id)  # fmt: skip
    except ApiKeyConfigurationError as error:
        _fail(str(error))  # names the secret, never its value
    current, previous = keys.current, list(keys.previous)
    if drop_previous:
        value = {"apiKey": current, "previousApiKeys": []}
        message = (f"dropped {len(previous)} previous key(s): callbacks with them are refused once the functions' "
                   "cached copy of the secret expires (at most 5 minutes)")  # fmt: skip
    else:
        new = _read_new_key()
        if new == current:
            _fail("that is the current ApiKey already; nothing changed")
        kept = [key for key in [current, *previous] if key != new]
        value = {"apiKey": new, "previousApiKeys": kept}
        message = (f"the new ApiKey is current; {len(kept)} previous key(s) are still accepted on callbacks until "
                   f"`eprom api-key rotate --drop-previous` (once ePROM sends the new one)")  # fmt: skip
    secrets.put_secret_value(SecretId=target.secret_id, SecretString=json.dumps(value))
    console.print(message)


def _read_new_key() -> str:
    new = getpass.getpass("new ApiKey: ") if sys.stdin.isatty() else sys.stdin.readline()
    new = new.strip()
    if not new:
        _fail("no usable ApiKey on standard input (one line, no spaces)")
    if not is_sendable(new):
        _fail(f"the ApiKey on standard input {UNSENDABLE_API_KEY}; nothing changed (ePROM Admin's keys are ASCII)")
    return new


# --- smoke test -----------------------------------------------------------------------------------------------------


@app.command()
def smoke(
    ctx: typer.Context,
    form_id: Annotated[str, typer.Option(help="A published formId of your ordering system in ePROM.")],
    national_id: Annotated[str, typer.Option(help="The test patient (default: Hemit's verification person).")] = (
        TEST_PERSON_NATIONAL_ID
    ),
    timeout: Annotated[int, typer.Option(help="Seconds to wait for ePROM's Ordered callback.")] = 180,
) -> None:
    """After a deploy: send one test order, wait for ePROM's Ordered callback, and show the ApiBaseUrl to register
    with Hemit. Exit 0 when the order reached Ordered, 1 otherwise. Refused against a prod stage. One order per
    stack, form and day (orderReference smoke-DATE-FORM): a re-run the same day shows that order again instead of
    ordering twice for the test person."""
    target = _target(ctx)
    if target.is_production:
        _fail("smoke sends a test order and is refused against a prod stage: verify prod with Hemit instead")
    reference = f"smoke-{datetime.now(UTC):%Y%m%d}-{form_id[:8]}"
    if earlier := orders.items_of(target, reference):
        console.print(f"already placed today as {earlier[0].form_order_id} (orderReference {reference}): "
                      "not ordered again")  # fmt: skip
    else:
        # The same body all day: a message still being retried (a 401, say) and this one are one order to the placer
        # (one idempotency key; placed once per orderReference), never two.
        expiry = (datetime.now(UTC) + timedelta(days=7)).replace(hour=23, minute=59, second=59, microsecond=0)
        body = {"orderReference": reference, "formId": form_id, "nationalId": national_id,
                "expiryDate": expiry.isoformat(), "metadata": {"orderReference": reference}}  # fmt: skip
        order = orders.check_body(json.dumps(body), target)
        if order.problem:
            _fail(f"the test order is not valid: {order.problem}")
        orders.send(target, order)
        console.print(f"sent test order {reference} for form {form_id} to {target.name}")
    outcome = _wait_for_ordered(target, reference, timeout)
    console.print(f"ApiBaseUrl to register with Hemit: {target.api_base_url}")
    if outcome != "Ordered":
        _fail(outcome)
    console.print("ePROM accepted the order and called back: Ordered", style="green")


def _wait_for_ordered(target: Target, reference: str, timeout: int) -> str:
    """'Ordered' once the callback came (or a later status), else what went wrong: not placed (refused, or ePROM
    did not take it) or placed with no callback yet."""
    deadline, placed_as = time.monotonic() + timeout, None
    with Progress(SpinnerColumn(), TextColumn("{task.description}", markup=False), TimeElapsedColumn(),
                  console=errors) as progress:  # fmt: skip
        task = progress.add_task("waiting for the order to be placed", total=None)
        while time.monotonic() < deadline:
            for item in orders.items_of(target, reference):
                if item.status == "Error":
                    return f"ePROM could not reach the patient: Error ({item.status_error_code})"
                if item.status not in (None, "Placed"):
                    return "Ordered"
                placed_as = item.form_order_id
                progress.update(task, description=f"placed as {item.form_order_id}; waiting for ePROM's callback")
            with dead_letters.held(target, "orders") as letters:
                [refused] = dead_letters.chosen(letters, None, reference) or [None]
            if refused is not None:
                return f"the order was refused ({refused.rejection_class}): {refused.reason}"
            time.sleep(2)
    if placed_as:
        return (f"placed as {placed_as}, no callback yet after {timeout} s: is the ApiBaseUrl registered with Hemit, "
                "and the key set in both places? (re-run smoke later: it looks at this order again)")  # fmt: skip
    return (f"not placed within {timeout} s: ePROM did not take the order (a 401: the ApiKey is not set or not "
            "Hemit's; the network; ePROM down) and the placer retries it for 24 h; fix the cause and re-run smoke "
            "(the same order, never a second one)")  # fmt: skip


# --- Hemit's verification and onboarding ----------------------------------------------------------------------------


@app.command("verify")
def verify_integration(
    ctx: typer.Context,
    form_id: Annotated[str | None, typer.Option(help="A published formId to order (required unless --resume).")] = None,
    signed_form_id: Annotated[str | None, typer.Option(help="A formId to order with mustBeSigned (signing).")] = None,
    on_behalf_of: Annotated[str | None, typer.Option(help="A test person: also order --form-id on their behalf.")] = (
        None
    ),
    national_id: Annotated[str, typer.Option(help="The person who fills (default: Hemit's verification person).")] = (
        TEST_PERSON_NATIONAL_ID
    ),
    expected_channel: Annotated[str, typer.Option(help="The notificationChannel the orders must get.")] = "Helsenorge",
    report_dir: Annotated[Path, typer.Option(help="Where the reports (and the state while waiting) go.")] = Path(
        "verification"
    ),
    resume: Annotated[bool, typer.Option(help="Continue the verification waiting in --report-dir.")] = False,
    timeout: Annotated[int, typer.Option(help="Seconds to wait for the orders to reach Ordered.")] = 300,
    wait_hours: Annotated[float, typer.Option(help="Hours to wait for the person before pausing (exit 3).")] = 2.0,
    simulated_person: Annotated[bool, typer.Option(help="--local: the simulator fills and signs the forms.")] = True,
) -> None:
    """Hemit's go-live verification as steps: orders placed once and Ordered on the expected channel; the person
    fills (and signs) them on Helsenorge (test); answers stored, FormReturned delivered, the signed PDF stored,
    no duplicate callbacks or events. Writes Markdown, HTML and JSON reports (no national ids, codes or answers).
    Exit 0 passed, 1 a step failed (named), 3 still waiting for the person (`--resume` continues)."""
    target = _target(ctx)
    state_file = report_dir / f"{target.name}-in-progress.json"
    try:
        if resume:
            if not state_file.exists():
                _fail(f"no verification waiting in {state_file}")
            verification = verify.load(state_file)
        else:
            if state_file.exists():
                _fail(f"a verification is waiting in {state_file}: continue it with --resume (or delete the file)")
            if not form_id:
                _fail("give --form-id (a published form of your ordering system)")
            verification = verify.new_verification(target, form_id, signed_form_id, on_behalf_of is not None,
                                                   expected_channel)  # fmt: skip
            verify.send_orders(target, verification, national_id, on_behalf_of)
            verify.save(verification, state_file)
            console.print(f"verification {verification.run_id} against {target.name} "
                          f"({verification.environment.name}): sent {len(verification.cases)} order(s)")  # fmt: skip
    except verify.VerificationRefused as refused:
        _fail(str(refused))
    checks = verify.Checks(target, verification, record=_print_step)
    resume_hint = f"the state is kept in {state_file}: continue with `eprom ... verify --resume`"
    with Progress(SpinnerColumn(), TextColumn("{task.description}", markup=False), TimeElapsedColumn(),
                  console=errors, transient=True) as bar:  # fmt: skip
        task = bar.add_task("waiting for the orders to be placed", total=None)
        try:
            verify.run(checks, state_file, person=national_id, timeout=timeout, wait=wait_hours * 3600,
                       simulated_person=simulated_person, say=lambda text: console.print(text, markup=False),
                       progress=lambda text: bar.update(task, description=text))  # fmt: skip
        except KeyboardInterrupt:
            console.print(f"stopped; {resume_hint}")
            raise typer.Exit(3) from None
    if verification.outcome == "waiting":
        console.print(f"still waiting for the person after {wait_hours:g} h; {resume_hint}")
        raise typer.Exit(3)
    written = report.write(verification, report_dir)
    state_file.unlink(missing_ok=True)
    for path in written:
        console.print(f"wrote {path}")
    if verification.outcome != "passed":
        _fail(f"verification failed at step {verification.steps[-1].name!r}: {verification.steps[-1].observed}")
    console.print(f"verification passed: {len(verification.steps)} steps", style="green")


def _print_step(step: verify.Step) -> None:
    mark = ("PASS", "green") if step.passed else ("FAIL", "red")
    console.print(Text.assemble(mark, f" {step.name}: {step.observed}"))


@app.command()
def onboarding(
    ctx: typer.Context,
    system_name: Annotated[str, typer.Option(prompt=True, help="Your ordering system's name, as Hemit lists it.")],
    contact_name: Annotated[str, typer.Option(prompt=True, help="Technical contact (mandatory): name.")],
    contact_email: Annotated[str, typer.Option(prompt=True, help="Technical contact: e-mail.")],
    contact_phone: Annotated[str, typer.Option(prompt=True, help="Technical contact: phone.")],
    patient_phone: Annotated[str, typer.Option(prompt=True, help="The phone number shown to patients.")],
    description: Annotated[str, typer.Option(prompt=True, help="What the system orders: forms and/or letters.")] = (
        "Ordering of forms (PROM questionnaires) for a health registry"
    ),
) -> None:
    """Print the onboarding e-mail for Hemit, filled from the stack's outputs (the ApiBaseUrl of the callback
    endpoint): Hemit answers with the ApiKey, which `eprom api-key set` stores."""
    target = _target(ctx)
    environment = f" ({target.eprom_api_base_url})" if target.eprom_api_base_url else ""
    console.print(
        f"""To: Hemit (ePROM)
Subject: New ordering system for ePROM: {system_name}

Hello,

we would like to connect a new ordering system (bestillersystem) to ePROM{environment}.

  System name:          {system_name}
  ApiBaseUrl:           {target.api_base_url}
  Description:          {description}
  Technical contact:    {contact_name}, {contact_email}, {contact_phone}
  Phone shown to patients: {patient_phone}

ePROM calls back PUT {{ApiBaseUrl}}/api/PromsFormOrder. Please send us the ApiKey for the system.
""",
        markup=False,
    )


# --- before a deploy ------------------------------------------------------------------------------------------------


@app.command("preflight")
def preflight_command(
    ctx: typer.Context,
    stage: Annotated[str, typer.Option(help="The stage: a section of samconfig.toml (dev, test, qa, prod).")],
    parameter: Annotated[
        list[str] | None, typer.Option("--parameter", "-p", help="Key=Value merged into the stage's parameters.")
    ] = None,
) -> None:
    """Before a deploy: check what the stage needs from the AWS account (credentials, EEA region, the stack's state,
    sam's artefact bucket, API Gateway's logging role, Lambda concurrency, the stage's parameters). One line per
    check; exit 1 when something must be fixed first. Needs no stack: run it before the first deploy."""
    try:
        chosen = preflight.load_stage(stage, preflight.parse_parameters(" ".join(parameter or [])))
    except preflight.StageError as error:
        _fail(str(error))
    choice: _Choice = ctx.find_root().obj
    report = preflight.preflight(chosen, preflight.session_for(choice.profile))
    print_preflight(report)
    if report.problems:
        raise typer.Exit(1)


def print_preflight(report: preflight.Report) -> None:
    for line in report.passed:
        console.print(Text.assemble(("ok", "green"), f"       {line}"))
    for line in report.notes:
        console.print(Text.assemble(("note", "yellow"), f"     {line}"))
    for line in report.problems:
        console.print(Text.assemble(("problem", "red"), f"  {line}"))


def main() -> None:
    app()
