"""HubSpot events, one fixture each, normalized to the whole event they describe (what
fixtures/SOURCES.md says each one is). HubSpot posts an array of events; the service hands
each array item to the normalizer, so these fixtures are single events: the array items
as HubSpot sends them. The arrays as published (the docs' batch, its signature example,
Snowplow's and Prismatic's captures) are in BATCHES, for test_hubspot_batch.py.

The life_* fixtures are one ticket's life, in order: test_hubspot_history.py posts them
through the service."""

from __future__ import annotations

import json

import pytest
from normalizing import fixture_tests, load, plain
from signing import fixture

from ingestion.errors import InvalidField, UnreadableBody
from ingestion.vendors import hubspot

CASES = {'documented_association_removed_contact_side': {'external_id': '17395620143',
                                                 'account': '62515',
                                                 'event_type': 'ticket.associationChange',
                                                 'vendor_event_id': '4100000023',
                                                 'fields': {'vendor_updated_at': '2026-03-02T09:22:00+00:00'},
                                                 'comment': None,
                                                 'changes': {'associations': {'added': [],
                                                                              'removed': [{'type': 'CONTACT_TO_TICKET',
                                                                                           'id': '316126906049'}]}}},
 'documented_eventtype_priority_urgent': {'external_id': '17395620143',
                                          'account': '62515',
                                          'event_type': 'ticket.propertyChange',
                                          'vendor_event_id': '4100000021',
                                          'fields': {'priority': 'urgent',
                                                     'vendor_updated_at': '2026-03-02T10:31:00+00:00'},
                                          'comment': None,
                                          'changes': {'priority': {'previous': None, 'current': 'urgent'}}},
 'documented_merge_into_new_record': {'external_id': '17395620199',
                                      'account': '62515',
                                      'event_type': 'ticket.merge',
                                      'vendor_event_id': '4100000020',
                                      'fields': {'vendor_updated_at': '2026-03-02T10:30:00+00:00'},
                                      'comment': None,
                                      'changes': {'merged_ticket_ids': {'previous': None,
                                                                        'current': ['17395620150', '17395620143']}}},
 'generic_object_ticket_subject': {'external_id': '17395620143',
                                   'account': '62515',
                                   'event_type': 'object.propertyChange',
                                   'vendor_event_id': '4100000022',
                                   'fields': {'subject': 'Invoice PDF blank in every browser',
                                              'vendor_updated_at': '2026-03-02T10:32:00+00:00'},
                                   'comment': None,
                                   'changes': {'subject': {'previous': None,
                                                           'current': 'Invoice PDF blank in every browser'}}},
 'life_01_creation': {'external_id': '17395620143',
                      'account': '62515',
                      'event_type': 'ticket.creation',
                      'vendor_event_id': '4100000001',
                      'fields': {'vendor_created_at': '2026-03-02T09:00:00+00:00',
                                 'vendor_updated_at': '2026-03-02T09:00:00+00:00'},
                      'comment': None,
                      'changes': None},
 'life_02_subject': {'external_id': '17395620143',
                     'account': '62515',
                     'event_type': 'ticket.propertyChange',
                     'vendor_event_id': '4100000002',
                     'fields': {'subject': 'Invoice PDF will not download',
                                'vendor_updated_at': '2026-03-02T09:00:00+00:00'},
                     'comment': None,
                     'changes': {'subject': {'previous': None, 'current': 'Invoice PDF will not download'}}},
 'life_03_content': {'external_id': '17395620143',
                     'account': '62515',
                     'event_type': 'ticket.propertyChange',
                     'vendor_event_id': '4100000003',
                     'fields': {'description': 'Clicking “Download PDF” on invoice INV-2207 shows a blank page.\n'
                                               'Tried Firefox and Chrome.',
                                'vendor_updated_at': '2026-03-02T09:00:00+00:00'},
                     'comment': None,
                     'changes': {'description': {'previous': None,
                                                 'current': 'Clicking “Download PDF” on invoice INV-2207 shows a '
                                                            'blank page.\n'
                                                            'Tried Firefox and Chrome.'}}},
 'life_04_priority_high': {'external_id': '17395620143',
                           'account': '62515',
                           'event_type': 'ticket.propertyChange',
                           'vendor_event_id': '4100000004',
                           'fields': {'priority': 'high', 'vendor_updated_at': '2026-03-02T09:02:00+00:00'},
                           'comment': None,
                           'changes': {'priority': {'previous': None, 'current': 'high'}}},
 'life_05_owner': {'external_id': '17395620143',
                   'account': '62515',
                   'event_type': 'ticket.propertyChange',
                   'vendor_event_id': '4100000005',
                   'fields': {'assignee_id': '84916424', 'vendor_updated_at': '2026-03-02T09:03:00+00:00'},
                   'comment': None,
                   'changes': {'assignee_id': {'previous': None, 'current': '84916424'}}},
 'life_06_category': {'external_id': '17395620143',
                      'account': '62515',
                      'event_type': 'ticket.propertyChange',
                      'vendor_event_id': '4100000006',
                      'fields': {'type': 'product_issue', 'vendor_updated_at': '2026-03-02T09:03:00+00:00'},
                      'comment': None,
                      'changes': {'type': {'previous': None, 'current': 'product_issue'}}},
 'life_07_stage_waiting_on_contact': {'external_id': '17395620143',
                                      'account': '62515',
                                      'event_type': 'ticket.propertyChange',
                                      'vendor_event_id': '4100000007',
                                      'fields': {'status': 'waiting on contact',
                                                 'vendor_updated_at': '2026-03-02T09:20:00+00:00'},
                                      'comment': None,
                                      'changes': {'status': {'previous': None, 'current': 'waiting on contact'}}},
 'life_08_custom_property': {'external_id': '17395620143',
                             'account': '62515',
                             'event_type': 'ticket.propertyChange',
                             'vendor_event_id': '4100000008',
                             'fields': {'custom_fields': {'hs_pipeline': '0'},
                                        'vendor_updated_at': '2026-03-02T09:21:00+00:00'},
                             'comment': None,
                             'changes': {'custom_fields': {'hs_pipeline': {'previous': None, 'current': '0'}}}},
 'life_09_association_contact': {'external_id': '17395620143',
                                 'account': '62515',
                                 'event_type': 'ticket.associationChange',
                                 'vendor_event_id': '4100000009',
                                 'fields': {'vendor_updated_at': '2026-03-02T09:22:00+00:00'},
                                 'comment': None,
                                 'changes': {'associations': {'added': [{'type': 'TICKET_TO_CONTACT',
                                                                         'id': '316126906049'}],
                                                              'removed': []}}},
 'life_10_stage_closed': {'external_id': '17395620143',
                          'account': '62515',
                          'event_type': 'ticket.propertyChange',
                          'vendor_event_id': '4100000010',
                          'fields': {'status': 'closed', 'vendor_updated_at': '2026-03-02T09:45:00+00:00'},
                          'comment': None,
                          'changes': {'status': {'previous': None, 'current': 'closed'}}},
 'life_11_owner_cleared': {'external_id': '17395620143',
                           'account': '62515',
                           'event_type': 'ticket.propertyChange',
                           'vendor_event_id': '4100000011',
                           'fields': {'assignee_id': None, 'vendor_updated_at': '2026-03-02T09:46:00+00:00'},
                           'comment': None,
                           'changes': {'assignee_id': {'previous': None, 'current': None}}},
 'life_12_deletion': {'external_id': '17395620143',
                      'account': '62515',
                      'event_type': 'ticket.deletion',
                      'vendor_event_id': '4100000012',
                      'fields': {'vendor_updated_at': '2026-03-02T10:00:00+00:00'},
                      'comment': None,
                      'changes': None,
                      'deletion': 'soft'},
 'life_13_restore': {'external_id': '17395620143',
                     'account': '62515',
                     'event_type': 'ticket.restore',
                     'vendor_event_id': '4100000013',
                     'fields': {'vendor_updated_at': '2026-03-02T10:01:00+00:00'},
                     'comment': None,
                     'changes': None,
                     'deletion': 'restored'},
 'sim_ticket_creation': {'external_id': '316126906070',
                         'account': '244315265',
                         'event_type': 'ticket.creation',
                         'vendor_event_id': '3181526830',
                         'fields': {'vendor_created_at': '2025-11-09T03:33:33.730000+00:00',
                                    'vendor_updated_at': '2025-11-09T03:33:33.730000+00:00'},
                         'comment': None,
                         'changes': None},
 'sim_ticket_deletion': {'external_id': '316126906070',
                         'account': '244315265',
                         'event_type': 'ticket.deletion',
                         'vendor_event_id': '3181526831',
                         'fields': {'vendor_updated_at': '2025-11-09T03:33:33.730000+00:00'},
                         'comment': None,
                         'changes': None,
                         'deletion': 'soft'},
 'sim_ticket_merge': {'external_id': '516126906049',
                      'account': '244315265',
                      'event_type': 'ticket.merge',
                      'vendor_event_id': '3181526817',
                      'fields': {'vendor_updated_at': '2025-11-09T03:33:33.730000+00:00'},
                      'comment': None,
                      'changes': {'merged_ticket_ids': {'previous': None, 'current': ['516126906050']}}},
 'sim_ticket_propertychange_hs_pipeline_stage': {'external_id': '316126906070',
                                                 'account': '244315265',
                                                 'event_type': 'ticket.propertyChange',
                                                 'vendor_event_id': '3181526832',
                                                 'fields': {'status': 'closed',
                                                            'vendor_updated_at': '2025-11-09T03:33:33.730000+00:00'},
                                                 'comment': None,
                                                 'changes': {'status': {'previous': None, 'current': 'closed'}}},
 'sim_ticket_restore': {'external_id': '516126906049',
                        'account': '244315265',
                        'event_type': 'ticket.restore',
                        'vendor_event_id': '3181526818',
                        'fields': {'vendor_updated_at': '2025-11-09T03:33:33.730000+00:00'},
                        'comment': None,
                        'changes': None,
                        'deletion': 'restored'}}

