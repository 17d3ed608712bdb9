"""Front payloads, one fixture each, normalized to the whole event they describe (what
fixtures/SOURCES.md says each one is). Rule webhooks send the Event itself (`rule_*`);
application webhooks wrap it in an envelope (`app_*`); `derived_*` are real bodies with a
part taken out, for the paths Front's samples do not show.

Two conversations' lives are among them, in the order Front emitted them (the history
test posts them through the service): cnv_keocka from the inbound message to its
reassignment, and cnv_keo696 from its draft to its trash and back."""

from __future__ import annotations

import copy

import pytest
from normalizing import fixture_tests, load, plain

from ingestion.errors import InvalidField
from ingestion.vendors import front

CASES = {'rule_inbound_message_full': {'external_id': 'cnv_keocka',
                               'account': '',
                               'event_type': 'inbound',
                               'vendor_event_id': 'evt_28duo2q',
                               'fields': {'subject': 'Being a robot is great, but...',
                                          'status': 'unassigned',
                                          'tags': [],
                                          'vendor_created_at': '2018-02-11T00:33:23.872000+00:00',
                                          'assignee_name': None,
                                          'assignee_email': None,
                                          'assignee_id': None,
                                          'requester_email': 'calculon@momsbot.com',
                                          'requester_id': 'crd_62euuy',
                                          'group': 'Support@',
                                          'vendor_updated_at': '2018-02-11T00:33:20+00:00'},
                               'comment': ["<div>We don't have emotions, and sometimes that makes me very "
                                           'sad.</div>',
                                           'calculon@momsbot.com',
                                           True],
                               'changes': None},
 'rule_tag_added': {'external_id': 'cnv_keocka',
                    'account': '',
                    'event_type': 'tag',
                    'vendor_event_id': 'evt_28duooi',
                    'fields': {'subject': 'Being a robot is great, but...',
                               'status': 'unassigned',
                               'tags': ['Urgent'],
                               'vendor_created_at': '2018-02-11T00:33:23.872000+00:00',
                               'assignee_name': None,
                               'assignee_email': None,
                               'assignee_id': None,
                               'requester_email': 'calculon@momsbot.com',
                               'requester_id': 'crd_62euuy',
                               'vendor_updated_at': '2018-02-11T00:33:59.379000+00:00'},
                    'comment': None,
                    'changes': {'tags': {'previous': [], 'current': ['Urgent']}}},
 'rule_assign_self_on_reply': {'external_id': 'cnv_keocka',
                               'account': '',
                               'event_type': 'assign',
                               'vendor_event_id': 'evt_28dupte',
                               'fields': {'subject': 'Being a robot is great, but...',
                                          'status': 'assigned',
                                          'tags': ['Urgent'],
                                          'vendor_created_at': '2018-02-11T00:33:23.872000+00:00',
                                          'assignee_name': 'Leela Turanga',
                                          'assignee_email': 'leela@planet-express.com',
                                          'assignee_id': 'tea_40yq',
                                          'requester_email': 'calculon@momsbot.com',
                                          'requester_id': 'crd_62euuy',
                                          'vendor_updated_at': '2018-02-11T00:35:27.693000+00:00'},
                               'comment': None,
                               'changes': None},
 'rule_out_reply_message': {'external_id': 'cnv_keocka',
                            'account': '',
                            'event_type': 'out_reply',
                            'vendor_event_id': 'evt_28duq42',
                            'fields': {'subject': 'Re: Being a robot is great, but...',
                                       'status': 'assigned',
                                       'tags': ['Urgent'],
                                       'vendor_created_at': '2018-02-11T00:33:23.872000+00:00',
                                       'assignee_name': 'Leela Turanga',
                                       'assignee_email': 'leela@planet-express.com',
                                       'assignee_id': 'tea_40yq',
                                       'requester_email': 'calculon@momsbot.com',
                                       'requester_id': 'crd_62euuy',
                                       'group': 'Support@',
                                       'vendor_updated_at': '2018-02-11T00:35:42.896000+00:00'},
                            'comment': ['<div>Emotions are dumb and should be hated.</div>', 'Leela Turanga', True],
                            'changes': None},
 'rule_untag_removed': {'external_id': 'cnv_keocka',
                        'account': '',
                        'event_type': 'untag',
                        'vendor_event_id': 'evt_28dut36',
                        'fields': {'subject': 'Re: Being a robot is great, but...',
                                   'status': 'assigned',
                                   'tags': [],
                                   'vendor_created_at': '2018-02-11T00:33:23.872000+00:00',
                                   'assignee_name': 'Leela Turanga',
                                   'assignee_email': 'leela@planet-express.com',
                                   'assignee_id': 'tea_40yq',
                                   'requester_email': 'calculon@momsbot.com',
                                   'requester_id': 'crd_62euuy',
                                   'vendor_updated_at': '2018-02-11T00:39:28.454000+00:00'},
                        'comment': None,
                        'changes': {'tags': {'previous': ['Urgent'], 'current': []}}},
 'rule_mention_teammate_comment': {'external_id': 'cnv_keocka',
                                   'account': '',
                                   'event_type': 'mention',
                                   'vendor_event_id': 'evt_28duv9e',
                                   'fields': {'subject': 'Re: Being a robot is great, but...',
                                              'status': 'assigned',
                                              'tags': [],
                                              'vendor_created_at': '2018-02-11T00:33:23.872000+00:00',
                                              'assignee_name': 'Leela Turanga',
                                              'assignee_email': 'leela@planet-express.com',
                                              'assignee_id': 'tea_40yq',
                                              'requester_email': 'calculon@momsbot.com',
                                              'requester_id': 'crd_62euuy',
                                              'vendor_updated_at': '2018-02-11T00:42:01.065000+00:00'},
                                   'comment': ['@bender Could you take it from here?', 'Leela Turanga', False],
                                   'changes': None},
 'rule_comment_full': {'external_id': 'cnv_keocka',
                       'account': '',
                       'event_type': 'comment',
                       'vendor_event_id': 'evt_28duvr6',
                       'fields': {'subject': 'Re: Being a robot is great, but...',
                                  'status': 'assigned',
                                  'tags': [],
                                  'vendor_created_at': '2018-02-11T00:33:23.872000+00:00',
                                  'assignee_name': 'Leela Turanga',
                                  'assignee_email': 'leela@planet-express.com',
                                  'assignee_id': 'tea_40yq',
                                  'requester_email': 'calculon@momsbot.com',
                                  'requester_id': 'crd_62euuy',
                                  'vendor_updated_at': '2018-02-11T00:42:29.673000+00:00'},
                       'comment': ['Sure.', 'Bender Rodriguez', False],
                       'changes': None},
 'rule_assign_teammate_to_other': {'external_id': 'cnv_keocka',
                                   'account': '',
                                   'event_type': 'assign',
                                   'vendor_event_id': 'evt_28duxju',
                                   'fields': {'subject': 'Re: Being a robot is great, but...',
                                              'status': 'assigned',
                                              'tags': [],
                                              'vendor_created_at': '2018-02-11T00:33:23.872000+00:00',
                                              'assignee_name': 'Bender Rodriguez',
                                              'assignee_email': 'bender@planet-express.com',
                                              'assignee_id': 'tea_40z6',
                                              'requester_email': 'calculon@momsbot.com',
                                              'requester_id': 'crd_62euuy',
                                              'vendor_updated_at': '2018-02-11T00:45:07.474000+00:00'},
                                   'comment': None,
                                   'changes': None},
 'rule_assign_by_rule_source': {'external_id': 'cnv_keocka',
                                'account': '',
                                'event_type': 'assign',
                                'vendor_event_id': 'evt_28duxju',
                                'fields': {'subject': 'Re: Being a robot is great, but...',
                                           'status': 'assigned',
                                           'tags': [],
                                           'vendor_created_at': '2018-02-11T00:33:23.872000+00:00',
                                           'assignee_name': 'Bender Rodriguez',
                                           'assignee_email': 'bender@planet-express.com',
                                           'assignee_id': 'tea_40z6',
                                           'requester_email': 'calculon@momsbot.com',
                                           'requester_id': 'crd_62euuy',
                                           'vendor_updated_at': '2018-02-11T00:45:07.474000+00:00'},
                                'comment': None,
                                'changes': None},
 'rule_assign_on_new_draft_status_invisible': {'external_id': 'cnv_keo696',
                                               'account': '',
                                               'event_type': 'assign',
                                               'vendor_event_id': 'evt_28du6my',
                                               'fields': {'subject': None,
                                                          'status': 'invisible',
                                                          'tags': [],
                                                          'vendor_created_at': '2018-02-11T00:11:14.673000+00:00',
                                                          'assignee_name': 'Leela Turanga',
                                                          'assignee_email': 'leela@planet-express.com',
                                                          'assignee_id': 'tea_40yq',
                                                          'requester_email': 'calculon@momsbot.com',
                                                          'requester_id': 'crd_62euuy',
                                                          'vendor_updated_at': '2018-02-11T00:11:34.354000+00:00'},
                                               'comment': None,
                                               'changes': None},
 'rule_outbound_new_message': {'external_id': 'cnv_keo696',
                               'account': '',
                               'event_type': 'outbound',
                               'vendor_event_id': 'evt_28du6wi',
                               'fields': {'subject': 'Your next delivery is on Epsilon 96Z',
                                          'status': 'assigned',
                                          'tags': [],
                                          'vendor_created_at': '2018-02-11T00:11:14.673000+00:00',
                                          'assignee_name': 'Leela Turanga',
                                          'assignee_email': 'leela@planet-express.com',
                                          'assignee_id': 'tea_40yq',
                                          'requester_email': 'calculon@momsbot.com',
                                          'requester_id': 'crd_62euuy',
                                          'group': 'Support@',
                                          'vendor_updated_at': '2018-02-11T00:11:49.541000+00:00'},
                               'comment': ['<div>There will be plenty of time to discuss your objections when and '
                                           'if you return.</div>',
                                           'Leela Turanga',
                                           True],
                               'changes': None},
 'rule_archive_by_teammate': {'external_id': 'cnv_keo696',
                              'account': '',
                              'event_type': 'archive',
                              'vendor_event_id': 'evt_28du7y2',
                              'fields': {'subject': 'Your next delivery is on Epsilon 96Z',
                                         'status': 'archived',
                                         'tags': [],
                                         'vendor_created_at': '2018-02-11T00:11:14.673000+00:00',
                                         'assignee_name': 'Leela Turanga',
                                         'assignee_email': 'leela@planet-express.com',
                                         'assignee_id': 'tea_40yq',
                                         'requester_email': 'calculon@momsbot.com',
                                         'requester_id': 'crd_62euuy',
                                         'vendor_updated_at': '2018-02-11T00:12:46.678000+00:00'},
                              'comment': None,
                              'changes': None},
 'rule_archive_source_gmail_null_data': {'external_id': 'cnv_keo696',
                                         'account': '',
                                         'event_type': 'archive',
                                         'vendor_event_id': 'evt_28du7y2',
                                         'fields': {'subject': 'Your next delivery is on Epsilon 96Z',
                                                    'status': 'archived',
                                                    'tags': [],
                                                    'vendor_created_at': '2018-02-11T00:11:14.673000+00:00',
                                                    'assignee_name': 'Leela Turanga',
                                                    'assignee_email': 'leela@planet-express.com',
                                                    'assignee_id': 'tea_40yq',
                                                    'requester_email': 'calculon@momsbot.com',
                                                    'requester_id': 'crd_62euuy',
                                                    'vendor_updated_at': '2018-02-11T00:12:46.678000+00:00'},
                                         'comment': None,
                                         'changes': None},
 'rule_reopen_no_target': {'external_id': 'cnv_keo696',
                           'account': '',
                           'event_type': 'reopen',
                           'vendor_event_id': 'evt_28du836',
                           'fields': {'subject': 'Your next delivery is on Epsilon 96Z',
                                      'status': 'assigned',
                                      'tags': [],
                                      'vendor_created_at': '2018-02-11T00:11:14.673000+00:00',
                                      'assignee_name': 'Leela Turanga',
                                      'assignee_email': 'leela@planet-express.com',
                                      'assignee_id': 'tea_40yq',
                                      'requester_email': 'calculon@momsbot.com',
                                      'requester_id': 'crd_62euuy',
                                      'vendor_updated_at': '2018-02-11T00:12:52.956000+00:00'},
                           'comment': None,
                           'changes': None},
 'rule_trash_conversation_deleted': {'external_id': 'cnv_keo696',
                                     'account': '',
                                     'event_type': 'trash',
                                     'vendor_event_id': 'evt_28du84i',
                                     'fields': {'subject': 'Your next delivery is on Epsilon 96Z',
                                                'status': 'deleted',
                                                'tags': [],
                                                'vendor_created_at': '2018-02-11T00:11:14.673000+00:00',
                                                'assignee_name': 'Leela Turanga',
                                                'assignee_email': 'leela@planet-express.com',
                                                'assignee_id': 'tea_40yq',
                                                'requester_email': 'calculon@momsbot.com',
                                                'requester_id': 'crd_62euuy',
                                                'vendor_updated_at': '2018-02-11T00:12:57.111000+00:00'},
                                     'comment': None,
                                     'changes': None,
                                     'deletion': 'soft'},
 'rule_restore_conversation_restored': {'external_id': 'cnv_keo696',
                                        'account': '',
                                        'event_type': 'restore',
                                        'vendor_event_id': 'evt_28du86a',
                                        'fields': {'subject': 'Your next delivery is on Epsilon 96Z',
                                                   'status': 'assigned',
                                                   'tags': [],
                                                   'vendor_created_at': '2018-02-11T00:11:14.673000+00:00',
                                                   'assignee_name': 'Leela Turanga',
                                                   'assignee_email': 'leela@planet-express.com',
                                                   'assignee_id': 'tea_40yq',
                                                   'requester_email': 'calculon@momsbot.com',
                                                   'requester_id': 'crd_62euuy',
                                                   'vendor_updated_at': '2018-02-11T00:13:01.377000+00:00'},
                                        'comment': None,
                                        'changes': None,
                                        'deletion': 'restored'},
 'rule_unassign_no_target': {'external_id': 'cnv_keo696',
                             'account': '',
                             'event_type': 'unassign',
                             'vendor_event_id': 'evt_28dubfu',
                             'fields': {'subject': 'Your next delivery is on Epsilon 96Z',
                                        'status': 'unassigned',
                                        'tags': [],
                                        'vendor_created_at': '2018-02-11T00:11:14.673000+00:00',
                                        'assignee_name': None,
                                        'assignee_email': None,
                                        'assignee_id': None,
                                        'requester_email': 'calculon@momsbot.com',
                                        'requester_id': 'crd_62euuy',
                                        'vendor_updated_at': '2018-02-11T00:17:05.910000+00:00'},
                             'comment': None,
                             'changes': None},
 'rule_mention_all_comment': {'external_id': 'cnv_keo696',
                              'account': '',
                              'event_type': 'mention',
                              'vendor_event_id': 'evt_28dubmi',
                              'fields': {'subject': 'Your next delivery is on Epsilon 96Z',
                                         'status': 'unassigned',
                                         'tags': [],
                                         'vendor_created_at': '2018-02-11T00:11:14.673000+00:00',
                                         'assignee_name': None,
                                         'assignee_email': None,
                                         'assignee_id': None,
                                         'requester_email': 'calculon@momsbot.com',
                                         'requester_id': 'crd_62euuy',
                                         'vendor_updated_at': '2018-02-11T00:17:20.489000+00:00'},
                              'comment': ['@all Could someone else take this?', 'Leela Turanga', False],
                              'changes': None},
 'rule_archive_real_capture_no_target': {'external_id': 'cnv_a73yqx',
                                         'account': '',
                                         'event_type': 'archive',
                                         'vendor_event_id': 'evt_11aqjdt',
                                         'fields': {'subject': 'First things first: learn how to reply',
                                                    'status': 'archived',
                                                    'tags': [],
                                                    'vendor_created_at': '2017-10-26T06:54:11.830000+00:00',
                                                    'assignee_name': None,
                                                    'assignee_email': None,
                                                    'assignee_id': None,
                                                    'requester_email': 'team@frontapp.com',
                                                    'requester_id': None,
                                                    'vendor_updated_at': '2017-10-26T06:59:06.525000+00:00'},
                                         'comment': None,
                                         'changes': None},
 'derived_rule_preview_assign': {'external_id': 'cnv_keocka',
                                 'account': '',
                                 'event_type': 'assign',
                                 'vendor_event_id': 'evt_28duxju:preview',
                                 'fields': {'assignee_name': None, 'assignee_email': None, 'assignee_id': 'tea_40z6',
                                            'vendor_updated_at': '2018-02-11T00:45:07.473999+00:00'},
                                 'comment': None,
                                 'changes': None},
 'derived_rule_preview_unassign': {'external_id': 'cnv_keo696',
                                   'account': '',
                                   'event_type': 'unassign',
                                   'vendor_event_id': 'evt_28dubfu:preview',
                                   'fields': {'assignee_name': None,
                                              'assignee_email': None,
                                              'assignee_id': None,
                                              'vendor_updated_at': '2018-02-11T00:17:05.909999+00:00'},
                                   'comment': None,
                                   'changes': None},
 'app_envelope_comment_testbody': {'external_id': 'cnv_abc123',
                                   'account': '',
                                   'event_type': 'comment',
                                   'vendor_event_id': 'evt_comment123:preview',
                                   'fields': {'subject': 'Test conversation',
                                              'group': 'inb_test123',
                                              'vendor_updated_at': '2023-11-14T22:13:19.999999+00:00'},
                                   'comment': ['<p>This is a test comment</p>', 'Test Agent', False],
                                   'changes': None},
 'app_envelope_conversation_snoozed_testbody': {'external_id': 'cnv_abc123',
                                                'account': '',
                                                'event_type': 'conversation_snoozed',
                                                'vendor_event_id': 'evt_snooze123:preview',
                                                'fields': {'subject': 'Snoozed conversation',
                                                           'group': 'inb_test123',
                                                           'vendor_updated_at': '2023-11-14T22:13:19.999999+00:00'},
                                                'comment': None,
                                                'changes': None},
 'app_envelope_inbound_received_preview_testbody': {'external_id': 'cnv_abc123',
                                                    'account': '',
                                                    'event_type': 'inbound_received',
                                                    'vendor_event_id': None,
                                                    'fields': {'subject': 'Test subject', 'group': 'inb_test123'},
                                                    'comment': None,
                                                    'changes': None}}

