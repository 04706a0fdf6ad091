"""The ePROM contract: enums in every wire shape, all timestamp shapes, strict orders (read as the placer reads them,
eprom.orders; test_readers_match_models.py holds that reader to the OrderMessage model), liberal callbacks."""

import json
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from conftest import EVENTS, FORM_ID, order_message
from eprom.codes import DistributionRule, FormOrderStatus, FormOrderStatusErrorCode, NotificationChannel
from eprom.models import EpromCallback
from eprom.orders import MUST_BE_SIGNED_NO_DISTRIBUTION, MUST_BE_SIGNED_ON_BEHALF, Order, read_order, read_order_answer
from eprom.reading import OSLO, Unreadable


def parse_order(**overrides: object) -> Order:
    body = json.dumps(order_message(**overrides))
    return read_order(body, allow_synthetic_national_ids=False, allow_test_mode_orders=False)


def refusal(**overrides: object) -> str:
    with pytest.raises(Unreadable) as caught:
        parse_order(**overrides)
    return str(caught.value)


def sent(order: Order) -> dict[str, object]:
    """The order's request to ePROM, as JSON."""
    return json.loads(order.eprom_request())


@pytest.mark.parametrize("wire", ["NoDistribution", "nodistribution", "NODISTRIBUTION", 2, "2", " 2 "])
def test_distribution_rule_accepts_name_int_and_numeric_string_and_sends_the_name(wire: object) -> None:
    order = parse_order(distributionRule=wire)
    assert order.distribution_rule is DistributionRule.NoDistribution
    assert sent(order)["distributionRule"] == "NoDistribution"


@pytest.mark.parametrize("wire", ["Bogus", 9, "9", True, 1.5])
def test_an_unknown_distribution_rule_is_refused_in_an_order(wire: object) -> None:
    assert refusal(distributionRule=wire).startswith("distributionRule: must be one of Basic, AllowUnsecure")


@pytest.mark.parametrize(
    ("enum_field", "wire", "expected"),
    [
        ("notificationChannel", "Helsenorge", NotificationChannel.Helsenorge),
        ("notificationChannel", 1, NotificationChannel.Helsenorge),
        ("notificationChannel", "1", NotificationChannel.Helsenorge),
        ("notificationChannel", "none", NotificationChannel["None"]),
        ("formOrderStatus", "Completed", FormOrderStatus.Completed),
        ("formOrderStatus", 0, FormOrderStatus.Completed),
        ("formOrderStatus", "0", FormOrderStatus.Completed),
        ("formOrderStatus", "digipostdelivered", FormOrderStatus.DigipostDelivered),
        ("formOrderStatusErrorCode", "PatientUnreachable", FormOrderStatusErrorCode.PatientUnreachable),
        ("formOrderStatusErrorCode", 2, FormOrderStatusErrorCode.SikkerDigitalPostError),
        ("formOrderStatusErrorCode", "0", FormOrderStatusErrorCode["None"]),
    ],
)
def test_callback_enums_accept_every_wire_shape(enum_field: str, wire: object, expected: object) -> None:
    callback = EpromCallback.model_validate({"formOrderId": str(UUID(int=5)), enum_field: wire})
    assert callback.model_dump(by_alias=True)[enum_field] is expected
    assert callback.model_dump(mode="json", by_alias=True)[enum_field] == expected.name


@pytest.mark.parametrize("wire", [17, "17", "SomethingNew"])
def test_callback_keeps_an_unknown_enum_value_as_given(wire: object) -> None:
    callback = EpromCallback.model_validate({"formOrderId": str(UUID(int=5)), "formOrderStatus": wire})
    assert callback.form_order_status in (wire, int(wire) if str(wire).isdigit() else wire)


@pytest.mark.parametrize(
    ("field", "wire", "expected_utc"),
    [
        # no offset = Europe/Oslo (summer time here: UTC+2)
        ("timestamp", "2023-03-29T10:20:10.1804332", datetime(2023, 3, 29, 8, 20, 10, 180433, tzinfo=UTC)),
        ("timestampUtc", "2023-03-29T08:20:10.1804332Z", datetime(2023, 3, 29, 8, 20, 10, 180433, tzinfo=UTC)),
        ("timestamp", "2019-05-03T00:00:00+02:00", datetime(2019, 5, 2, 22, 0, tzinfo=UTC)),
        # no offset in a ...Utc field = UTC, with a space as separator
        ("timestampUtc", "2021-05-07 09:17:51.220", datetime(2021, 5, 7, 9, 17, 51, 220000, tzinfo=UTC)),
        ("timestampUtc", "2023-03-29T08:01:49.857Z", datetime(2023, 3, 29, 8, 1, 49, 857000, tzinfo=UTC)),
        ("timestamp", "2023-01-15T10:00:00", datetime(2023, 1, 15, 9, 0, tzinfo=UTC)),  # winter: UTC+1
    ],
)
def test_all_five_timestamp_shapes(field: str, wire: str, expected_utc: datetime) -> None:
    callback = EpromCallback.model_validate({"formOrderId": str(UUID(int=5)), field: wire})
    assert getattr(callback, "timestamp_utc" if field == "timestampUtc" else "timestamp") == expected_utc
    assert callback.status_time_utc == expected_utc