REJECTED = {
    "missing_object_id": "objectId",  # a ticket event without its ticket
    "float_object_id": "objectId",  # 316126906070.0: never a float, ids pass 2^53 one day
    "property_change_without_property": "propertyName",
    "missing_occurred_at": "occurredAt",  # nothing would order it
    "missing_subscription_type": "subscriptionType",  # neither subscriptionType nor eventType
}

IGNORED = ['sesam_company_creation',
 'sesam_company_deletion_attempt5',
 'sesam_company_propertychange_twitterhandle',
 'sim_company_merge',
 'sim_contact_privacy_deletion',
 'sim_contact_propertychange_lifecyclestage',
 'sim_conversation_newmessage',
 'sim_conversation_propertychange_status',
 'sim_deal_creation',
 'sim_deal_propertychange_dealstage']

#: The delivery bodies as HubSpot posts them (arrays), published so.
BATCHES = ["hubspot_docs_batch_contact_propertychange_and_creation",
           "hubspot_docs_v1_signature_example_contact_creation",
           "snowplow_enrich_contact_creation", "prismatic_contact_creation_crm_ui"]

#: HubSpot names every event in its body: no fixture needs a header.
HEADERS: dict[str, dict[str, str]] = {}

(test_each_fixture_normalizes_to_the_whole_event_it_describes,
 test_each_unusable_fixture_is_refused_naming_the_field,
 test_each_authentic_event_not_about_a_ticket_normalizes_to_nothing) = fixture_tests(hubspot, CASES, REJECTED, IGNORED,
                                                                                    HEADERS)