#: Unusable bodies: the field the 422 names.
REJECTED = {
    "pipedream_list_events_placeholder_assign_by_rule": "emitted_at",  # "string": not Unix seconds
    "derived_missing_conversation_id": "conversation.id",
    "derived_app_missing_conversation_id": "payload.conversation.id",
    "derived_missing_type": "type",
}

#: Authentic events that name no conversation.
IGNORED = ["app_sync_validation_challenge_docs", "derived_inbound_without_conversation"]

#: Front names the event in the body; only the validation request has a header of its own.
HEADERS: dict[str, dict[str, str]] = {
    "app_sync_validation_challenge_docs": {"X-Front-Challenge": "9f8a0c7e1b2d4c6f"},
}

(test_each_fixture_normalizes_to_the_whole_event_it_describes,
 test_each_unusable_fixture_is_refused_naming_the_field,
 test_each_authentic_event_not_about_a_ticket_normalizes_to_nothing) = fixture_tests(front, CASES, REJECTED, IGNORED,
                                                                                    HEADERS)


# --- the paths no fixture shows ------------------------------------------------------


def event(case: str = "rule_comment_full", **changes) -> dict:
    body = copy.deepcopy(load("front", case))
    body.update(changes)
    return body


def wrapped(inner, kind: str = "comment") -> dict:
    return {"type": kind, "authorization": {"id": "cmp_abc"}, "payload": inner}


