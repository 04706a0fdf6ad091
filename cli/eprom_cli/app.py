"""`eprom`: the operator's command for a deployed stack (--stack NAME) or the local one (--local).

The commands, their options and what they print; what they do is in the modules named after them, the output
in `rendering`.
"""

import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from botocore.exceptions import BotoCoreError, ClientError
from eprom.api_key import ApiKeyConfigurationError
from typer.core import TyperGroup

from eprom_cli import (
    adoption,
    api_key_rotation,
    dead_letters,
    messages,
    onboarding,
    orders,
    outcomes,
    preflight,
    privacy,
    rendering,
    report,
    smoke,
    verify,
)
from eprom_cli.files import FileRefused, directory_for_files, write_private
from eprom_cli.rendering import console, fail, warn_personal_data
from eprom_cli.target import Target, TargetError, deployed_stack, local_stack

# Hemit's verification person (eprom-contract §6); test stages only (smoke refuses prod).
TEST_PERSON_NATIONAL_ID = verify.VERIFICATION_PERSON
# Why a command did nothing (more), each said in one line that names no key or national id: exit 1.
_REFUSALS = (
    FileRefused,
    TargetError,
    preflight.StageError,
    verify.VerificationRefused,
    api_key_rotation.KeyRefused,
    ApiKeyConfigurationError,
    smoke.SmokeRefused,
    adoption.AdoptionRefused,
    onboarding.OnboardingRefused,
    privacy.PrivacyRefused,
)


class _OneLineErrors(TyperGroup):
    """AWS errors (a queue or table missing, no permission, no credentials) and refusals as one line and exit 1,
    never a traceback."""

    # typer's base names the Context of the click it vendors (typer._click, private); it passes a typer.Context.
    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except ClientError as error:
            detail = error.response.get("Error", {})
            fail(f"AWS refused: {detail.get('Code', '?')}: {detail.get('Message', '')}")
        except BotoCoreError as error:
            fail(f"cannot reach AWS: {error}")
        except _REFUSALS as error:
            fail(str(error))


class _NoEchoOfArguments(_OneLineErrors):
    """`eprom api-key THE-KEY` by mistake: click's "No such command 'THE-KEY'" would print the key."""

    def resolve_command(self, ctx: typer.Context, args: list[str]) -> Any:  # type: ignore[override]  # as invoke
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            fail(f"no such command (what was given is not repeated: it may be a key); the commands: "
                 f"{', '.join(self.commands)}")  # fmt: skip
        return super().resolve_command(ctx, args)


def _app(help_text: str, cls: type[TyperGroup] = _OneLineErrors) -> typer.Typer:
    return typer.Typer(
        help=help_text, cls=cls, no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False
    )


app = _app(
    "Operate the ePROM integration: look up orders, handle the dead-letter queues, set the ApiKey, smoke-test a "
    "stage and verify it with Hemit. Choose the stack with --stage NAME (a stage of samconfig.toml: its stack and "
    "region), --stack NAME (a deployed stack) or --local (the stack `make serve` runs)."
)
orders_app = _app("Send orders, look them up by orderReference, list callback-only items, download results.")
dead_letters_app = _app(
    "The order DLQ (refused, retries exhausted, ambiguous) and the signed-document DLQ: list, redrive, export."
)
api_key_app = _app("The ePROM ApiKey in Secrets Manager.", cls=_NoEchoOfArguments)
outcomes_app = _app("Outcome events upstream missed: re-published from the table, or redriven from their DLQ.")
app.add_typer(orders_app, name="orders")
app.add_typer(outcomes_app, name="outcomes")
app.add_typer(dead_letters_app, name="dead-letters")
app.add_typer(api_key_app, name="api-key")
messages_app = _app("Letters, SMS and e-mail to citizens: send them, look them up by messageReference.")
app.add_typer(messages_app, name="messages")
privacy_app = _app("Privacy settings (PVK): a person's reservation or consent, a definition's residents.")
app.add_typer(privacy_app, name="privacy")


@dataclass(frozen=True)
class _Choice:
    stack: str | None
    stage: str | None
    local: bool
    region: str | None
    profile: str | None

    def option(self) -> str:
        """How the command was pointed at its stack, to repeat in a hint (`--stage test`)."""
        if self.local:
            return "--local"
        return f"--stage {self.stage}" if self.stage else f"--stack {self.stack}"