def event(case: str, **changed) -> dict:
    """A fixture's event with some keys changed (None removes the key)."""
    body = {**load("hubspot", case), **changed}
    return {key: value for key, value in body.items() if value is not None}


# --- the batch: what the service hands the normalizer ------------------------------------
@pytest.mark.parametrize("case", BATCHES)
def test_each_published_array_is_a_batch_of_its_events(case):
    body = load("hubspot", case)
    assert isinstance(body, list)
    assert list(hubspot.batch(body)) == body


def test_every_event_of_the_docs_batch_is_authentic_and_none_is_about_a_ticket():
    """The docs' example names the event `eventType`: read like `subscriptionType`."""
    events = hubspot.batch(load("hubspot", "hubspot_docs_batch_contact_propertychange_and_creation"))
    assert [e["eventType"] for e in events] == ["contact.propertyChange", "contact.creation"]
    assert [hubspot.normalize(e, {}) for e in events] == [None, None]


def test_a_single_event_object_is_not_a_batch():
    assert hubspot.batch(load("hubspot", "life_01_creation")) is None


@pytest.mark.parametrize("body, field", [
    ([{"subscriptionType": "ticket.creation"}, "ticket.creation"], "[1]"),
    ([[]], "[0]"),
    ([None], "[0]"),
    ("ticket.creation", "body"),
    (42, "body"),
])
def test_a_batch_holding_anything_but_events_is_refused_naming_the_item(body, field):
    with pytest.raises(InvalidField) as refused:
        hubspot.batch(body)
    assert refused.value.field == field


