"""Jira (Service Management) payloads, one fixture each, normalized to the whole event they
describe (what fixtures/SOURCES.md says each one is). Jira names the event in the body's
`webhookEvent`, so no fixture needs a header; the unit tests after the fixtures cover what
no captured body shows (a JSM internal note flagged as text, a cleared custom field...)."""

from __future__ import annotations

import copy

import pytest
from normalizing import fixture_tests, load, plain

from ingestion.errors import InvalidField
from ingestion.vendors import jira

CASES = {'cloud_issue_created': {'external_id': 'KAN-22',
                         'account': '',
                         'event_type': 'jira:issue_created',
                         'vendor_event_id': None,
                         'fields': {'subject': 'Add back button to pages',
                                    'description': 'Add back button navigation to all list pages. Now its making '
                                                   'little complex or making UX low.',
                                    'status': 'to do',
                                    'priority': 'medium',
                                    'type': 'task',
                                    'tags': [],
                                    'group': 'My Kanban Project',
                                    'requester_name': 'Sirajudheen MK',
                                    'requester_id': '712020:f1ad7cfd-7f82-4dc0-85e4-8bc47bcc08e4',
                                    'assignee_name': 'Sirajudheen MK',
                                    'assignee_id': '712020:f1ad7cfd-7f82-4dc0-85e4-8bc47bcc08e4',
                                    'vendor_created_at': '2024-12-29T03:11:23.303000+00:00',
                                    'vendor_updated_at': '2024-12-29T03:11:23.659000+00:00',
                                    'custom_fields': {'issue_id': '10021',
                                                      'status_category': 'new',
                                                      'resolution': None,
                                                      'components': [],
                                                      'customfield_10018': {'hasEpicLinkFieldDependency': False,
                                                                            'showField': False,
                                                                            'nonEditableReason': {'reason': 'PLUGIN_LICENSE_ERROR',
                                                                                                  'message': 'The '
                                                                                                             'Parent '
                                                                                                             'Link '
                                                                                                             'is '
                                                                                                             'only '
                                                                                                             'available '
                                                                                                             'to '
                                                                                                             'Jira '
                                                                                                             'Premium '
                                                                                                             'users.'}},
                                                      'customfield_10019': '0|i0001r:',
                                                      'customfield_10002': []}},
                         'comment': None,
                         'changes': {'assignee_name': {'previous': None, 'current': 'Sirajudheen MK'},
                                     'assignee_id': {'previous': None,
                                                     'current': '712020:f1ad7cfd-7f82-4dc0-85e4-8bc47bcc08e4'},
                                     'description': {'previous': None,
                                                     'current': 'Add back button navigation to all list pages. Now '
                                                                'its making little complex or making UX low.'},
                                     'priority': {'previous': None, 'current': 'medium'},
                                     'requester_name': {'previous': None, 'current': 'Sirajudheen MK'},
                                     'requester_id': {'previous': None,
                                                      'current': '712020:f1ad7cfd-7f82-4dc0-85e4-8bc47bcc08e4'},
                                     'status': {'previous': None, 'current': 'to do'},
                                     'subject': {'previous': None, 'current': 'Add back button to pages'}}},
 'cloud_issue_updated_description': {'external_id': 'KAN-22',
                                     'account': '',
                                     'event_type': 'jira:issue_updated',
                                     'vendor_event_id': None,
                                     'fields': {'subject': 'Add back button to pages',
                                                'description': 'Add back button navigation to all list pages. Now '
                                                               'its making little complex or making UX low.\n'
                                                               '\n'
                                                               'Updaing the description because we need back button '
                                                               'on the create pages as well.',
                                                'status': 'to do',
                                                'priority': 'medium',
                                                'type': 'task',
                                                'tags': [],
                                                'group': 'My Kanban Project',
                                                'requester_name': 'Sirajudheen MK',
                                                'requester_id': '712020:f1ad7cfd-7f82-4dc0-85e4-8bc47bcc08e4',
                                                'assignee_name': 'Sirajudheen MK',
                                                'assignee_id': '712020:f1ad7cfd-7f82-4dc0-85e4-8bc47bcc08e4',
                                                'vendor_created_at': '2024-12-29T03:11:23.303000+00:00',
                                                'vendor_updated_at': '2024-12-29T03:13:45.214000+00:00',
                                                'custom_fields': {'issue_id': '10021',
                                                                  'status_category': 'new',
                                                                  'resolution': None,
                                                                  'components': [],
                                                                  'customfield_10018': {'hasEpicLinkFieldDependency': False,
                                                                                        'showField': False,
                                                                                        'nonEditableReason': {'reason': 'PLUGIN_LICENSE_ERROR',
                                                                                                              'message': 'The '
                                                                                                                         'Parent '
                                                                                                                         'Link '
                                                                                                                         'is '
                                                                                                                         'only '
                                                                                                                         'available '
                                                                                                                         'to '
                                                                                                                         'Jira '
                                                                                                                         'Premium '
                                                                                                                         'users.'}},
                                                                  'customfield_10019': '0|i0001r:',
                                                                  'customfield_10002': []}},
                                     'comment': None,
                                     'changes': {'description': {'previous': 'Add back button navigation to all list '
                                                                             'pages. Now its making little complex '
                                                                             'or making UX low.',
                                                                 'current': 'Add back button navigation to all list '
                                                                            'pages. Now its making little complex or '
                                                                            'making UX low.\n'
                                                                            '\n'
                                                                            'Updaing the description because we need '
                                                                            'back button on the create pages as '
                                                                            'well.'}}},
 'cloud_issue_created_custom_fields': {'external_id': 'KAN-3',
                                       'account': '',
                                       'event_type': 'jira:issue_created',
                                       'vendor_event_id': None,
                                       'fields': {'subject': 'This is test files',
                                                  'description': None,
                                                  'status': 'to do',
                                                  'priority': 'medium',
                                                  'type': 'task',
                                                  'tags': [],
                                                  'group': 'Test Project',
                                                  'requester_name': 'Pritesh Shetty',
                                                  'requester_id': '712020:28d10afc-d4b0-47f2-b86f-74d9a5f29c81',
                                                  'assignee_name': None,
                                                  'assignee_email': None,
                                                  'assignee_id': None,
                                                  'vendor_created_at': '2026-04-25T13:05:13.605000+00:00',
                                                  'vendor_updated_at': '2026-04-25T13:05:14.106000+00:00',
                                                  'custom_fields': {'issue_id': '10033',
                                                                    'status_category': 'new',
                                                                    'resolution': None,
                                                                    'components': [],
                                                                    'customfield_10070': 'Testing',
                                                                    'customfield_10071': 'Medium',
                                                                    'customfield_10019': '0|i0000f:'}},
                                       'comment': None,
                                       'changes': {'subject': {'previous': None, 'current': 'This is test files'},
                                                   'status': {'previous': None, 'current': 'to do'},
                                                   'priority': {'previous': None, 'current': 'medium'},
                                                   'custom_fields': {'customfield_10071': {'previous': None,
                                                                                           'current': 'Medium'}},
                                                   'requester_name': {'previous': None, 'current': 'Pritesh Shetty'},
                                                   'requester_id': {'previous': None,
                                                                    'current': '712020:28d10afc-d4b0-47f2-b86f-74d9a5f29c81'}}},
 'server_issue_created': {'external_id': 'BUG-15',
                          'account': '',
                          'event_type': 'jira:issue_created',
                          'vendor_event_id': None,
                          'fields': {'subject': 'New bug with hook',
                                     'description': 'Fix me please',
                                     'status': 'open',
                                     'priority': 'major',
                                     'type': 'bug',
                                     'tags': [],
                                     'group': 'buggery-test',
                                     'requester_name': 'Leo Franchi',
                                     'requester_email': 'othello@example.com',
                                     'requester_id': '99:27935d01-92a7-4687-8272-a9b8d3b2ae2e',
                                     'assignee_name': None,
                                     'assignee_email': None,
                                     'assignee_id': None,
                                     'vendor_created_at': '2013-03-27T16:53:58.301000+00:00',
                                     'vendor_updated_at': '2013-03-27T16:53:58.369000+00:00',
                                     'custom_fields': {'issue_id': '10400', 'resolution': None, 'components': []}},
                          'comment': None,
                          'changes': None},
 'legacy_issue_commented': {'external_id': 'BUG-15',
                            'account': '',
                            'event_type': 'jira:issue_updated',
                            'vendor_event_id': None,
                            'fields': {'subject': 'New bug with hook',
                                       'description': 'Fix me please',
                                       'status': 'open',
                                       'priority': 'major',
                                       'type': 'bug',
                                       'tags': [],
                                       'group': 'buggery-test',
                                       'requester_name': 'Leo Franchi',
                                       'requester_email': 'othello@example.com',
                                       'requester_id': 'lfranchi',
                                       'assignee_name': 'Leo Franchi',
                                       'assignee_email': 'othello@example.com',
                                       'assignee_id': 'lfranchi',
                                       'vendor_created_at': '2013-03-27T16:53:58.301000+00:00',
                                       'vendor_updated_at': '2013-03-27T17:05:34.253000+00:00',
                                       'custom_fields': {'issue_id': '10400', 'resolution': None, 'components': []}},
                            'comment': ['Adding a comment. Oh, what a comment it is!', 'Leo Franchi', True],
                            'changes': None},
 'issue_updated_status': {'external_id': 'TEST-1',
                          'account': '',
                          'event_type': 'jira:issue_updated',
                          'vendor_event_id': None,
                          'fields': {'subject': 'Fix That',
                                     'description': 'Fix That',
                                     'status': 'in progress',
                                     'priority': 'medium',
                                     'type': 'task',
                                     'tags': [],
                                     'group': 'Fix That',
                                     'requester_name': 'James Williams',
                                     'requester_email': 'person3@example.com',
                                     'requester_id': '99:b8d8a054-2e12-4839-bd5f-5f2b7c5f5e3a',
                                     'assignee_name': None,
                                     'assignee_email': None,
                                     'assignee_id': None,
                                     'vendor_created_at': '2017-01-30T17:30:41.962000+00:00',
                                     'vendor_updated_at': '2017-01-30T17:32:14.721000+00:00',
                                     'custom_fields': {'issue_id': '10000',
                                                       'status_category': 'indeterminate',
                                                       'resolution': None,
                                                       'components': [],
                                                       'customfield_10112': 'Not started',
                                                       'customfield_10000': '{}',
                                                       'customfield_10116': '0|hzzzzz:'}},
                          'comment': None,
                          'changes': {'status': {'previous': 'to do', 'current': 'in progress'}}},
 'issue_updated_priority': {'external_id': 'TEST-1',
                            'account': '',
                            'event_type': 'jira:issue_updated',
                            'vendor_event_id': None,
                            'fields': {'subject': 'Fix That',
                                       'description': 'Please',
                                       'status': 'to do',
                                       'priority': 'major',
                                       'type': 'new feature',
                                       'tags': [],
                                       'group': 'TestProject',
                                       'requester_name': 'Leonardo Franchi [Administrator]',
                                       'requester_email': 'leo@example.com',
                                       'requester_id': '99:e2f12cf6-839d-4ea2-ae07-e1a59cb009c8',
                                       'assignee_name': 'Leonardo Franchi [Administrator]',
                                       'assignee_email': 'leo@example.com',
                                       'assignee_id': '99:e2f12cf6-839d-4ea2-ae07-e1a59cb009c8',
                                       'vendor_created_at': '2013-09-06T15:07:19.972000+00:00',
                                       'vendor_updated_at': '2014-02-26T19:57:13.145000+00:00',
                                       'custom_fields': {'issue_id': '10000',
                                                         'status_category': 'new',
                                                         'resolution': None,
                                                         'components': [],
                                                         'customfield_10006': '1',
                                                         'customfield_10021': 'Not Started'}},
                            'comment': None,
                            'changes': {'priority': {'previous': 'critical', 'current': 'major'}}},
 'relay_issue_moved': {'external_id': 'INDEV-130',
                       'account': '',
                       'event_type': 'jira:issue_updated',
                       'vendor_event_id': None,
                       'fields': {'subject': 'test Task 2',
                                  'description': 'dsf',
                                  'status': 'to do',
                                  'priority': 'highest',
                                  'type': 'story',
                                  'tags': [],
                                  'group': 'Internal Development',
                                  'requester_name': 'Иванов Иван Иванович',
                                  'requester_email': 'ii_ivanov@example.com',
                                  'requester_id': '5b912f5c8a96e82b9549361c',
                                  'assignee_name': None,
                                  'assignee_email': None,
                                  'assignee_id': None,
                                  'vendor_created_at': '2018-12-24T12:24:27.105000+00:00',
                                  'vendor_updated_at': '2019-02-27T10:30:21.153000+00:00',
                                  'custom_fields': {'issue_id': '12490',
                                                    'status_category': 'new',
                                                    'resolution': None,
                                                    'components': [],
                                                    'customfield_10021': [],
                                                    'customfield_10019': '0|i00cgq:',
                                                    'customfield_10015': {'hasEpicLinkFieldDependency': False,
                                                                          'showField': False,
                                                                          'nonEditableReason': {'reason': 'PLUGIN_LICENSE_ERROR',
                                                                                                'message': 'Portfolio '
                                                                                                           'for Jira '
                                                                                                           'must be '
                                                                                                           'licensed '
                                                                                                           'for the '
                                                                                                           'Parent '
                                                                                                           'Link to '
                                                                                                           'be '
                                                                                                           'available.'}},
                                                    'customfield_10000': '{}'}},
                       'comment': None,
                       'changes': {'type': {'previous': 'task', 'current': 'story'},
                                   'group': {'previous': 'Test Classic Project', 'current': 'Internal Development'},
                                   'status': {'previous': 'backlog', 'current': 'to do'},
                                   'external_id': {'previous': 'TCP-2', 'current': 'INDEV-130'}}},
 'docs_issue_updated': {'external_id': 'JRA-20002',
                        'account': '',
                        'event_type': 'jira:issue_updated',
                        'vendor_event_id': None,
                        'fields': {'subject': 'I feel the need for speed',
                                   'description': 'Make the issue nav load 10x faster',
                                   'priority': 'minor',
                                   'tags': ['UI', 'dialogue', 'move'],
                                   'vendor_created_at': '2009-12-17T05:46:10.612000+00:00',
                                   'custom_fields': {'issue_id': '99291'},
                                   'vendor_updated_at': '2020-11-27T12:33:56.302000+00:00'},
                        'comment': None,
                        'changes': {'subject': {'previous': 'What is going on here?????',
                                                'current': 'A new summary.'},
                                    'type': {'previous': 'improvement', 'current': 'new feature'}}},
 'legacy_issue_comment_deleted': {'external_id': 'TOM-1',
                                  'account': '',
                                  'event_type': 'jira:issue_updated',
                                  'vendor_event_id': None,
                                  'fields': {'subject': 'New Issue',
                                             'description': 'description',
                                             'status': 'in progress',
                                             'priority': 'highest',
                                             'type': 'story',
                                             'tags': [],
                                             'group': 'tomek',
                                             'requester_name': 'Tomasz Kolek',
                                             'requester_email': 'person2@example.com',
                                             'requester_id': 'admin',
                                             'assignee_name': 'Tomasz Kolek',
                                             'assignee_email': 'person2@example.com',
                                             'assignee_id': 'admin',
                                             'vendor_created_at': '2016-12-31T14:08:29.213000+00:00',
                                             'vendor_updated_at': '2017-01-03T17:32:09.046000+00:00',
                                             'custom_fields': {'issue_id': '10000',
                                                               'status_category': 'indeterminate',
                                                               'resolution': None,
                                                               'components': [],
                                                               'customfield_10113': 'Not started',
                                                               'customfield_10000': '{}',
                                                               'customfield_10116': '0|hzzzzz:'}},
                                  'comment': None,
                                  'changes': None},
 'comment_created': {'external_id': 'ZUL-1',
                     'account': '',
                     'event_type': 'comment_created',
                     'vendor_event_id': None,
                     'fields': {'subject': 'A minor issue',
                                'status': 'backlog',
                                'priority': 'medium',
                                'type': 'story',
                                'group': 'zulipintegrations',
                                'assignee_name': None,
                                'assignee_email': None,
                                'assignee_id': None,
                                'custom_fields': {'issue_id': '10000', 'status_category': 'new'},
                                'vendor_updated_at': '2019-01-07T20:25:51.184000+00:00'},
                     'comment': ['Leaving a comment here! :)', 'Eeshan Garg', True],
                     'changes': None},
 'comment_created_mentions': {'external_id': 'SB-1',
                              'account': '',
                              'event_type': 'comment_created',
                              'vendor_event_id': None,
                              'fields': {'subject': 'asdasd',
                                         'status': 'to do',
                                         'priority': 'medium',
                                         'type': 'story',
                                         'group': 'scrum board',
                                         'assignee_name': None,
                                         'assignee_email': None,
                                         'assignee_id': None,
                                         'custom_fields': {'issue_id': '10002', 'status_category': 'new'},
                                         'vendor_updated_at': '2024-07-31T07:38:13.985000+00:00'},
                              'comment': [('[~accountid:619a4432ebce470067f20384] '
                                           '[~accountid:63a22fb348b367d78a14c15b] '
                                           '[~accountid:63a22fb348b367d78a14c15b] '),
                                          'Peter',
                                          True],
                              'changes': None},
 'jsm_internal_note': {'external_id': 'ZUL-1',
                       'account': '',
                       'event_type': 'comment_created',
                       'vendor_event_id': None,
                       'fields': {'subject': 'A minor issue',
                                  'status': 'backlog',
                                  'priority': 'medium',
                                  'type': 'story',
                                  'group': 'zulipintegrations',
                                  'assignee_name': None,
                                  'assignee_email': None,
                                  'assignee_id': None,
                                  'custom_fields': {'issue_id': '10000', 'status_category': 'new'},
                                  'vendor_updated_at': '2019-01-07T20:25:51.184000+00:00'},
                       'comment': ['Leaving a comment here! :)', 'Eeshan Garg', False],
                       'changes': None},
 'comment_created_role_visibility': {'external_id': 'ZUL-1',
                                     'account': '',
                                     'event_type': 'comment_created',
                                     'vendor_event_id': None,
                                     'fields': {'subject': 'A minor issue',
                                                'status': 'backlog',
                                                'priority': 'medium',
                                                'type': 'story',
                                                'group': 'zulipintegrations',
                                                'assignee_name': None,
                                                'assignee_email': None,
                                                'assignee_id': None,
                                                'custom_fields': {'issue_id': '10000', 'status_category': 'new'},
                                                'vendor_updated_at': '2019-01-07T20:25:51.184000+00:00'},
                                     'comment': ['Leaving a comment here! :)', 'Eeshan Garg', False],
                                     'changes': None},
 'comment_updated': {'external_id': 'SP-1',
                     'account': '',
                     'event_type': 'comment_updated',
                     'vendor_event_id': None,
                     'fields': {'subject': 'Add support for newer format Jira issue comment events',
                                'status': 'to do',
                                'priority': 'medium',
                                'type': 'task',
                                'group': 'Sample Project',
                                'assignee_name': 'Hemanth V. Alluri',
                                'assignee_email': 'person1@example.com',
                                'assignee_id': '5c76b994e1bcdf6294d0eb0f',
                                'custom_fields': {'issue_id': '10000', 'status_category': 'new'},
                                'vendor_updated_at': '2019-08-16T14:01:43.489000+00:00'},
                     'comment': ['This is a very important issue\\! I’m on it\\!', 'Hemanth V. Alluri', True],
                     'changes': None},
 'comment_deleted': {'external_id': 'SP-1',
                     'account': '',
                     'event_type': 'comment_deleted',
                     'vendor_event_id': None,
                     'fields': {'subject': 'Add support for newer format Jira issue comment events',
                                'status': 'to do',
                                'priority': 'medium',
                                'type': 'task',
                                'group': 'Sample Project',
                                'assignee_name': 'Hemanth V. Alluri',
                                'assignee_email': 'person1@example.com',
                                'assignee_id': '5c76b994e1bcdf6294d0eb0f',
                                'custom_fields': {'issue_id': '10000', 'status_category': 'new'},
                                'vendor_updated_at': '2019-08-16T14:02:24.825000+00:00'},
                     'comment': None,
                     'changes': None},
 'server_issue_deleted': {'external_id': 'BUG-15',
                          'account': '',
                          'event_type': 'jira:issue_deleted',
                          'vendor_event_id': None,
                          'fields': {'subject': 'New bug with hook',
                                     'description': 'Fix me please',
                                     'status': 'open',
                                     'priority': 'major',
                                     'type': 'bug',
                                     'tags': [],
                                     'group': 'buggery-test',
                                     'requester_name': 'Leo Franchi',
                                     'requester_email': 'othello@example.com',
                                     'requester_id': '99:27935d01-92a7-4687-8272-a9b8d3b2ae2e',
                                     'assignee_name': 'Leo Franchi',
                                     'assignee_email': 'othello@example.com',
                                     'assignee_id': '99:27935d01-92a7-4687-8272-a9b8d3b2ae2e',
                                     'vendor_created_at': '2013-03-27T16:53:58.301000+00:00',
                                     'vendor_updated_at': '2013-03-27T17:06:09.102000+00:00',
                                     'custom_fields': {'issue_id': '10400', 'resolution': None, 'components': []}},
                          'comment': None,
                          'changes': None,
                          'deletion': 'permanent'}}