@app.callback()
def choose_target(
    ctx: typer.Context,
    stage: Annotated[
        str | None, typer.Option(help="The stage of samconfig.toml (dev, test, qa, prod): its stack name and region.")
    ] = None,
    stack: Annotated[str | None, typer.Option(help="The deployed stack's name, e.g. eprom-integration-qa.")] = None,
    local: Annotated[bool, typer.Option("--local", help="The local stack of `make serve`.")] = False,
    region: Annotated[
        str | None, typer.Option(help="AWS region (default: the stage's in samconfig.toml, else your profile's).")
    ] = None,
    profile: Annotated[str | None, typer.Option(help="AWS profile for --stage / --stack.")] = None,
) -> None:
    ctx.obj = _Choice(stack, stage, local, region, profile)


def _target(ctx: typer.Context) -> Target:
    choice: _Choice = ctx.find_root().obj
    if sum((bool(choice.stack), bool(choice.stage), choice.local)) != 1:
        fail("choose the stack: --stage NAME, --stack NAME or --local (before the command, e.g. `eprom --stage test "
             "orders ...`)")  # fmt: skip
    if choice.local:
        return local_stack()
    if choice.stage:
        stage = preflight.load_stage(choice.stage)
        return deployed_stack(stage.stack_name, region=choice.region or stage.region, profile=choice.profile)
    assert choice.stack is not None
    return deployed_stack(choice.stack, region=choice.region or preflight.region_of_stack(choice.stack),
                          profile=choice.profile)  # fmt: skip


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
        rendering.print_invalid_order(order)
    if invalid and not skip_invalid:
        fail(f"{len(invalid)} of {len(checked)} files invalid: nothing sent (--skip-invalid sends the others)")
    for order in checked:
        if not order.problem:
            message_id = orders.send(target, order)
            reference = rendering.masked(order.order_reference)
            console.print(f"sent {rendering.shown(order.path)} (orderReference {reference}) as message {message_id}")
    if invalid:
        console.print(f"skipped {len(invalid)} invalid file(s)")
    if invalid and len(invalid) == len(checked):
        fail(f"all {len(checked)} files invalid: nothing sent")


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
        fail(f"no order with orderReference {rendering.masked(order_reference)} in {target.name} (placed orders only; "
             "see the DLQs)")  # fmt: skip
    if reveal:
        warn_personal_data("single-use codes, login URLs and form answers")
    shown = items if reveal else [item.without_personal_data() for item in items]
    if as_json:
        rendering.print_json(shown)
        return
    for item in shown:
        rendering.print_item(item)
        if reveal and item.answers is not None:
            console.print("answers:")
            console.print(orders.pretty_answers(orders.stored_object(target, item.answers)))


@orders_app.command("orphans")
def orphan_items(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="As JSON, for scripts.")] = False,
) -> None:
    """Items that exist only through ePROM's callbacks (no orderReference): patient-initiated forms, or an order
    whose answer was lost in an ambiguous attempt. Compare their times with the parked Ambiguous dead letters."""
    target = _target(ctx)
    found = [item.without_personal_data() for item in orders.store(target).callback_only_items()]
    rendering.print_listing(found, as_json=as_json, empty="no callback-only items", table=rendering.print_orphans)


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
        fail(f"no order with orderReference {rendering.masked(order_reference)} in {target.name}")
    warn_personal_data("form answers and signed documents")
    written = [path for item in items for path in orders.download_results(target, item, out)]
    if not written:
        fail(f"order {rendering.masked(order_reference)} has no answers or signed document yet")
    for path in written:
        console.print(f"wrote {path}")


@orders_app.command("adopt")
def adopt_order(
    ctx: typer.Context,
    reference: Annotated[str, typer.Option(help="The orderReference of the parked Ambiguous order.")],
    form_order_id: Annotated[str, typer.Option(help="The order ePROM Admin shows for it (a callback-only item).")],
) -> None:
    """Link an Ambiguous order that ePROM did create (found in ePROM Admin; its callbacks made a callback-only item)
    to its orderReference: the claim is settled as Placed (no copy is ever sent), the item gets the reference, the
    order's events are announced to upstream under it, and its parked dead letters are deleted."""
    target = _target(ctx)
    adopted = adoption.adopt(target, reference, form_order_id)
    console.print(f"adopted {form_order_id} as {reference}: claim Placed, {adopted.announced} event(s) announced "
                  f"again, {adopted.deleted_letters} parked dead letter(s) deleted")  # fmt: skip


# --- outcome events -------------------------------------------------------------------------------------------------