def test_an_empty_array_is_refused_like_an_empty_body():
    with pytest.raises(UnreadableBody) as refused:
        hubspot.batch([])
    assert (refused.value.status, refused.value.reason) == (400, "empty")


# --- the account: portalId -----------------------------------------------------------------
def test_the_account_is_the_portal_each_event_and_each_batch_names():
    assert hubspot.claimed_accounts(load("hubspot", "life_01_creation"), {}) == ("62515",)
    assert hubspot.claimed_accounts(load("hubspot", "hubspot_docs_batch_contact_propertychange_and_creation"),
                                    {}) == ("33",)
    mixed = [load("hubspot", "life_01_creation"), load("hubspot", "sim_ticket_creation")]
    assert hubspot.claimed_accounts(mixed, {}) == ("62515", "244315265")


@pytest.mark.parametrize("portal", [None, "", "0", "062515", True, 1.5, "6 2515", "1" * 20, "٣٣", {"id": 3}])
def test_only_a_portal_id_in_digits_is_a_claim(portal):
    assert hubspot.claimed_accounts(event("life_01_creation", portalId=portal), {}) == ()
    assert hubspot.claimed_accounts([event("life_01_creation", portalId=portal), "not an event"], {}) == ()


def test_the_url_account_wins_over_the_portal_and_an_event_without_one_has_none():
    assert hubspot.normalize(load("hubspot", "life_01_creation"), {}, "acme").account == "acme"
    assert hubspot.normalize(event("life_01_creation", portalId=None), {}).account == ""


@pytest.mark.parametrize("account, is_id", [("62515", True), ("244315265", True), ("acme", False), ("0", False),
                                            ("0123", False), ("9" * 19, True), ("9" * 20, False), ("", False)])
def test_an_account_named_by_its_portal_id_is_written_in_digits(account, is_id):
    assert hubspot.is_account_id(account) is is_id


# --- stage names ---------------------------------------------------------------------------
class Settings:
    def __init__(self, names):
        self.names = names

    def code_names(self, variable):
        assert variable == "HUBSPOT_STATUS_NAMES"
        return self.names


def test_the_portals_own_stage_names_replace_and_extend_the_defaults():
    tuned = hubspot.normalizer(Settings({"4": "resolved", "87654321": "escalated"}))
    stage = lambda value: tuned(event("life_10_stage_closed", propertyValue=value), {}, None).fields["status"]
    assert [stage(v) for v in ("1", "2", "3", "4", "87654321", "99999999", " 4 ")] == [
        "new", "waiting on contact", "waiting on us", "resolved", "escalated", "99999999", "resolved"]


def test_the_vendor_declares_its_stage_names_variable():
    assert hubspot.VENDOR.code_names == ("HUBSPOT_STATUS_NAMES",)
    assert hubspot.VENDOR.normalizer(Settings({})) is not hubspot.normalize


