"""The onboarding e-mail to Hemit (eprom-contract.md §6, Hemit's start guide): every field the guide asks for, the
stack's ApiBaseUrl, and the request for what Hemit sends back (the ApiKey and, for form ordering, access to ePROM's
form builder, where the registry builds the forms whose ids it orders). Hemit answers with the ApiKey, which
`eprom api-key set` stores. A later change of the ApiBaseUrl is made in ePROM's self-service module, not by e-mail.

The fields come from options or a TOML file of the same names (`system_name = "..."`); what is missing is prompted
for at a terminal, and named in one line elsewhere.
"""

import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from eprom_cli.target import Target

HEMIT = "eprom@hemit.no"
DEFAULT_DESCRIPTION = "Ordering of forms (PROM questionnaires) for a health registry"


class OnboardingRefused(Exception):
    """What is missing or wrong: one line for the operator."""


class Onboarding(BaseModel):
    """The start guide's fields. Required unless they have a default here."""

    model_config = ConfigDict(extra="forbid")

    system_name: str
    description: str = DEFAULT_DESCRIPTION
    contact_name: str  # the technical contact is mandatory
    contact_email: str
    contact_phone: str
    patient_phone: str  # for form ordering: the number shown to patients
    form_builder_users: list[str] = []  # who gets form-builder access (default: the technical contact)
    public_contact_email: str | None = None  # optional, and Hemit does not recommend it
    logo: str | None = None  # optional: the file attached to the e-mail

    @classmethod
    def required(cls) -> list[str]:
        return [name for name, field in cls.model_fields.items() if field.is_required()]


def read_file(path: Path) -> dict[str, object]:
    try:
        return tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise OnboardingRefused(f"cannot read {path}: {error}") from None


def onboarding_of(values: dict[str, object]) -> Onboarding:
    try:
        return Onboarding.model_validate(values)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors(include_input=False))
        raise OnboardingRefused(f"the onboarding fields: {problems}") from None


def email(target: Target, fields: Onboarding) -> str:
    environment = f" ({target.eprom_api_base_url})" if target.eprom_api_base_url else ""
    builders = fields.form_builder_users or [f"{fields.contact_name} <{fields.contact_email}>"]
    optional = [("Logo", "attached" if fields.logo else None), ("Contact e-mail (public)", fields.public_contact_email)]
    lines = [
        ("System name", fields.system_name),
        ("ApiBaseUrl", target.api_base_url),
        ("Description", fields.description),
        ("Technical contact", f"{fields.contact_name}, {fields.contact_email}, {fields.contact_phone}"),
        ("Phone shown to patients", fields.patient_phone),
        *((name, value) for name, value in optional if value),
    ]
    table = "\n".join(f"  {name + ':':<26}{value}" for name, value in lines)
    users = "\n".join(f"  - {user}" for user in builders)
    attachment = f"\nAttached: {Path(fields.logo).name}\n" if fields.logo else ""
    return f"""To: {HEMIT}
Subject: New ordering system (bestillersystem) for ePROM: {fields.system_name}

Hello,

we would like to connect a new ordering system (bestillersystem) to ePROM{environment}, as your start guide describes.

{table}

ePROM calls back PUT {{ApiBaseUrl}}/api/PromsFormOrder.

Please send us:
  1. the ApiKey of the ordering system;
  2. user names and passwords for ePROM's form builder (skjemabygger), where we build and publish our forms, for:
{users}
{attachment}
Kind regards,
{fields.contact_name}
"""