@outcomes_app.command("republish")
def republish_outcomes(
    ctx: typer.Context,
    reference: Annotated[list[str] | None, typer.Option("--reference", help="An orderReference (repeatable).")] = None,
    since: Annotated[datetime | None, typer.Option(help="Items changed at or after this time (UTC).")] = None,
    until: Annotated[datetime | None, typer.Option(help="... and before this time (UTC; default: now).")] = None,
    dry_run: Annotated[bool, typer.Option(help="Show what would be published; publish nothing.")] = False,
) -> None:
    """Publish the outcome events of orders again, from FormOrdersTable, with the eventIds the publisher gave them
    (consumers that have them drop them): by orderReference, or for the items changed in a time window."""
    if not reference and since is None:
        fail("choose the orders: --reference R (repeatable) or --since TIME [--until TIME]")
    target = _target(ctx)
    items = [item for each in reference or [] for item in orders.items_of(target, each)]
    if since is not None:
        window_end = until or datetime.now(UTC)
        items += list(outcomes.items_changed_between(target, _utc(since), _utc(window_end)))
    if not items:
        fail("no orders match")
    if dry_run:
        console.print(f"would re-publish the events of {len(items)} order(s); nothing published (--dry-run)")
        return
    details = outcomes.republish(target, items)
    for detail in details:
        console.print(f"published {type(detail).__name__} {detail.event_id} ({detail.order_reference}, "
                      f"{detail.form_order_id}, {detail.status})")  # fmt: skip
    console.print(f"re-published {len(details)} event(s) of {len(items)} order(s) with their eventIds")


@outcomes_app.command("redrive")
def redrive_outcomes(ctx: typer.Context) -> None:
    """Move the events EventBridge could not deliver (OutcomeDeliveryDeadLetterQueue) to OutcomeQueue, once the
    queue's or the key's policy is fixed. Each is deleted from the DLQ only after it was sent."""
    moved = outcomes.redrive_deliveries(_target(ctx))
    console.print(f"moved {moved} event(s) to OutcomeQueue" if moved else "OutcomeDeliveryDeadLetterQueue is empty")


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# --- dead letters ---------------------------------------------------------------------------------------------------


class Queue(StrEnum):
    orders = "orders"  # OrderDeadLetterQueue
    documents = "documents"  # SignedDocumentDeadLetterQueue
    messages = "messages"  # MessageDeadLetterQueue
    all = "all"


_QUEUES_HELP = "orders: the order DLQ; documents: the signed-document DLQ; messages: the letters', SMS' and e-mails'."
QueueChoice = Annotated[Queue, typer.Option(help=_QUEUES_HELP)]
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
        others = dead_letters.held_elsewhere(target, queue.value, letters)
    rendering.print_listing(summaries, as_json=as_json, empty="no dead letters", table=rendering.print_dead_letters)
    if others:
        rendering.errors.print(f"and {others} held by another run (a list, redrive or export running now, or one that "
                               f"stopped in the last {dead_letters.HOLD_SECONDS} s): not listed")  # fmt: skip


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
            fail(dead_letters.nothing_found(target, queue.value, letters))
        if dry_run:
            for letter in picked:
                console.print(f"would redrive {rendering.dead_letter(letter)}")
            console.print(f"{len(picked)} would be sent back and {len(copies)} older copies of them deleted; "
                          "nothing changed (--dry-run)")  # fmt: skip
            return
        copies_of, not_sent, deleted = dead_letters.copies_by_order(copies), [], 0
        with rendering.counter("redriving", len(picked)) as count:
            for letter in picked:  # one SQS refuses stops no other: it is named and stays in the DLQ
                try:
                    dead_letters.redrive(target, letter)
                except dead_letters.NotSent as why:
                    not_sent.append(letter)
                    line = f"{rendering.dead_letter(letter)}: {rendering.shown(why)}"
                    rendering.errors.print(f"not sent, stays in the dead-letter queue: {line}")
                    continue
                finally:
                    count()
                for copy in copies_of.get(letter.order_key, []):  # only after it was sent back
                    dead_letters.delete(target, copy)
                    deleted += 1
    console.print(f"sent {len(picked) - len(not_sent)} dead letter(s) back to their queue; deleted {deleted} older "
                  "copies of them")  # fmt: skip
    if not_sent:
        fail(f"{len(not_sent)} of {len(picked)} not sent (named above): they stay in the dead-letter queue")


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
    warn_personal_data("order messages with national ids")
    directory_for_files(out)
    refused = []
    with dead_letters.held(target, queue.value) as letters:
        picked = dead_letters.chosen(letters, rejection_class, reference)
        if not picked:
            fail(dead_letters.nothing_found(target, queue.value, letters))
        for letter in picked:  # one file refused stops no other: that letter stays in the DLQ
            path = out / dead_letters.export_file_name(letter)
            try:
                write_private(path, letter.body.encode(errors="surrogatepass"))
            except FileRefused as why:
                refused.append(letter)
                rendering.errors.print(f"not written, stays in the dead-letter queue: {rendering.shown(why)}")
                continue
            console.print(f"wrote {rendering.shown(path)} ({rendering.shown(letter.rejection_class)}: "
                          f"{rendering.shown(letter.reason)})")  # fmt: skip
            if delete:
                dead_letters.delete(target, letter)
    if delete:
        console.print(f"deleted {len(picked) - len(refused)} from the dead-letter queue")
    if refused:
        fail(f"{len(refused)} of {len(picked)} not written (named above); they stay in the dead-letter queue")