def test_offsetless_fields_named_utc_in_any_casing_are_utc() -> None:
    callback = EpromCallback.model_validate(
        {
            "formOrderId": str(UUID(int=5)),
            "patientInitiatedValues": {
                "orderTimestamp": "2021-05-07T11:17:51.220",
                "orderTimestampUTC": "2021-05-07 09:17:51.220",
            },
        }
    )
    values = callback.patient_initiated_values
    assert values is not None
    assert values.order_timestamp_utc == datetime(2021, 5, 7, 9, 17, 51, 220000, tzinfo=UTC)
    assert values.order_timestamp == values.order_timestamp_utc  # 11:17 in Oslo (summer) is 09:17 UTC


def test_an_unreadable_callback_timestamp_does_not_cost_the_callback() -> None:
    callback = EpromCallback.model_validate(
        {"formOrderId": str(UUID(int=5)), "formOrderStatus": "Ordered", "timestampUtc": "yesterday-ish"}
    )
    assert callback.form_order_status is FormOrderStatus.Ordered
    assert callback.timestamp_utc is None
    assert callback.unreadable_fields == ("timestampUtc",)  # left out, and noted


def test_hemits_documented_callbacks_parse() -> None:
    for name in ("callback-ordered.json", "callback-error.json", "callback-completed.json"):
        body = json.loads((EVENTS / name).read_text())["body"]
        callback = EpromCallback.model_validate_json(body)
        assert callback.form_order_id == UUID("184738d0-3c39-e611-9c2a-34e6d72e03c7")
    error = EpromCallback.model_validate_json(json.loads((EVENTS / "callback-error.json").read_text())["body"])
    assert error.form_order_status is FormOrderStatus.Error
    assert error.form_order_status_error_code is FormOrderStatusErrorCode.PatientUnreachable
    assert error.status_time_utc is None


def test_callbacks_ignore_unknown_fields_and_key_casing() -> None:
    callback = EpromCallback.model_validate(
        {"FormOrderID": str(UUID(int=5)), "FORMORDERSTATUS": "Ordered", "somethingNew": {"x": 1}}
    )
    assert callback.form_order_status is FormOrderStatus.Ordered


def test_metadata_object_is_sent_as_a_json_string() -> None:
    wire = sent(parse_order(metadata={"age": 76}))
    assert wire["metadata"] == '{"age":76}'
    assert json.loads(wire["metadata"]) == {"age": 76}


def test_metadata_string_is_sent_as_given() -> None:
    wire = sent(parse_order(metadata='{"age": 76}'))
    assert wire["metadata"] == '{"age": 76}'


def test_invalid_metadata_is_refused_with_eproms_wording() -> None:
    assert refusal(metadata="{age: 76").startswith("metadata: JSON in metadata is not valid: ")


def test_wire_request_has_every_field_camelcase_with_null_reminder_and_no_order_reference() -> None:
    wire = sent(parse_order(reminderDate="2099-01-01T00:00:00Z", expiryDate="2099-06-01T12:00:00"))
    assert set(wire) == {
        "formId", "nationalId", "expiryDate", "reminderDate", "metadata", "dontStoreCompletedFormInPha",
        "distributionRule", "mustBeSigned", "signingText", "physicalAddress", "testMode", "onBehalfOfNationalId",
    }  # fmt: skip
    assert wire["reminderDate"] is None
    assert wire["expiryDate"] == "2099-06-01T12:00:00+02:00"  # offset-less from upstream = Oslo, sent explicit
    assert wire["formId"] == FORM_ID


def test_postal_code_keeps_its_leading_zero() -> None:
    address = {"fullName": "Kari Nordmann", "addressLine1": "Storgata 1", "postalCode": "0150", "postalPlace": "Oslo"}
    wire = sent(parse_order(physicalAddress=address))
    assert wire["physicalAddress"]["postalCode"] == "0150"
    assert refusal(physicalAddress=address | {"postalCode": 150}).startswith("physicalAddress.postalCode")