#: Unusable bodies: the field the 422 names.
REJECTED = {
    "missing_key": "issue.key",
    "issue_id_as_key": "issue.key",
    "comment_event_without_issue": "issue",
    "without_webhook_event": "webhookEvent",
    "v3_adf_description": "issue.fields.description",
}

#: Authentic events that are not about a ticket the service can name.
IGNORED = ["worklog_created", "worklog_updated", "worklog_deleted", "relay_issuelink_created", "docs_project_created",
           "docs_version_created", "docs_version_deleted_merged", "docs_user_created"]

#: Jira names the event in the body: no fixture needs a header.
HEADERS: dict[str, dict[str, str]] = {}

(test_each_fixture_normalizes_to_the_whole_event_it_describes,
 test_each_unusable_fixture_is_refused_naming_the_field,
 test_each_authentic_event_not_about_a_ticket_normalizes_to_nothing) = fixture_tests(jira, CASES, REJECTED, IGNORED,
                                                                                      HEADERS)


def comment_event(**comment_keys) -> dict:
    """The real comment_created body with its comment's keys replaced (None removes one)."""
    body = load("jira", "comment_created")
    for name, value in comment_keys.items():
        if value is None:
            body["comment"].pop(name, None)
        else:
            body["comment"][name] = value
    return body