@dead_letters_app.command("delete")
def delete_dead_letters(
    ctx: typer.Context,
    queue: QueueChoice = Queue.orders,
    rejection_class: ClassChoice = None,
    reference: ReferenceChoice = None,
    exported_to: Annotated[
        Path | None,
        typer.Option(help="The --out of `dead-letters export`: only the letters written there are deleted."),
    ] = None,
    force: Annotated[bool, typer.Option(help="Delete them without an export (the orders are gone for good).")] = False,
) -> None:
    """Delete dead letters (a ReusedOrderReference upstream sent again, an Ambiguous order ePROM has): only those
    `dead-letters export` wrote to --exported-to, unless --force. Choose them with --class and/or --reference."""
    if rejection_class is None and reference is None:
        fail("choose the letters: --class C and/or --reference R")
    if exported_to is None and not force:
        fail("export them first (`dead-letters export --out DIR`, then --exported-to DIR), or --force")
    target = _target(ctx)
    with dead_letters.held(target, queue.value) as letters:
        picked = dead_letters.chosen(letters, rejection_class, reference)
        if not picked:
            fail("no dead letters match" if letters else "the dead-letter queue is empty")
        kept = [one for one in picked if not force and exported_to and not dead_letters.exported(one, exported_to)]
        for letter in picked:
            if letter not in kept:
                dead_letters.delete(target, letter)
    console.print(f"deleted {len(picked) - len(kept)} dead letter(s)")
    if kept:
        fail(f"{len(kept)} not exported to {exported_to}: kept (export them, or --force)")


# --- messages to citizens: letters, SMS, e-mail ---------------------------------------------------------------------


@messages_app.command("send")
def send_messages(
    ctx: typer.Context,
    files: Annotated[list[Path], typer.Argument(help="Messages: JSON files shaped like events/messages/*.json.")],
    document: Annotated[
        list[str] | None,
        typer.Option("--document", help="KEY=PDF: upload the file PDF as the letter's document KEY (repeatable)."),
    ] = None,
    skip_invalid: Annotated[bool, typer.Option(help="Send the valid ones even if some are invalid.")] = False,
) -> None:
    """Check each message with the sender's own model and the stage's settings, upload the PDFs given, then send
    them to MessageQueue. Nothing is sent if any is invalid, unless --skip-invalid."""
    target = _target(ctx)
    uploads = [(key, Path(path)) for key, _, path in (pair.partition("=") for pair in document or [])]
    if any(not key.startswith("documents/") or not path.name for key, path in uploads):
        fail("--document takes KEY=PDF with KEY under documents/, e.g. documents/letter-1.pdf=./letter-1.pdf")
    checked = [messages.check(path, target) for path in files]
    invalid = [message for message in checked if message.problem]
    for message in invalid:
        rendering.print_invalid_order(message)
    if invalid and not skip_invalid:
        fail(f"{len(invalid)} of {len(checked)} files invalid: nothing sent (--skip-invalid sends the others)")
    for key, path in uploads:
        messages.upload(target, key, path)
        console.print(f"uploaded {path} as {key}")
    for message in checked:
        if not message.problem:
            message_id = messages.send(target, message)
            reference = rendering.masked(message.message_reference)
            console.print(f"sent {rendering.shown(message.path)} ({message.kind}, messageReference {reference}) as "
                          f"message {message_id}")  # fmt: skip
    if invalid and len(invalid) == len(checked):
        fail(f"all {len(checked)} files invalid: nothing sent")


@messages_app.command("show")
def show_message(
    ctx: typer.Context,
    reference: Annotated[str, typer.Argument(help="The messageReference upstream gave it, or a letter's ePROM id.")],
    as_json: Annotated[bool, typer.Option("--json", help="The item as JSON, for scripts.")] = False,
) -> None:
    """A message's kind, status (a letter's after ePROM's callback), channel, messageToCitizenId and callbacks. The
    item holds no national id, phone number, address or text."""
    target = _target(ctx)
    item = messages.find(target, reference)
    if item is None or item.is_link:
        fail(f"no message {rendering.masked(reference)} in {target.name} (refused ones are in `dead-letters list "
             "--queue messages`)")  # fmt: skip
    if as_json:
        rendering.print_json(item.as_attributes())
        return
    rendering.print_message(item)


# --- ApiKey ---------------------------------------------------------------------------------------------------------