@pytest.mark.parametrize("body, field", [
    pytest.param(wrapped("evt_1"), "payload", id="an envelope whose payload is not an object"),
    pytest.param(event(conversation="cnv_keocka"), "conversation", id="a conversation that is an id"),
    pytest.param(wrapped(event(conversation=["cnv_keocka"])), "payload.conversation", id="an envelope's, a list"),
    pytest.param(event(type={"name": "comment"}), "type", id="a type that is an object"),
    pytest.param(wrapped(event(type=None), kind=["comment"]), "type", id="no event type, an envelope type, a list"),
    pytest.param(event(emitted_at=True), "emitted_at", id="a time that is a boolean"),
    pytest.param(event(emitted_at="1518309749.673"), "emitted_at", id="a time in a string"),
    pytest.param(event(emitted_at=1e300), "emitted_at", id="a time no calendar reaches"),
    pytest.param(wrapped(event(emitted_at=[])), "payload.emitted_at", id="an envelope's time, a list"),
    pytest.param(event(target="com_shgc2"), "target", id="a target that is an id"),
    pytest.param(event(source=[]), "source", id="a source that is a list"),
])
def test_an_unusable_event_is_refused_naming_the_field(body, field):
    with pytest.raises(InvalidField) as refused:
        front.normalize(body, {})
    assert refused.value.field == field