@pytest.mark.parametrize("keys, public", [
    pytest.param({"jsdPublic": True}, True, id="jsdPublic true"),
    pytest.param({"jsdPublic": None}, True, id="no jsdPublic (not a service project)"),
    pytest.param({"jsdPublic": False}, False, id="JSM internal note"),
    pytest.param({"jsdPublic": "false"}, False, id="internal note, flag as text"),
    pytest.param({"jsdPublic": 0}, False, id="anything but true is internal"),
    pytest.param({"jsdPublic": None, "visibility": {"type": "group", "value": "jira-servicedesk-users"}}, False,
                 id="restricted to a group"),
    pytest.param({"visibility": {"type": "role", "value": "Service Desk Team"}}, False,
                 id="restricted to a role, jsdPublic true"),
    pytest.param({"visibility": {}}, True, id="an empty visibility restricts nothing"),
])
def test_a_comment_is_private_when_jsm_or_its_visibility_says_so(keys, public):
    assert jira.normalize(comment_event(**keys)).comment.public is public


def test_a_comment_events_author_is_its_display_name_else_its_account_id():
    body = comment_event()
    body["comment"]["author"] = {"accountId": "qm:8e1f", "accountType": "customer", "active": True}
    assert jira.normalize(body).comment.author == "qm:8e1f"
    body["comment"]["author"] = None
    assert jira.normalize(body).comment.author is None