# --- property changes ----------------------------------------------------------------------
@pytest.mark.parametrize("name, value, fields", [
    ("hs_pipeline_stage", "", {"status": None}),  # cleared
    ("hs_ticket_priority", "Medium", {"priority": "medium"}),
    ("hs_ticket_priority", None, {"priority": None}),
    ("hubspot_owner_id", "0", {"assignee_id": None}),
    ("hs_ticket_category", "BILLING_ISSUE;GENERAL_INQUIRY", {"type": "billing_issue;general_inquiry"}),
    ("subject", "", {"subject": None}),
    ("hs_custom_region", "EMEA", {"custom_fields": {"hs_custom_region": "EMEA"}}),
    ("hs_custom_region", "", {"custom_fields": {"hs_custom_region": None}}),
    ("hs_custom_flag", True, {"custom_fields": {"hs_custom_flag": True}}),
])
def test_each_property_reads_as_its_field(name, value, fields):
    changed = hubspot.normalize(event("life_02_subject", propertyName=name, propertyValue=value), {})
    assert {k: v for k, v in changed.fields.items() if k != "vendor_updated_at"} == fields


def test_an_absent_value_is_a_cleared_property():
    """Java serializers leave nulls out: no propertyValue is no value."""
    body = {k: v for k, v in load("hubspot", "life_05_owner").items() if k != "propertyValue"}
    assert hubspot.normalize(body, {}).fields["assignee_id"] is None


@pytest.mark.parametrize("changed, field", [
    ({"propertyName": ""}, "propertyName"),
    ({"propertyName": 7}, "propertyName"),
    ({"propertyName": "x" * 201}, "propertyName"),
    ({"propertyName": "bad\x00name"}, "propertyName"),
    ({"propertyValue": {"value": "x"}}, "propertyValue"),
    ({"propertyName": "hs_custom", "propertyValue": ["a"]}, "propertyValue"),
    ({"propertyValue": "nul\x00"}, "propertyValue"),
    ({"propertyName": "hubspot_owner_id", "propertyValue": {"id": 1}}, "propertyValue"),
])
def test_an_unreadable_property_change_is_refused_naming_the_field(changed, field):
    with pytest.raises(InvalidField) as refused:
        hubspot.normalize(event("life_02_subject", **changed), {})
    assert refused.value.field == field


# --- the event and its time ----------------------------------------------------------------
@pytest.mark.parametrize("changed, field", [
    ({"subscriptionType": ""}, "subscriptionType"),
    ({"subscriptionType": 5}, "subscriptionType"),
    ({"subscriptionType": None, "eventType": ["ticket.creation"]}, "eventType"),
    ({"occurredAt": "yesterday"}, "occurredAt"),
    ({"occurredAt": 1.7e12}, "occurredAt"),
    ({"occurredAt": True}, "occurredAt"),
    ({"occurredAt": 10 ** 20}, "occurredAt"),
    ({"occurredAt": "9" * 5000}, "occurredAt"),  # past int()'s 4300 digits: a 500, the delivery lost
    ({"objectId": "{{ticket.id}}"}, "objectId"),
    ({"objectId": True}, "objectId"),
])
def test_an_unusable_ticket_event_is_refused_naming_the_field(changed, field):
    with pytest.raises(InvalidField) as refused:
        hubspot.normalize(event("life_01_creation", **changed), {})
    assert refused.value.field == field


def test_occurred_at_may_come_as_digits_and_is_milliseconds():
    assert plain(hubspot.normalize(event("life_01_creation", occurredAt="1772442000000"), {}))["fields"][
        "vendor_updated_at"] == "2026-03-02T09:00:00+00:00"
    early = hubspot.normalize(event("life_01_creation", occurredAt=86_400_000), {})
    assert early.fields["vendor_updated_at"].isoformat() == "1970-01-02T00:00:00+00:00"  # never read as seconds


@pytest.mark.parametrize("value, kept", [(3181526830, "3181526830"), ("abc-1", "abc-1"), (None, None), (True, None),
                                         ("", None), ("x" * 201, None), ({"id": 1}, None), ("bad\x00", None)])
def test_the_event_id_is_the_vendor_event_id_when_it_can_be_one(value, kept):
    assert hubspot.normalize(event("life_01_creation", eventId=value), {}).vendor_event_id == kept


