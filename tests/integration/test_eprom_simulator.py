"""The ePROM simulator judges orders by ePROM's documented rules (eprom-contract.md, national-id.md), on its own:
requests straight to it over HTTP, and a check that it imports nothing of the product (layers/)."""

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import API_KEY, FORM_ID, NONEXISTENT_NATIONAL_ID, PAPER_FORM_ID, UNPUBLISHED_FORM_ID

from local.eprom_simulator import PvkDefinition, signed_pdf

ROOT = Path(__file__).resolve().parents[2]
NOT_SUPPORTED = "is not supported as national ID. The national ID must be either Norsk fødselsnummer or D-nummer."
# national-id.md's test vectors
ACCEPTED_IDS = [  # and 24108108017, the tests' NONEXISTENT_NATIONAL_ID
    *["26073941651", "01039494104", "17048522718", "03116231939", "29060884348", "20076833487"],
    "30108299939",  # valid only under the 2032 rule
    *["55019049891", "70090154174", "55066830267", "67047311966", "51077580038", "41014061078", "69020025050"],
    *["26670271527", "22676933526", "09727547727", "17848543845", "27828513090", "11847214726"],  # synthetic
]
H_NUMMER = ["15499923810", "15497509707", "06496032258"]
FH_NUMMER = ["81263303652", "94072182892", "81216959396"]
INVALID_IDS = ["12345678901", "17048522719", "03116231930", "3207852271", "1704852271a", 17048522718, None]


def order(**overrides: Any) -> dict[str, Any]:
    """An order body as ePROM's v2 API takes it; overrides replace members (None as a value is sent as null)."""
    return {
        "formId": FORM_ID,
        "nationalId": "26073941651",
        "expiryDate": "2099-12-31T23:59:59+01:00",
        "reminderDate": None,
        "metadata": '{"age": 76}',
        "distributionRule": "Basic",
    } | overrides


def post(eprom, body: Any, key: str = API_KEY, headers: dict[str, str] | None = None) -> requests.Response:
    headers = {"Authorization": f"Basic {key}"} if headers is None else headers
    return requests.post(f"{eprom.base_url}/api/v2/formorder", json=body, headers=headers, timeout=5)


def refusal(eprom, **overrides: Any) -> str:
    answer = post(eprom, order(**overrides))
    assert answer.status_code == 400, answer.text
    return answer.json()["message"]


@pytest.mark.parametrize("national_id", ACCEPTED_IDS)
def test_fodselsnummer_d_nummer_and_synthetic_ids_are_taken(eprom, national_id) -> None:
    answer = post(eprom, order(nationalId=national_id))
    assert answer.status_code == 200 and answer.json()["id"] in eprom.orders


@pytest.mark.parametrize(("kind", "national_id"), [*(("H-nummer", i) for i in H_NUMMER),
                                                   *(("FH-nummer", i) for i in FH_NUMMER)])  # fmt: skip
def test_h_and_fh_nummer_get_eproms_words(eprom, kind, national_id) -> None:
    assert refusal(eprom, nationalId=national_id) == f"nationalId: {kind} {NOT_SUPPORTED}"
    assert refusal(eprom, onBehalfOfNationalId=national_id) == f"onBehalfOfNationalId: {kind} {NOT_SUPPORTED}"


@pytest.mark.parametrize("national_id", INVALID_IDS)
def test_anything_else_is_no_national_id(eprom, national_id) -> None:
    message = refusal(eprom, nationalId=national_id)
    assert message.startswith("nationalId: ") and "fødselsnummer or D-nummer" in message


def test_a_missing_national_id_is_refused(eprom) -> None:
    body = order()
    del body["nationalId"]
    assert post(eprom, body).status_code == 400


@pytest.mark.parametrize("rule", ["NoDistribution", "nodistribution", 2, "2"])
def test_the_distribution_rule_as_name_or_number(eprom, rule) -> None:
    answer = post(eprom, order(distributionRule=rule))
    assert answer.status_code == 200 and answer.json()["singleUseCode"]


@pytest.mark.parametrize("rule", ["Sometimes", 9, -1, True, 2.0, None])
def test_an_unknown_distribution_rule_is_refused(eprom, rule) -> None:
    assert refusal(eprom, distributionRule=rule).startswith("distributionRule: must be one of Basic, AllowUnsecure")


def test_metadata_is_a_string_holding_json(eprom) -> None:
    assert post(eprom, order(metadata=None)).status_code == 200
    assert refusal(eprom, metadata={"age": 76}) == "metadata: must be a string holding JSON"
    assert refusal(eprom, metadata="{age: 76").startswith("JSON in metadata is not valid: ")
    assert refusal(eprom, metadata='{"age": NaN}') == "JSON in metadata is not valid: NaN is not JSON"