@api_key_app.command("set")
def set_api_key(
    ctx: typer.Context,
    on_command_line: Annotated[str | None, typer.Argument(hidden=True, metavar="", show_default=False)] = None,
) -> None:
    """Put the first ApiKey Hemit sent into the secret (read from standard input, never from the command line),
    replacing the placeholder the deploy generated; no previous key is kept. Later keys: `api-key rotate`."""
    if on_command_line is not None:  # never echoed: it is (most likely) the key
        fail("the ApiKey is read from standard input, never from the command line (that stays in your shell history "
             "and the process list): `eprom ... api-key set < key.txt`, or type it at the prompt")  # fmt: skip
    target = _target(ctx)
    api_key_rotation.set_first(target, api_key_rotation.read_new_key())
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
        fail("the new ApiKey is read from standard input, never from the command line; nothing changed (if you "
             "gave the key as an argument, it is in your shell history now)")  # fmt: skip
    target = _target(ctx)
    keys = api_key_rotation.keys(target)
    if drop_previous:
        dropped = api_key_rotation.drop_previous(target, keys)
        console.print(f"dropped {dropped} previous key(s): callbacks with them are refused once the functions' "
                      "cached copy of the secret expires (at most 5 minutes)")  # fmt: skip
        return
    kept = api_key_rotation.rotate(target, keys, api_key_rotation.read_new_key())
    console.print(f"the new ApiKey is current; {len(kept)} previous key(s) are still accepted on callbacks until "
                  "`eprom api-key rotate --drop-previous` (once ePROM sends the new one)")  # fmt: skip


# --- privacy settings (PVK) -----------------------------------------------------------------------------------------

NationalIdArgument = Annotated[str, typer.Argument(help="The person's fødselsnummer or D-nummer (shown masked).")]
PvkIdOption = Annotated[str, typer.Option(help="The reservation or consent definition (pvkId, a GUID).")]
TypeOption = Annotated[str, typer.Option("--type", help="Reservasjon or Samtykke (or 0, 1).")]
RevealOption = Annotated[bool, typer.Option(help="Show the national ids instead of masking them.")]


@privacy_app.command("get")
def get_privacy_setting(
    ctx: typer.Context,
    national_id: NationalIdArgument,
    pvk_id: PvkIdOption,
    pvk_type: TypeOption = "Reservasjon",
    reveal: RevealOption = False,
    as_json: Annotated[bool, typer.Option("--json", help="The reply as JSON, for scripts.")] = False,
) -> None:
    """A person's setting of one definition, as ePROM's PVK has it now (status, sequence number, times)."""
    target = _target(ctx)
    setting = privacy.invoke(target, {"operation": "get", "nationalId": national_id, "type": pvk_type,
                                      "pvkId": pvk_id})  # fmt: skip
    if reveal:
        warn_personal_data("a national id")
    if as_json:
        rendering.print_json(setting)
        return
    rendering.print_privacy_setting(privacy.masked(national_id, reveal=reveal), setting)


@privacy_app.command("set")
def set_privacy_setting(
    ctx: typer.Context,
    national_id: NationalIdArgument,
    pvk_id: PvkIdOption,
    status: Annotated[str, typer.Option(help="Aktiv (in force) or IkkeAktiv (or 1, 0): the state, never a toggle.")],
    pvk_type: TypeOption = "Reservasjon",
    reveal: RevealOption = False,
) -> None:
    """Set a person's setting of one definition (as the person asked the registry to). Safe to repeat: the same
    status again changes nothing."""
    target = _target(ctx)
    reply = privacy.invoke(target, {"operation": "set", "nationalId": national_id, "type": pvk_type, "pvkId": pvk_id,
                                    "status": status})  # fmt: skip
    person = privacy.masked(national_id, reveal=reveal)
    console.print(f"{pvk_type} {pvk_id} of {person} is {status}: "
                  f"{'changed' if reply['changed'] else 'it was so already (nothing changed)'}")  # fmt: skip


@privacy_app.command("list")
def list_residents(
    ctx: typer.Context,
    pvk_id: PvkIdOption,
    show: Annotated[int, typer.Option(help="Residents to print from the list (its first ones).")] = 10,
    reveal: RevealOption = False,
    as_json: Annotated[bool, typer.Option("--json", help="The reply (where the list is) as JSON.")] = False,
) -> None:
    """Every resident with an active setting of the definition, written by PrivacySettingsFunction to the results
    bucket (NDJSON, one resident a line): where it is, how many, and the first --show of them."""
    target = _target(ctx)
    listed = privacy.invoke(target, {"operation": "list", "pvkId": pvk_id})
    if as_json:
        rendering.print_json(listed)
        return
    console.print(f"{listed['count']} residents with an active setting of {pvk_id}: s3://{listed['bucket']}/"
                  f"{listed['key']} (version {listed['versionId']}, sha256 {listed['sha256']})")  # fmt: skip
    if show > 0 and listed["count"]:
        if reveal:
            warn_personal_data("national ids")
        rendering.print_residents(privacy.residents(target, listed, show), reveal=reveal)