def test_unknown_fields_are_refused() -> None:
    assert refusal(distribusjonRule="Basic") == "an unknown field at the top level"


ADDRESS = {"fullName": "Kari Nordmann", "addressLine1": "Storgata 1", "postalCode": "0150", "postalPlace": "Oslo"}


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"01039494104": "x"}, "an unknown field at the top level"),
        ({"01039494104": "x", "55019049891": 1}, "2 unknown fields at the top level"),
        ({"physicalAddress": ADDRESS | {"01039494104": "x"}}, "an unknown field in physicalAddress"),
        (
            {"01039494104": "x", "nationalId": "55019049892", "physicalAddress": ADDRESS | {"70090154174": "x"}},
            "nationalId: control digits do not match a fødselsnummer or D-nummer; an unknown field in physicalAddress; "
            "an unknown field at the top level",
        ),
    ],
)
def test_an_unknown_key_is_never_named_it_may_be_a_national_id(overrides: dict, expected: str) -> None:
    """Key names are input: the reason says where the unknown field is, never what it is called."""
    reason = refusal(**overrides)
    assert reason == expected
    for national_id in ("01039494104", "55019049891", "55019049892", "70090154174"):
        assert national_id not in reason


def test_must_be_signed_with_no_distribution_is_refused_with_eproms_wording() -> None:
    assert refusal(mustBeSigned=True, distributionRule="NoDistribution") == MUST_BE_SIGNED_NO_DISTRIBUTION


def test_must_be_signed_on_behalf_of_someone_is_refused_with_eproms_wording() -> None:
    assert refusal(mustBeSigned=True, onBehalfOfNationalId="55019049891") == MUST_BE_SIGNED_ON_BEHALF


def test_expiry_date_must_be_in_the_future() -> None:
    past = (datetime.now(OSLO) - timedelta(minutes=1)).isoformat()
    assert refusal(expiryDate=past) == "expiryDate: must be in the future"


@pytest.mark.parametrize("reference", ["", "x" * 129, "has space", "æøå", "a/b"])
def test_order_reference_shape(reference: str) -> None:
    assert refusal(orderReference=reference).startswith("orderReference: String should")


@pytest.mark.parametrize("reference", ["pasient-26073941651", "26.07.39.41651", "ref:2607-3941651", "0103949-4104"])
def test_an_order_reference_with_a_national_id_standing_alone_is_refused(reference: str) -> None:
    assert (
        refusal(orderReference=reference) == "orderReference: must not contain a national id (it is logged and shared)"
    )


@pytest.mark.parametrize("reference", ["ref-2607394165101", "20260729-394165", "ORD-20390726-041651", "1788739416510"])
def test_an_order_reference_that_is_an_upstreams_number_is_accepted(reference: str) -> None:
    """Eleven digits of a longer number make a valid id now and then: refusing those lost 2-7 % of real orders."""
    assert parse_order(orderReference=reference).order_reference == reference


def test_booleans_are_strict() -> None:
    assert refusal(mustBeSigned="yes").startswith("mustBeSigned: Input should be a valid boolean")


def test_h_nummer_in_order_is_refused_with_eproms_exact_message() -> None:
    assert refusal(nationalId="15499923810") == (
        "nationalId: H-nummer is not supported as national ID. "
        "The national ID must be either Norsk fødselsnummer or D-nummer."
    )


def test_synthetic_ids_follow_the_stage_setting() -> None:
    body = json.dumps(order_message(nationalId="26670271527"))
    with pytest.raises(Unreadable):
        read_order(body, allow_synthetic_national_ids=False, allow_test_mode_orders=False)
    order = read_order(body, allow_synthetic_national_ids=True, allow_test_mode_orders=False)
    assert order.national_id == "26670271527"


def test_no_personal_data_in_refusals_or_reprs() -> None:
    reason = refusal(nationalId="26073941652", onBehalfOfNationalId="1234", metadata="{x")
    assert "26073941652" not in reason and "1234" not in reason
    # a fixed orderReference: a random one holds "76" in about one run of nine
    order = parse_order(orderReference="ref-a", onBehalfOfNationalId="55019049891", metadata={"age": 76})
    assert "26073941651" not in repr(order) and "55019049891" not in repr(order) and "76" not in repr(order)
    response = read_order_answer(json.dumps({"id": str(UUID(int=3)), "singleUseCode": "98765432"}))
    assert "98765432" not in repr(response)
    callback = EpromCallback.model_validate({"formOrderId": str(UUID(int=5)), "apiKey": "k3y", "formData": "svar"})
    assert "k3y" not in repr(callback) and "svar" not in repr(callback)