@pytest.mark.parametrize(
    ("expiry", "accepted"),
    [("2099-12-31T23:59:59Z", True), ("2099-12-31T23:59:59.1234567", True), ("2020-01-01T00:00:00+01:00", False),
     ("31.12.2099", False), (None, False)],
)  # fmt: skip
def test_the_expiry_date_is_a_date_time_in_the_future(eprom, expiry, accepted) -> None:
    assert post(eprom, order(expiryDate=expiry)).status_code == (200 if accepted else 400)


def test_must_be_signed_rules(eprom) -> None:
    assert refusal(eprom, mustBeSigned=True, distributionRule="NoDistribution") == (
        "The ordered form needs to be signed. This is not possible when using DistributionRule = 'NoDistribution'."
    )
    assert refusal(eprom, mustBeSigned=True, onBehalfOfNationalId="01039494104") == (
        "The ordered form needs to be signed. This is not possible when the form is ordered on behalf of someone."
    )
    assert refusal(eprom, mustBeSigned="yes").startswith("mustBeSigned: ")
    assert post(eprom, order(mustBeSigned=True)).status_code == 200


def test_forms_must_exist_be_published_and_paper_enabled_for_paper_rules(eprom) -> None:
    unknown = str(uuid.uuid4())
    assert refusal(eprom, formId=unknown) == f"No form with id='{unknown}' exists"
    assert refusal(eprom, formId=UNPUBLISHED_FORM_ID) == "The ordered form is not Published"
    for rule in ("BasicOrPaper", "AllowUnsecureOrPaper", "PaperOnly", 5):
        assert refusal(eprom, distributionRule=rule) == f"Form with id='{FORM_ID}' is not paper enabled"
        assert post(eprom, order(formId=PAPER_FORM_ID, distributionRule=rule)).status_code == 200
    assert refusal(eprom, formId="not-a-guid").startswith("formId: ")


def test_a_physical_address_has_string_members(eprom) -> None:
    address = {"fullName": "Kari Nordmann", "addressLine1": "Gate 1", "postalCode": "0150", "postalPlace": "Oslo"}
    assert post(eprom, order(formId=PAPER_FORM_ID, distributionRule="PaperOnly", physicalAddress=address)).ok
    assert refusal(eprom, physicalAddress=address | {"postalCode": 150}).startswith("physicalAddress: ")


def test_a_national_id_that_does_not_exist_gets_the_all_zero_id(eprom) -> None:
    orders = len(eprom.orders)
    answer = post(eprom, order(nationalId=NONEXISTENT_NATIONAL_ID))
    assert answer.status_code == 200 and answer.json()["id"] == "00000000-0000-0000-0000-000000000000"
    assert len(eprom.orders) == orders


@pytest.mark.parametrize("headers", [{"Authorization": "Basic wrong"}, {}, {"Authorization": f"Bearer {API_KEY}"}])
def test_a_wrong_or_missing_key_is_401(eprom, headers) -> None:
    orders = len(eprom.orders)
    assert post(eprom, order(), headers=headers).status_code == 401
    assert len(eprom.orders) == orders


def test_a_body_that_is_not_an_object_is_refused(eprom) -> None:
    assert post(eprom, [order()]).status_code == 400


def test_the_simulator_imports_nothing_of_the_product() -> None:
    """Imported with layers/ off the path (the venv's .pth puts it there): any `eprom` import would fail."""
    check = (
        "import sys\n"
        "sys.path = [p for p in sys.path if not p.rstrip('/').endswith('layers/shared')]\n"
        "import local.eprom_simulator\n"
        "product = sorted(m for m in sys.modules if m == 'eprom' or m.startswith('eprom.'))\n"
        "print(json.dumps(product))\n"
    )
    run = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", "import json\n" + check], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert json.loads(run.stdout) == []


def test_its_signed_pdf_is_signed_as_pdfs_are_an_incremental_update_after_the_first_revision() -> None:
    """So a body cut at the first revision's %%EOF looks whole by its last bytes (what the fetcher must not trust)."""
    pdf = signed_pdf(str(uuid.uuid4()), 30_000)
    assert len(pdf) == 30_000 and pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    first_end = pdf.index(b"%%EOF") + len(b"%%EOF\n")
    assert first_end < len(pdf) and b"/ByteRange" not in pdf[:first_end]  # the signature is in the update
    for part in (pdf[:first_end], pdf):  # each revision's last startxref points at its cross-reference section
        offset = int(part.rsplit(b"startxref", 1)[1].split()[0])
        assert part[offset:].startswith(b"xref")
    start, first_length, second_start, second_length = map(int, pdf.split(b"/ByteRange[")[1].split(b"]")[0].split())
    assert (start, second_start + second_length) == (0, len(pdf))  # the signature covers the whole file...
    assert (
        pdf[first_length : first_length + 1] == b"<" and pdf[second_start - 1 : second_start] == b">"
    )  # ...but /Contents


# --- privacy settings (PVK), eprom-contract.md §8 ---------------------------------------------------------------------