# --- smoke test -----------------------------------------------------------------------------------------------------


@app.command("smoke")
def smoke_test(
    ctx: typer.Context,
    form_id: Annotated[str, typer.Option(help="A published formId of your ordering system in ePROM.")],
    national_id: Annotated[str, typer.Option(help="The test patient (default: Hemit's verification person).")] = (
        TEST_PERSON_NATIONAL_ID
    ),
    timeout: Annotated[int, typer.Option(help="Seconds to wait for ePROM's Ordered callback.")] = 180,
) -> None:
    """After a deploy: send one test order, wait for ePROM's Ordered callback, and show the ApiBaseUrl to register
    with Hemit. Exit 0 when the order reached Ordered, 1 otherwise. Refused against a prod stage. One order per
    stack, form and day (orderReference smoke-DATE-form-FORM): a re-run the same day shows that order again instead of
    ordering twice for the test person."""
    target = _target(ctx)
    order = smoke.order_once(target, form_id, national_id)
    if order.placed_as:
        console.print(f"already placed today as {order.placed_as} (orderReference {order.reference}): not ordered "
                      "again")  # fmt: skip
    else:
        console.print(f"sent test order {order.reference} for form {form_id} to {target.name}")
    with rendering.spinner("waiting for the order to be placed") as progress:
        outcome = smoke.wait_for_ordered(target, order, timeout, progress)
    console.print(f"ApiBaseUrl to register with Hemit: {target.api_base_url}")
    if outcome != "Ordered":
        fail(outcome)
    console.print("ePROM accepted the order and called back: Ordered", style="green")


# --- Hemit's verification and onboarding ----------------------------------------------------------------------------


_CONFIRM_KEYS = ", ".join(item.key for item in verify.CONFIRMATIONS)
# Exit codes of `eprom verify`
_WAITING, _INCOMPLETE = 3, 4
_LETTER_HELP = "A PDF: also send it as a letter to the person (its callback Sent shows ePROM takes our documents)."