@pytest.mark.parametrize("change, field", [
    ({"recipient": "calculon@momsbot.com"}, "conversation.recipient"),
    ({"recipient": {"handle": {"address": "calculon@momsbot.com"}}}, "conversation.recipient.handle"),
    ({"recipient": {"handle": "calculon@momsbot.com", "_links": {"related": {"contact": {"id": 5}}}}},
     "conversation.recipient._links.related.contact"),
    ({"status_category": ["open"]}, "conversation.status_category"),
    ({"id": "{{conversation.id}}"}, "conversation.id"),
])
def test_an_unusable_conversation_field_is_refused_naming_it(change, field):
    body = event()
    body["conversation"].update(change)
    with pytest.raises(InvalidField) as refused:
        front.normalize(body, {})
    assert refused.value.field == field


@pytest.mark.parametrize("body", [
    pytest.param({"type": "sync", "authorization": {"id": "cmp_abc"}}, id="the validation request"),
    pytest.param({"type": "sync", "authorization": {"id": "cmp_abc"}, "payload": {"conversation": {"id": "cnv_1"}}},
                 id="the validation request, whatever it carries"),
    pytest.param({"type": "inbound_received", "authorization": {"id": "cmp_abc"}}, id="an envelope with no event"),
    pytest.param(wrapped({"type": "contact_created", "id": "evt_1", "emitted_at": 1700000000}),
                 id="an event about a contact"),
    pytest.param(event(conversation=None), id="a null conversation"),
])
def test_an_authentic_body_about_no_conversation_is_ignored(body):
    assert front.normalize(body, {}) is None