RESERVATION = "b3cda307-154c-4af4-87d3-30567c931924"  # local.stack's definition, with Hemit's example id


def pvk(eprom, call: str, body: Any, key: str = API_KEY) -> requests.Response:
    return requests.post(f"{eprom.base_url}/api/v2/{call}", json=body, headers={"Authorization": f"Basic {key}"},
                         timeout=5)  # fmt: skip


@pytest.mark.parametrize(
    ("call", "body", "message"),
    [
        ("getpersonverninnstilling", {"type": 0, "pvkId": RESERVATION}, "nationalId"),
        ("getpersonverninnstilling", {"nationalId": "2607394165", "type": 0, "pvkId": RESERVATION}, "nationalId"),
        ("getpersonverninnstilling", {"nationalId": "26073941651", "pvkId": RESERVATION}, "type"),
        ("setpersonverninnstilling", {"nationalId": "26073941651", "type": 0, "pvkId": RESERVATION}, "status"),
    ],
)
def test_pvk_400s_are_the_documented_ones_with_the_error_body(eprom, call, body, message) -> None:
    answer = pvk(eprom, call, body)
    assert answer.status_code == 400
    assert set(answer.json()) == {"statusCode", "status", "message"} and answer.json()["statusCode"] == 400
    assert message in answer.json()["message"]


def test_pvk_calls_take_only_the_raw_key_and_codes_by_name_or_number(eprom) -> None:
    body = {"nationalId": "26073941651", "type": "Reservasjon", "pvkId": RESERVATION, "status": 1}
    assert pvk(eprom, "setpersonverninnstilling", body, key="wrong").status_code == 401
    assert pvk(eprom, "setpersonverninnstilling", body).json() == {"instansEndret": "Endret"}
    assert pvk(eprom, "setpersonverninnstilling", body | {"status": "aktiv"}).json() == {"instansEndret": "IkkeEndret"}
    got = pvk(eprom, "getpersonverninnstilling", body | {"type": 0}).json()
    assert (got["status"], got["sequenceNumber"], got["id"]) == ("Aktiv", 1, RESERVATION)


def test_an_unknown_definition_is_pvk_failing_with_502(eprom) -> None:
    answer = pvk(
        eprom, "getpersonverninnstilling", {"nationalId": "26073941651", "type": 0, "pvkId": str(uuid.uuid4())}
    )
    assert answer.status_code == 502 and answer.json()["statusCode"] == 502


def test_the_residents_list_pages_with_capitalised_members_until_the_reference_is_0(eprom) -> None:
    eprom.config.pvk_definitions = {RESERVATION: PvkDefinition("Reservasjon mot registrering", 0, 2001)}
    pages, reference = [], 0
    while True:
        page = pvk(
            eprom, "get-residents-active-pi-for-definition", {"pvkId": RESERVATION, "pagingReference": reference}
        )
        pages.append(page.json()["personvernInnstillinger"])
        reference = page.json()["pagingReference"]
        if reference == 0:
            break
    assert [len(page) for page in pages] == [1000, 1000, 1]
    assert set(pages[0][0]) == {"NationalId", "SequenceNumber", "createdDateTimeOffset", "lastChangedDateTimeOffset"}
    residents = [entry["NationalId"] for page in pages for entry in page]
    assert len(set(residents)) == 2001 and all(len(national_id) == 11 for national_id in residents)
    eprom.config.pvk_part_code = None
    answer = pvk(eprom, "get-residents-active-pi-for-definition", {"pvkId": RESERVATION, "pagingReference": 0})
    assert answer.status_code == 400 and "PvkPart" in answer.json()["message"]


@pytest.mark.parametrize(("where", "expected"), [("authorization", {"Authorization": f"Basic {API_KEY}"}),
                                                 ("apikey", {"ApiKey": API_KEY}), ("body", {})])  # fmt: skip
def test_a_change_on_helsenorge_is_forwarded_with_the_key_where_configured(eprom, where, expected) -> None:
    eprom.config.privacy_callback_key_in = where
    eprom.config.callback_max_attempts = 1  # nobody to call back here: not sent again to a later test's front
    answer = requests.post(f"{eprom.base_url}/_simulator/privacy-change", timeout=5,
                           json={"nationalId": "26073941651", "pvkId": RESERVATION, "status": "RES"})  # fmt: skip
    assert answer.status_code == 202
    callback = eprom.callbacks[-1]
    assert callback.path == "/api/PersonvernInnstilling" and callback.headers == expected
    assert callback.payload == ({"apiKey": API_KEY} if where == "body" else {}) | {
        "nationalId": "26073941651",
        "id": RESERVATION,
        "name": "Reservasjon mot registrering",
        "status": "RES",
    }
    got = pvk(eprom, "getpersonverninnstilling", {"nationalId": "26073941651", "type": 0, "pvkId": RESERVATION})
    assert got.json()["status"] == "Aktiv"  # PVK holds the person's change
