"""`eprom`: the operator's command for a deployed stack (--stack NAME) or the local one (--local).

The commands, their options and what they print; what they do is in the modules named after them, the output
in `rendering`.
"""

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
    api_key_rotation,
    dead_letters,
    onboarding,
    orders,
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
    privacy.PrivacyRefused,
)


class _OneLineErrors(TyperGroup):
    """AWS errors (a queue or table missing, no permission, no credentials) and refusals as one line and exit 1,
    never a traceback."""

    def invoke(self, ctx: typer.Context) -> Any:
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

    def resolve_command(self, ctx: typer.Context, args: list[str]) -> Any:
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
privacy_app = _app("Privacy settings (PVK): a person's reservation or consent, a definition's residents.")
app.add_typer(privacy_app, name="privacy")


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
        fail("choose the stack: --stack NAME or --local (before the command, e.g. `eprom --local orders ...`)")
    return local_stack() if choice.local else deployed_stack(choice.stack, region=choice.region,
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
            console.print(f"sent {order.path} (orderReference {order.order_reference}) as message {message_id}")
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
        fail(f"no order with orderReference {order_reference} in {target.name} (placed orders only; see the DLQs)")
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
        fail(f"no order with orderReference {order_reference} in {target.name}")
    warn_personal_data("form answers and signed documents")
    written = [path for item in items for path in orders.download_results(target, item, out)]
    if not written:
        fail(f"order {order_reference} has no answers or signed document yet")
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
    rendering.print_listing(summaries, as_json=as_json, empty="no dead letters", table=rendering.print_dead_letters)


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
            fail("no dead letters match" if letters else "the dead-letter queue is empty")
        if dry_run:
            for letter in picked:
                console.print(f"would redrive {letter.queue} {letter.message_id} {letter.reference} "
                              f"({letter.rejection_class})")  # fmt: skip
            console.print(f"{len(picked)} would be sent back and {len(copies)} older copies of them deleted; "
                          "nothing changed (--dry-run)")  # fmt: skip
            return
        with rendering.counter("redriving", len(picked) + len(copies)) as count:
            for letter in picked:
                dead_letters.redrive(target, letter)
                count()
            for copy in copies:  # only after every letter was sent back
                dead_letters.delete(target, copy)
                count()
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
    warn_personal_data("order messages with national ids")
    directory_for_files(out)
    with dead_letters.held(target, queue.value) as letters:
        picked = dead_letters.chosen(letters, rejection_class, reference)
        if not picked:
            fail("no dead letters match" if letters else "the dead-letter queue is empty")
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
    state_file = verify.state_file_for(target, report_dir)
    if resume:
        verification = verify.resume(state_file)
    else:
        verification = verify.start(target, state_file, form_id=form_id, signed_form_id=signed_form_id,
                                    on_behalf_of=on_behalf_of, person=national_id,
                                    expected_channel=expected_channel)  # fmt: skip
        console.print(f"verification {verification.run_id} against {target.name} "
                      f"({verification.environment.name}): sent {len(verification.cases)} order(s)")  # fmt: skip
    checks = verify.Checks(target, verification, record=rendering.print_step)
    resume_hint = f"the state is kept in {state_file}: continue with `eprom ... verify --resume`"
    with rendering.spinner("waiting for the orders to be placed", transient=True) as progress:
        try:
            verify.run(checks, state_file, person=national_id, timeout=timeout, wait=wait_hours * 3600,
                       simulated_person=simulated_person, say=console.print, progress=progress)  # fmt: skip
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
        fail(f"verification failed at step {verification.steps[-1].name!r}: {verification.steps[-1].observed}")
    console.print(f"verification passed: {len(verification.steps)} steps", style="green")


@app.command("onboarding")
def onboarding_email(
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
    console.print(onboarding.email(_target(ctx), system_name=system_name, contact_name=contact_name,
                                         contact_email=contact_email, contact_phone=contact_phone,
                                         patient_phone=patient_phone, description=description))  # fmt: skip


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
    chosen = preflight.load_stage(stage, preflight.parse_parameters(" ".join(parameter or [])))
    choice: _Choice = ctx.find_root().obj
    found = preflight.preflight(chosen, preflight.session_for(choice.profile))
    rendering.print_preflight(found)
    if found.problems:
        raise typer.Exit(1)


def main() -> None:
    app()