def test_an_application_webhook_reads_as_the_rule_webhook_of_the_same_event():
    rule = front.normalize(event(), {})
    assert front.normalize(wrapped(event()), {}) == rule
    assert front.normalize(wrapped(event()), {}, "acme").account == "acme"


@pytest.mark.parametrize("name, deletion", [("conversation_deleted", "soft"), ("conversation_restored", "restored"),
                                            ("conversation_archived", None)])
def test_an_envelope_named_the_app_way_means_its_core_event_and_keeps_its_name(name, deletion):
    inner = event("rule_archive_by_teammate")
    del inner["type"]
    read = plain(front.normalize(wrapped(inner, name), {}))
    assert (read["event_type"], read.get("deletion")) == (name, deletion)


def test_an_app_named_new_comment_is_a_private_comment():
    inner = event()
    del inner["type"]
    assert plain(front.normalize(wrapped(inner, "new_comment_added"), {}))["comment"] == [
        "Sure.", "Bender Rodriguez", False]


def test_with_ticketing_on_the_status_category_is_the_status():
    body = event()
    body["conversation"].update(status_category="waiting", status_id="sts_5x")
    assert front.normalize(body, {}).fields["status"] == "waiting"


def test_a_recipient_who_is_not_an_address_is_named_by_the_handle_unless_named():
    body = event("rule_inbound_message_full")
    body["conversation"]["recipient"] = {"handle": "+33612345678", "role": "from"}
    read = front.normalize(body, {}).fields
    assert (read.get("requester_name"), "requester_email" in read, "requester_id" in read) == (
        "+33612345678", False, False)
    body["conversation"]["recipient"].update(name="Calculon", handle="calculon@momsbot.com")
    read = front.normalize(body, {}).fields
    assert (read["requester_name"], read["requester_email"]) == ("Calculon", "calculon@momsbot.com")