def test_an_unknown_ticket_event_is_still_about_its_ticket():
    found = hubspot.normalize(event("life_01_creation", subscriptionType="ticket.privacyDeletion"), {})
    assert (found.external_id, found.event_type, found.deletion, found.changes) == (
        "17395620143", "ticket.privacyDeletion", None, None)


@pytest.mark.parametrize("type_id", ["0-1", "0-3", None, 5])
def test_a_generic_object_event_of_another_type_is_not_about_a_ticket(type_id):
    assert hubspot.normalize(event("generic_object_ticket_subject", objectTypeId=type_id), {}) is None


@pytest.mark.parametrize("kind", ["contact.associationChange", "deal.associationChange", "company.associationChange"])
def test_another_objects_side_of_a_ticket_association_is_ignored(kind):
    """The ticket.associationChange subscription delivers the ticket's side itself."""
    body = event("documented_association_removed_contact_side", subscriptionType=kind)
    assert hubspot.normalize(body, {}) is None


# --- merges and associations ---------------------------------------------------------------
def test_a_merge_without_merged_ids_names_only_its_survivor():
    merged = hubspot.normalize(event("sim_ticket_merge", mergedObjectIds=None), {})
    assert (merged.external_id, merged.changes) == (
        "516126906049", {"merged_ticket_ids": {"previous": None, "current": []}})


def test_a_merge_into_the_primary_ticket_is_stored_on_it():
    merged = hubspot.normalize(event("documented_merge_into_new_record", newObjectId=None), {})
    assert (merged.external_id, merged.changes["merged_ticket_ids"]["current"]) == ("17395620143", ["17395620150"])


@pytest.mark.parametrize("changed, field", [
    ({"mergedObjectIds": "17395620150"}, "mergedObjectIds"),
    ({"mergedObjectIds": [17395620150, None]}, "mergedObjectIds[1]"),
    ({"newObjectId": None, "primaryObjectId": None, "objectId": None}, "objectId"),
    ({"newObjectId": 1.5}, "newObjectId"),
])
def test_an_unreadable_merge_is_refused_naming_the_field(changed, field):
    with pytest.raises(InvalidField) as refused:
        hubspot.normalize(event("documented_merge_into_new_record", **changed), {})
    assert refused.value.field == field


def test_a_ticket_to_ticket_link_is_stored_on_the_from_side():
    linked = hubspot.normalize(event("life_09_association_contact", associationType="TICKET_TO_TICKET",
                                     toObjectId=17395620150), {})
    assert (linked.external_id, linked.changes) == ("17395620143", {"associations": {
        "added": [{"type": "TICKET_TO_TICKET", "id": "17395620150"}], "removed": []}})


def test_an_association_of_an_unnamed_type_falls_back_on_the_object_id():
    linked = hubspot.normalize(event("life_09_association_contact", associationType=None, objectId=17395620143), {})
    assert (linked.external_id, linked.changes["associations"]["added"]) == (
        "17395620143", [{"type": None, "id": None}])


@pytest.mark.parametrize("changed, field", [
    ({"associationType": 3}, "associationType"),
    ({"associationType": "CONTACT_TO_COMPANY"}, "associationType"),
    ({"associationType": None}, "associationType"),
    ({"fromObjectId": None}, "fromObjectId"),
    ({"toObjectId": "a b"}, "toObjectId"),
])
def test_an_unreadable_association_is_refused_naming_the_field(changed, field):
    with pytest.raises(InvalidField) as refused:
        hubspot.normalize(event("life_09_association_contact", **changed), {})
    assert refused.value.field == field


# --- the signature -------------------------------------------------------------------------
def test_the_fixtures_kept_byte_exact_are_hubspots_signed_bytes():
    """The docs' v1 example: its hash (secret yyyy...) is published, so the bytes are HubSpot's."""
    import hashlib

    body = fixture("hubspot", "hubspot_docs_v1_signature_example_contact_creation")
    assert hashlib.sha256(b"yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy" + body).hexdigest() == (
        "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de")
    assert json.loads(body)[0]["subscriptionType"] == "contact.creation"
