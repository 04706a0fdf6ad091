"""eprom.privacy read by hand (no pydantic on PrivacySettingsFunction's path): its request reader agrees with the
published schema, its replies are what the schema describes, and ePROM's answers are read as liberally as its
callbacks are."""

import json
import uuid
from typing import Any

import pytest
from eprom.privacy import (
    EpromPrivacySetting,
    EpromSetAnswer,
    ErrorReply,
    InstansEndret,
    PrivacyChange,
    ResidentsPage,
    SetRequest,
    Unreadable,
    error_reply,
    parse_request,
)

from buildtools.schemas import privacy_reply_errors, privacy_request_errors

PVK = "b3cda307-154c-4af4-87d3-30567c931924"
PERSON = "26073941651"
GET = {"operation": "get", "nationalId": PERSON, "type": "Reservasjon", "pvkId": PVK}


@pytest.mark.parametrize(
    "request_",
    [
        GET,
        GET | {"type": 1},
        GET | {"operation": "set", "status": "Aktiv"},
        GET | {"operation": "set", "status": 0},
        {"operation": "list", "pvkId": PVK},
    ],
)
def test_what_the_schema_takes_the_reader_takes(request_: dict[str, Any]) -> None:
    assert privacy_request_errors(request_) == []
    parse_request(request_, allow_synthetic_national_ids=False)


@pytest.mark.parametrize(
    "request_",
    [
        "get",
        {"operation": "delete", "pvkId": PVK},
        {key: value for key, value in GET.items() if key != "type"},
        GET | {"type": "Paper"},
        GET | {"type": 2},
        GET | {"pvkId": "not-a-guid"},
        GET | {"nationalId": "2607394165"},
        GET | {"operation": "set"},
        GET | {"nationalID": PERSON},
        {"operation": "list", "pvkId": PVK, "type": 0},
    ],
)
def test_what_the_schema_refuses_the_reader_refuses(request_: Any) -> None:
    assert privacy_request_errors(request_) != []
    with pytest.raises(Unreadable):
        parse_request(request_, allow_synthetic_national_ids=False)


def test_the_reader_is_stricter_only_where_a_schema_cannot_say_it() -> None:
    """Control digits, H- and FH-nummer, synthetic ids outside test stages: the national-id rules of orders."""
    for national_id in ("26073941652", "15499923810", "81263303652", "26670271527"):
        assert privacy_request_errors(GET | {"nationalId": national_id}) == []
        with pytest.raises(Unreadable, match="nationalId") as refused:
            parse_request(GET | {"nationalId": national_id}, allow_synthetic_national_ids=False)
        assert national_id not in str(refused.value)
    parse_request(GET | {"nationalId": "26670271527"}, allow_synthetic_national_ids=True)


def test_a_request_reads_codes_in_any_case_and_numbers_in_strings_and_hides_the_national_id() -> None:
    request = parse_request(GET | {"operation": "set", "type": "samtykke", "status": " 1 "},
                            allow_synthetic_national_ids=False)  # fmt: skip
    assert isinstance(request, SetRequest) and (request.type.name, request.status.name) == ("Samtykke", "Aktiv")
    assert PERSON not in repr(request) and PERSON not in str(request)


def test_every_reply_is_what_the_schema_describes() -> None:
    answer = {"nationalId": PERSON, "type": "1", "id": PVK.upper(), "name": "Samtykke", "status": 1,
              "sequenceNumber": 4, "createdDateTimeOffset": "2025-01-02T03:04:05.1234567+01:00",
              "lastChangedDateTimeOffset": "2025-02-03T04:05:06"}  # fmt: skip
    setting = EpromPrivacySetting.from_json(json.dumps(answer).encode()).setting
    assert setting.as_json() == {"type": "Samtykke", "pvkId": PVK, "name": "Samtykke", "status": "Aktiv",
                                 "sequenceNumber": 4, "createdDateTimeOffset": "2025-01-02T03:04:05.123456+01:00",
                                 "lastChangedDateTimeOffset": "2025-02-03T04:05:06+01:00"}  # fmt: skip
    for reply in (setting, error_reply("Transient", "why")):
        assert privacy_reply_errors(reply.as_json()) == []
    assert isinstance(error_reply("Transient", "why"), ErrorReply)
    assert error_reply("Unauthorized", "why").as_json() == {"error": {"class": "Unauthorized", "reason": "why"}}