@app.command("verify")
def verify_integration(
    ctx: typer.Context,
    form_id: Annotated[str | None, typer.Option(help="A published formId to order (required unless --resume).")] = None,
    signed_form_id: Annotated[str | None, typer.Option(help="A formId to order with mustBeSigned (signing).")] = None,
    on_behalf_of: Annotated[str | None, typer.Option(help="A test person: also order --form-id on their behalf.")] = (
        None
    ),
    system_name: Annotated[str | None, typer.Option(help="Your ordering system's name, as in the onboarding.")] = None,
    national_id: Annotated[str, typer.Option(help="The person who fills (default: Hemit's verification person).")] = (
        TEST_PERSON_NATIONAL_ID
    ),
    expected_channel: Annotated[str, typer.Option(help="The notificationChannel the orders must get.")] = "Helsenorge",
    report_dir: Annotated[Path, typer.Option(help="Where the reports (and the state while waiting) go.")] = Path(
        "verification"
    ),
    resume: Annotated[bool, typer.Option(help="Continue the verification waiting in --report-dir.")] = False,
    abandon: Annotated[bool, typer.Option(help="Give up the verification waiting in --report-dir.")] = False,
    confirm: Annotated[
        list[str] | None, typer.Option(help=f"What the person confirms (repeatable; or all): {_CONFIRM_KEYS}.")
    ] = None,
    waive_signed: Annotated[str | None, typer.Option(help="Why the signed case is not run (shown to Hemit).")] = None,
    waive_on_behalf_of: Annotated[str | None, typer.Option(help="Why the on-behalf-of case is not run.")] = None,
    timeout: Annotated[int, typer.Option(help="Seconds to wait for the orders to reach Ordered.")] = 300,
    wait_hours: Annotated[float, typer.Option(help="Hours to wait for the person before pausing (exit 3).")] = 2.0,
    simulated_person: Annotated[
        bool | None, typer.Option(help="--local: the simulator fills and signs the forms (default with --local).")
    ] = None,
    letter: Annotated[Path | None, typer.Option(help=_LETTER_HELP, exists=True, dir_okay=False)] = None,
    organisation_name: Annotated[str, typer.Option(help="--letter: the sender the person sees.")] = "Testregisteret",
    organisation_nr: Annotated[str, typer.Option(help="--letter: the sender's organisation number.")] = "000000000",
) -> None:
    """Hemit's go-live verification as steps, arranged by Hemit's checklist: orders placed once and Ordered on the
    expected channel; the person fills (and signs) them on Helsenorge (test) and confirms what only they can see;
    answers stored, FormReturned delivered, the signed PDF stored, no duplicate callbacks or events. Writes Markdown,
    HTML and JSON reports (no national ids, codes or answers). Exit 0 passed, 1 a step failed (named, with what to
    do), 3 waiting for the person (`--resume` continues), 4 incomplete (a required case not run, or confirmations
    missing)."""
    target = _target(ctx)
    state_file = verify.state_file_for(target, report_dir)
    choice: _Choice = ctx.find_root().obj
    resume_hint = (f"the state is kept in {state_file}: continue with `eprom {choice.option()} verify --resume "
                   f"--report-dir {report_dir}`")  # fmt: skip
    if abandon:
        gone = verify.abandon(target, state_file)
        console.print(f"verification {gone.run_id} abandoned: its tap and {state_file} removed")
        return
    unknown = sorted(set(confirm or []) - {item.key for item in verify.CONFIRMATIONS} - {"all"})
    if unknown:
        fail(f"--confirm takes {_CONFIRM_KEYS} or all, not {', '.join(unknown)}")
    if resume:
        verification = _resumed_verification(target, state_file, simulated_person)
    else:
        waivers = {kind: reason for kind, reason in (("signed", waive_signed), ("on-behalf-of", waive_on_behalf_of))
                   if reason}  # fmt: skip
        letter_to_send = (verify.LetterToSend(pdf=letter, organisation_name=organisation_name,
                                              organisation_nr=organisation_nr) if letter else None)  # fmt: skip
        verification = verify.start(target, state_file, form_id=form_id, signed_form_id=signed_form_id,
                                    on_behalf_of=on_behalf_of, person=national_id, expected_channel=expected_channel,
                                    system_name=system_name, simulated_person=bool(target.eprom_simulator_url)
                                    if simulated_person is None else simulated_person, waivers=waivers,
                                    letter=letter_to_send)  # fmt: skip
        console.print(f"verification {verification.run_id} against {target.name} "
                      f"({verification.environment.name}): sent {len(verification.cases)} order(s)"
                      + (" and a letter" if verification.letter else ""))  # fmt: skip
    checks = verify.Checks(target, verification, record=rendering.print_step)
    ask = (lambda item: typer.confirm(f"{item.question}?")) if sys.stdin.isatty() else (lambda item: None)
    with rendering.spinner("waiting for the orders to be placed", transient=True) as progress:
        try:
            verify.run(checks, state_file, person=national_id, timeout=timeout, wait=wait_hours * 3600, resumed=resume,
                       given=set(confirm or []), ask=ask, say=console.print, progress=progress)  # fmt: skip
        except KeyboardInterrupt:
            console.print(f"stopped; {resume_hint}")
            raise typer.Exit(_WAITING) from None
        except verify.StackGone as gone:
            rendering.print_step(gone.step)
            fail(f"{gone}; {resume_hint}")
    if verification.outcome in ("waiting", "ordering"):
        console.print(f"still waiting for the person after {wait_hours:g} h; {resume_hint}")
        raise typer.Exit(_WAITING)
    for path in report.write(verification, report_dir):
        console.print(f"wrote {path}")
    if verify.is_finished(verification):
        state_file.unlink(missing_ok=True)
    _tell_outcome(verification, choice, report_dir)


def _resumed_verification(target: Target, state_file: Path, simulated_person: bool | None) -> verify.Verification:
    """The verification waiting in `state_file`, with who fills the forms changed when --[no-]simulated-person says."""
    verification = verify.resume(state_file)
    if simulated_person is not None and simulated_person != verification.simulated_person:
        if simulated_person and not target.eprom_simulator_url:
            fail("--simulated-person needs the local simulator (--local): on a deployed stack a person fills")
        verification.simulated_person = simulated_person
    return verification


def _tell_outcome(verification: verify.Verification, choice: _Choice, report_dir: Path) -> None:
    """A finished run's outcome in a line, and its exit code: 1 failed, 4 incomplete, 0 passed."""
    if verification.outcome == "failed":
        refused = [verify.question_of(key) for key, answer in verification.answers.items() if answer.answer == "no"]
        last = verification.steps[-1] if verification.steps and not verification.steps[-1].passed else None
        if last:
            fail(f"verification failed at step {last.name!r}: {last.observed}; next: {last.next or 'see the report'}")
        fail(f"verification failed: not confirmed by the person: {'; '.join(refused)}; fix it in ePROM (the form, "
             "its cover letter or settings) and run a new verification")  # fmt: skip
    if verification.outcome == "incomplete":
        missing = [f"the {kind} case was not run (--{'signed-form-id' if kind == 'signed' else 'on-behalf-of'}, or "
                   f"--waive-{kind} REASON)" for kind in verification.missing_cases()]  # fmt: skip
        unanswered = [item.key for item in verification.unanswered()]
        if unanswered:
            command = f"eprom {choice.option()} verify --resume --report-dir {report_dir} --confirm KEY ..."
            missing.append(f"not confirmed yet: {', '.join(unanswered)} (ask the person, then `{command}`)")
        console.print(f"verification INCOMPLETE: {'; '.join(missing)}", style="yellow")
        raise typer.Exit(_INCOMPLETE)
    console.print(f"verification passed: {len(verification.steps)} steps", style="green")