def test_a_move_puts_the_conversation_in_the_target_inbox():
    body = event("rule_unassign_no_target", type="move", target={
        "_meta": {"type": "inboxes"}, "data": [{"id": "inb_7k2", "name": "Billing"}, {"id": "inb_8"}]})
    assert front.normalize(body, {}).fields["group"] == "Billing"
    body["target"]["data"] = [{"id": "inb_7k2"}]
    assert front.normalize(body, {}).fields["group"] == "inb_7k2"


def test_a_forwarded_message_is_public_and_a_message_without_author_or_sender_has_no_author():
    body = event("rule_inbound_message_full", type="forward")
    body["target"]["data"]["recipients"] = [{"handle": "someone@example.com", "role": "to"}]
    assert plain(front.normalize(body, {}))["comment"][1:] == [None, True]


def test_a_tag_event_without_the_tags_or_the_tag_name_records_no_change():
    body = event("rule_tag_added")
    body["target"]["data"]["name"] = ""
    assert front.normalize(body, {}).changes is None
    del body["conversation"]["tags"]
    body["target"]["data"]["name"] = "Urgent"
    assert front.normalize(body, {}).changes is None


def test_an_unusable_event_id_is_no_id():
    for value in (0, "", "evt\x00", {"id": "evt_1"}):
        assert front.normalize(event(id=value), {}).vendor_event_id is None


def test_other_events_on_a_conversation_are_stored_with_what_they_carry():
    for kind in ("link_added", "call_missed", "ticket_status_update", "reminder", "conversations_merged"):
        read = front.normalize(event("rule_archive_by_teammate", type=kind), {})
        assert (read.event_type, read.external_id, read.comment, read.deletion) == (kind, "cnv_keo696", None, None)