def test_eproms_answers_are_read_liberally() -> None:
    odd = {"TYPE": "reservasjon", "Status": "x", "ID": "not a guid", "createdDateTimeOffset": "0001-13-01",
           "sequenceNumber": "4"}  # fmt: skip
    assert EpromPrivacySetting.from_json(json.dumps(odd).encode()).setting.as_json() == {
        "type": "Reservasjon", "pvkId": None, "name": None, "status": None, "sequenceNumber": None,
        "createdDateTimeOffset": None, "lastChangedDateTimeOffset": None}  # fmt: skip
    assert EpromSetAnswer.from_json(b'{"InstansEndret": "Endret"}').instans_endret is InstansEndret.Endret
    assert EpromSetAnswer.from_json(b'{"instansEndret": 0}').instans_endret is InstansEndret.IkkeEndret
    for unreadable in (b"[]", b"not json", b'{"instansEndret": 7}'):
        with pytest.raises(Unreadable):
            EpromSetAnswer.from_json(unreadable)


def test_a_page_reads_capitalised_members_and_a_reference_as_text() -> None:
    page = ResidentsPage.from_json(json.dumps({
        "pagingReference": "12", "id": PVK, "partKode": "X", "type": 0,
        "personvernInnstillinger": [{"NationalId": PERSON, "SequenceNumber": 2, "createdDateTimeOffset": None,
                                     "lastChangedDateTimeOffset": "2025-10-14T12:00:00+02:00"}],
    }).encode())  # fmt: skip
    assert page.paging_reference == 12
    assert [json.loads(line) for line in page.ndjson()] == [{"nationalId": PERSON, "sequenceNumber": 2,
        "createdDateTimeOffset": None, "lastChangedDateTimeOffset": "2025-10-14T12:00:00+02:00"}]  # fmt: skip
    assert ResidentsPage.from_json(b'{"pagingReference": null}').paging_reference == 0
    for unreadable in (b'{"pagingReference": -1}', b'{"pagingReference": "x"}', b'{"personvernInnstillinger": 3}'):
        with pytest.raises(Unreadable):
            ResidentsPage.from_json(unreadable)
    with pytest.raises(Unreadable, match="NationalId"):
        list(ResidentsPage.from_json(b'{"pagingReference": 0, "personvernInnstillinger": [{}]}').ndjson())


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"nationalId": PERSON, "id": PVK, "status": "res"}, "status"),
        ({"nationalId": PERSON, "id": PVK, "status": PERSON}, "status"),
        ({"nationalId": "2607394165", "id": PVK, "status": "RES"}, "nationalId"),
        ({"nationalId": PERSON, "id": PERSON, "status": "RES"}, "id"),
        ({"nationalId": PERSON, "id": PVK, "status": "RES", "name": 3}, "name"),
    ],
)
def test_a_change_names_what_it_cannot_read_never_the_value(change: dict[str, Any], field: str) -> None:
    with pytest.raises(Unreadable, match=field) as refused:
        PrivacyChange.from_body(change)
    assert PERSON not in str(refused.value)


def test_a_change_is_read_with_its_member_names_in_any_case() -> None:
    change = PrivacyChange.from_body({"NationalID": PERSON, "Id": PVK.upper(), "NAME": "R", "status": "NEWCODE"})
    assert (change.pvk_id, change.name, change.status) == (str(uuid.UUID(PVK)), "R", "NEWCODE")