def test_a_comment_event_without_its_comment_is_refused_and_an_empty_one_is_no_comment():
    body = load("jira", "comment_created")
    del body["comment"]
    with pytest.raises(InvalidField) as refused:
        jira.normalize(body)
    assert refused.value.field == "comment"
    event = jira.normalize(comment_event(body=""))
    assert event.comment is None and event.external_id == "ZUL-1"
    with pytest.raises(InvalidField) as refused:  # a REST v3 relay's ADF document
        jira.normalize(comment_event(body={"type": "doc", "version": 1, "content": []}))
    assert refused.value.field == "comment.body"


def test_a_deleted_comment_is_not_the_events_comment():
    """comment_deleted carries the deleted comment whole: it is history, not a new comment."""
    deleted = load("jira", "comment_deleted")
    assert deleted["comment"]["body"] and jira.normalize(deleted).comment is None


@pytest.mark.parametrize("name", ["worklog_created", "attachment_created", "issuelink_deleted", "issue_property_set",
                                  "sprint_started", "board_created", "project_soft_deleted", "jira:version_released",
                                  "user_updated", "jira_expression_evaluation_failed", "something_new"])
def test_every_other_event_is_ignored_even_with_an_issue(name):
    body = load("jira", "issue_updated_status")
    body["webhookEvent"] = name
    assert jira.normalize(body) is None


