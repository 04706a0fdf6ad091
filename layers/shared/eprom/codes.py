"""ePROM's codes (eprom-contract.md), as ePROM numbers them; read by name or number with eprom.reading.code."""

from enum import IntEnum


class DistributionRule(IntEnum):
    Basic = 0
    AllowUnsecure = 1
    NoDistribution = 2
    BasicOrPaper = 3
    AllowUnsecureOrPaper = 4
    PaperOnly = 5
    HelsenorgeOnly = 6
    DigitalMailboxOnly = 7
    UnsecureOnly = 8


# "None" is a wire name, and only the functional API lets a member be called that.
NotificationChannel = IntEnum(
    "NotificationChannel",
    [("None", 0), ("Helsenorge", 1), ("DigitalMailbox", 2), ("Unsecure", 3), ("PhysicalMailbox", 4)],
)


class FormOrderStatus(IntEnum):
    Completed = 0
    Expired = 1
    Ordered = 2
    Error = 3
    PhysicalMailReturned = 4
    DigipostDelivered = 5


FormOrderStatusErrorCode = IntEnum(
    "FormOrderStatusErrorCode", [("None", 0), ("PatientUnreachable", 1), ("SikkerDigitalPostError", 2)]
)


class SentStatus(IntEnum):
    """sentStatus of ePROM's callback for a letter. Error: the person could not be notified."""

    Sent = 0
    Error = 1
