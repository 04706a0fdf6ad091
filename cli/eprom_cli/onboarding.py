"""The onboarding e-mail for Hemit, filled from the stack's outputs: Hemit answers with the ApiKey."""

from eprom_cli.target import Target


def email(target: Target, *, system_name: str, contact_name: str, contact_email: str, contact_phone: str,
          patient_phone: str, description: str) -> str:  # fmt: skip
    environment = f" ({target.eprom_api_base_url})" if target.eprom_api_base_url else ""
    return f"""To: Hemit (ePROM)
Subject: New ordering system for ePROM: {system_name}

Hello,

we would like to connect a new ordering system (bestillersystem) to ePROM{environment}.

  System name:          {system_name}
  ApiBaseUrl:           {target.api_base_url}
  Description:          {description}
  Technical contact:    {contact_name}, {contact_email}, {contact_phone}
  Phone shown to patients: {patient_phone}

ePROM calls back PUT {{ApiBaseUrl}}/api/PromsFormOrder. Please send us the ApiKey for the system.
"""