@pytest.mark.parametrize("name", [7, "", "  ", ["jira:issue_updated"]])
def test_an_event_name_that_is_not_a_name_is_refused(name):
    body = load("jira", "issue_updated_status")
    body["webhookEvent"] = name
    with pytest.raises(InvalidField) as refused:
        jira.normalize(body)
    assert refused.value.field == "webhookEvent"


@pytest.mark.parametrize("key", ["SUP", "123", "SUP-", "-12", "SUP 12", "{{issue.key}}", 12])
def test_only_an_issue_key_names_a_ticket(key):
    body = load("jira", "issue_updated_status")
    body["issue"]["key"] = key
    with pytest.raises(InvalidField) as refused:
        jira.normalize(body)
    assert refused.value.field == "issue.key"


@pytest.mark.parametrize("path, value", [
    (("issue", "fields", "summary"), {"text": "Fix That"}),
    (("issue", "fields", "labels"), [{"id": 1}]),
    (("issue", "fields", "reporter"), "lfranchi"),
    (("issue", "fields", "components"), {"name": "Billing"}),
    (("issue", "fields"), ["not", "an", "object"]),
    (("changelog",), ["not", "an", "object"]),
    (("changelog", "items"), {"field": "status"}),
    (("changelog", "items"), ["not an item"]),
    (("changelog", "items"), [{"fieldId": 5, "fromString": "a", "toString": "b"}]),
    (("changelog", "items"), [{"field": "summary", "fromString": {"adf": True}, "toString": "b"}]),
])
def test_a_value_of_the_wrong_kind_is_refused_naming_where_it_is(path, value):
    body = load("jira", "issue_updated_status")
    target = body
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    with pytest.raises(InvalidField) as refused:
        jira.normalize(body)
    where = ".".join(path[:2]) if path[0] == "issue" else "changelog"
    assert refused.value.field.startswith(where), refused.value.field