@app.command("onboarding")
def onboarding_email(
    ctx: typer.Context,
    file: Annotated[Path | None, typer.Option(help='A TOML file with the fields below (system_name = "...").')] = None,
    system_name: Annotated[str | None, typer.Option(help="Your ordering system's name, as Hemit lists it.")] = None,
    description: Annotated[str | None, typer.Option(help="What the system sends: forms and/or letters.")] = None,
    contact_name: Annotated[str | None, typer.Option(help="Technical contact (mandatory): name.")] = None,
    contact_email: Annotated[str | None, typer.Option(help="Technical contact: e-mail.")] = None,
    contact_phone: Annotated[str | None, typer.Option(help="Technical contact: phone.")] = None,
    patient_phone: Annotated[str | None, typer.Option(help="The phone number shown to patients.")] = None,
    form_builder_user: Annotated[
        list[str] | None,
        typer.Option(help="Who gets access to ePROM's form builder (repeatable; default: the technical contact)."),
    ] = None,
    public_contact_email: Annotated[
        str | None, typer.Option(help="Optional contact e-mail shown to patients (Hemit does not recommend it).")
    ] = None,
    logo: Annotated[str | None, typer.Option(help="Optional: the logo file you attach to the e-mail.")] = None,
) -> None:
    """Print the onboarding e-mail to Hemit (eprom@hemit.no) with every field of their start guide and the stack's
    ApiBaseUrl, asking for the ApiKey and for access to ePROM's form builder (where the forms, and so their ids, are
    made). Fields come from options or --file; missing ones are asked for at a terminal. Hemit answers with the
    ApiKey: `eprom ... api-key set`."""
    given = {"system_name": system_name, "description": description, "contact_name": contact_name,
             "contact_email": contact_email, "contact_phone": contact_phone, "patient_phone": patient_phone,
             "form_builder_users": form_builder_user, "public_contact_email": public_contact_email,
             "logo": logo}  # fmt: skip
    values = (onboarding.read_file(file) if file else {}) | {k: v for k, v in given.items() if v is not None}
    missing = [name for name in onboarding.Onboarding.required() if not values.get(name)]
    if missing and not sys.stdin.isatty():
        fail(f"missing {', '.join('--' + name.replace('_', '-') for name in missing)} (or give them in --file)")
    for name in missing:
        values[name] = typer.prompt(name.replace("_", " ").capitalize())
    console.print(onboarding.email(_target(ctx), onboarding.onboarding_of(values)))


# --- before a deploy ------------------------------------------------------------------------------------------------


@app.command("preflight")
def preflight_command(
    ctx: typer.Context,
    stage: Annotated[str | None, typer.Option(help="The stage: a section of samconfig.toml (dev, test, qa, prod).")] = (
        None
    ),
    parameter: Annotated[
        list[str] | None, typer.Option("--parameter", "-p", help="Key=Value merged into the stage's parameters.")
    ] = None,
    fix: Annotated[
        bool,
        typer.Option(
            help="First set up what the account lacks once for every stack: API Gateway's "
            "CloudWatch Logs role (`make account-setup`)."
        ),
    ] = False,
) -> None:
    """Before a deploy: check what the stage needs from the AWS account (credentials, EEA region, the stack's state,
    sam's artefact bucket, API Gateway's logging role, the VPC's DNS in the endpoint modes, Lambda concurrency, the
    stage's parameters). One line per check; exit 1 when something must be fixed first. Needs no stack: run it before
    the first deploy. The checks that need no AWS run without credentials too."""
    choice: _Choice = ctx.find_root().obj
    name = stage or choice.stage
    if not name:
        fail("give the stage: `eprom --stage test preflight` (a section of samconfig.toml)")
    chosen = preflight.load_stage(name, preflight.parse_parameters(" ".join(parameter or [])))
    session = preflight.session_for(choice.profile)
    if fix:
        console.print(preflight.set_up_logging_role(chosen, session))
    found = preflight.preflight(chosen, session)
    rendering.print_preflight(found)
    if found.problems:
        raise typer.Exit(1)


def main() -> None:
    app()