def test_the_event_time_is_the_later_of_the_issues_updated_and_the_firing_timestamp():
    body = load("jira", "issue_updated_status")  # updated 17:32:14.716Z, fired 17:32:14.721Z
    assert jira.normalize(body).fields["vendor_updated_at"].isoformat() == "2017-01-30T17:32:14.721000+00:00"
    body["timestamp"] = "1485797534999"  # a relay turned the number into text
    assert jira.normalize(body).fields["vendor_updated_at"].isoformat() == "2017-01-30T17:32:14.999000+00:00"
    for unusable in ("2019-2-27 13:30:21,620", True, None, "9" * 40, -1.5):
        body["timestamp"] = unusable  # a logger's time, a flag, none, nonsense: the issue's own
        assert jira.normalize(body).fields["vendor_updated_at"].isoformat() == "2017-01-30T17:32:14.716000+00:00"


def test_changes_of_labels_people_and_custom_fields_and_a_cleared_custom_field():
    body = load("jira", "issue_updated_status")
    body["changelog"]["items"] = [
        {"field": "labels", "fieldtype": "jira", "fieldId": "labels", "from": None, "fromString": "vip",
         "to": None, "toString": "billing vip"},
        {"field": "assignee", "fieldtype": "jira", "fieldId": "assignee", "from": "5b10a28", "fromString": "Ana Perez",
         "to": "712020:9f0c", "toString": "Bo Lindqvist", "tmpFromAccountId": "5b10a28",
         "tmpToAccountId": "712020:9f0c"},
        {"field": "Request participants", "fieldtype": "custom", "fieldId": "customfield_10116", "from": None,
         "fromString": "0|hzzzzz:", "to": None, "toString": None},
        {"field": "Sprint", "fieldtype": "custom", "from": "", "fromString": "", "to": "3", "toString": "Sprint 3"},
        {"field": "Workflow", "fieldtype": "jira", "from": "1", "fromString": "old", "to": "2", "toString": "new"},
        {"field": "timespent", "fieldtype": "jira", "from": None, "fromString": None, "to": "60", "toString": "60"},
    ]
    body["issue"]["fields"]["customfield_10116"] = None
    event = jira.normalize(body)
    assert event.changes == {
        "tags": {"previous": ["vip"], "current": ["billing", "vip"]},
        "assignee_name": {"previous": "Ana Perez", "current": "Bo Lindqvist"},
        "assignee_id": {"previous": "5b10a28", "current": "712020:9f0c"},
        "custom_fields": {"customfield_10116": {"previous": "0|hzzzzz:", "current": None},
                          "Sprint": {"previous": None, "current": "Sprint 3"}},
    }
    # unset custom fields are left out of a snapshot, but one the changelog cleared is emptied
    assert event.fields["custom_fields"]["customfield_10116"] is None
    assert "customfield_10001" not in event.fields["custom_fields"]


def test_a_move_to_another_project_is_stored_under_the_new_key_and_says_the_old_one():
    event = jira.normalize(load("jira", "relay_issue_moved"))
    assert event.external_id == "INDEV-130"
    assert event.changes["external_id"] == {"previous": "TCP-2", "current": "INDEV-130"}
    assert event.fields["custom_fields"]["issue_id"] == "12490"  # the id a move keeps


def test_select_options_are_stored_by_their_value():
    body = load("jira", "cloud_issue_created_custom_fields")
    fields = body["issue"]["fields"]
    fields["customfield_10072"] = [{"self": "https://x/rest/api/2/customFieldOption/1", "value": "EU", "id": "1"},
                                   {"self": "https://x/rest/api/2/customFieldOption/2", "value": "US", "id": "2"}]
    fields["customfield_10073"] = {"requestType": {"id": "11", "name": "Get IT help"}}  # JSM: kept as sent
    custom = jira.normalize(body).fields["custom_fields"]
    assert (custom["customfield_10071"], custom["customfield_10072"]) == ("Medium", ["EU", "US"])
    assert custom["customfield_10073"] == {"requestType": {"id": "11", "name": "Get IT help"}}


def test_a_slim_issue_leaves_out_what_it_does_not_carry():
    """comment_* events carry summary, issuetype, project, assignee, priority and status only:
    the requester, description, tags and times keep their stored values."""
    fields = jira.normalize(load("jira", "comment_updated")).fields
    assert not {"description", "tags", "requester_name", "requester_id", "vendor_created_at"} & set(fields)


def test_a_cloud_user_without_an_address_leaves_the_stored_address_alone():
    fields = jira.normalize(load("jira", "cloud_issue_created")).fields
    assert "requester_email" not in fields and fields["requester_id"].startswith("712020:")
    body = load("jira", "cloud_issue_created")
    body["issue"]["fields"]["assignee"] = None  # unassigned: every part emptied
    fields = jira.normalize(body).fields
    assert (fields["assignee_name"], fields["assignee_email"], fields["assignee_id"]) == (None, None, None)


def test_the_delivery_identifier_header_is_not_the_events_identity():
    """X-Atlassian-Webhook-Identifier is not signed (module docstring): the body decides."""
    body = load("jira", "comment_created")
    with_header = jira.normalize(copy.deepcopy(body), {"X-Atlassian-Webhook-Identifier": "8c4a-retry-1",
                                                       "X-Atlassian-Webhook-Retry": "1"})
    assert plain(with_header) == plain(jira.normalize(body)) and with_header.vendor_event_id is None


def test_the_account_is_the_urls():
    assert jira.normalize(load("jira", "comment_created"), {}, "acme.atlassian.net").account == "acme.atlassian.net"
