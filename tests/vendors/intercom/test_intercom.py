"""Intercom notifications, one fixture each, normalized to the whole event they describe
(what fixtures/SOURCES.md says each one is). Intercom names the event in the body's
`topic`, so no fixture needs a header.

The external id says which object it is: `ticket:<id>` or `conversation:<id>` (the two
share one number sequence). The ticket_* fixtures from ticket_created to ticket_closed
are one ticket's life: tests/vendors/intercom/test_intercom_history.py posts them."""

from __future__ import annotations

import copy

import pytest

from ingestion.errors import InvalidField
from ingestion.vendors import intercom
from normalizing import fixture_tests, load, plain

CASES = {'ticket_created': {'external_id': 'ticket:215472629311235',
                    'account': 'abc123def',
                    'event_type': 'ticket.created',
                    'vendor_event_id': 'notif_381b4609-2b35-4720-8389-605f220e402a',
                    'fields': {'subject': "Unclear user message 'erf' with pending email response",
                               'description': "User sent an unclear message 'erf' and was informed that replies "
                                              'will be sent here and to admin@example.com; awaiting further '
                                              'clarification or response.',
                               'custom_fields': {'Platforms': None, 'Root cause': None, 'ticket_id': '66040342'},
                               'status': 'submitted',
                               'type': 'tickets',
                               'requester_id': '696346bbaebb5a479d3851a3',
                               'assignee_id': None,
                               'group': None,
                               'organization': None,
                               'vendor_created_at': '2026-01-11T06:44:28+00:00',
                               'vendor_updated_at': '2026-01-11T06:50:51+00:00'},
                    'comment': None,
                    'changes': None},
 'ticket_state_updated': {'external_id': 'ticket:215472629311235',
                          'account': 'abc123def',
                          'event_type': 'ticket.state.updated',
                          'vendor_event_id': 'notif_ee8078c0-9021-4db6-bb63-b883579849ce',
                          'fields': {'subject': "Unclear user message 'erf' with pending email response",
                                     'description': "User sent an unclear message 'erf' and was informed that "
                                                    'replies will be sent here and to admin@example.com; awaiting '
                                                    'further clarification or response.',
                                     'custom_fields': {'Platforms': None,
                                                       'Root cause': None,
                                                       'ticket_id': '66040342'},
                                     'status': 'submitted',
                                     'type': 'tickets',
                                     'requester_id': '696346bbaebb5a479d3851a3',
                                     'assignee_id': None,
                                     'group': None,
                                     'organization': None,
                                     'vendor_created_at': '2026-01-11T06:44:28+00:00',
                                     'vendor_updated_at': '2026-01-11T06:50:50+00:00'},
                          'comment': None,
                          'changes': None},
 'ticket_admin_assigned': {'external_id': 'ticket:215472629311235',
                           'account': 'abc123def',
                           'event_type': 'ticket.admin.assigned',
                           'vendor_event_id': 'notif_96c4d0fa-4084-46b0-9a52-bb5565c98060',
                           'fields': {'subject': "Unclear user message 'erf' with pending email response",
                                      'description': "User sent an unclear message 'erf' and was informed that "
                                                     'replies will be sent here and to admin@example.com; awaiting '
                                                     'further clarification or response.',
                                      'custom_fields': {'Platforms': None,
                                                        'Root cause': None,
                                                        'ticket_id': '66040342'},
                                      'status': 'submitted',
                                      'type': 'tickets',
                                      'requester_id': '696346bbaebb5a479d3851a3',
                                      'assignee_id': '9608799',
                                      'assignee_name': 'John Doe',
                                      'assignee_email': 'admin@example.com',
                                      'group': None,
                                      'vendor_created_at': '2026-01-11T06:44:28+00:00',
                                      'vendor_updated_at': '2026-01-11T06:53:10+00:00'},
                           'comment': None,
                           'changes': None},
 'ticket_team_assigned': {'external_id': 'ticket:215472629311235',
                          'account': 'abc123def',
                          'event_type': 'ticket.team.assigned',
                          'vendor_event_id': 'notif_a8efed29-f320-487a-860a-039843aec89e',
                          'fields': {'subject': "Unclear user message 'erf' with pending email response",
                                     'description': "User sent an unclear message 'erf' and was informed that "
                                                    'replies will be sent here and to admin@example.com; awaiting '
                                                    'further clarification or response.',
                                     'custom_fields': {'Platforms': None,
                                                       'Root cause': None,
                                                       'ticket_id': '66040342'},
                                     'status': 'submitted',
                                     'type': 'tickets',
                                     'requester_id': '696346bbaebb5a479d3851a3',
                                     'assignee_id': None,
                                     'group': '9680998',
                                     'vendor_created_at': '2026-01-11T06:44:28+00:00',
                                     'vendor_updated_at': '2026-01-11T06:53:53+00:00'},
                          'comment': None,
                          'changes': None},
 'ticket_admin_replied': {'external_id': 'ticket:215472629311235',
                          'account': 'abc123def',
                          'event_type': 'ticket.admin.replied',
                          'vendor_event_id': 'notif_4a953277-d6d9-45e7-ac5c-47bf8e8fe24b',
                          'fields': {'subject': "Unclear user message 'erf' with pending email response",
                                     'description': "User sent an unclear message 'erf' and was informed that "
                                                    'replies will be sent here and to admin@example.com; awaiting '
                                                    'further clarification or response.',
                                     'custom_fields': {'Platforms': None,
                                                       'Root cause': None,
                                                       'ticket_id': '66040342'},
                                     'status': 'submitted',
                                     'type': 'tickets',
                                     'requester_id': '696346bbaebb5a479d3851a3',
                                     'assignee_id': '9608799',
                                     'assignee_name': 'John Doe',
                                     'assignee_email': 'admin@example.com',
                                     'group': None,
                                     'vendor_created_at': '2026-01-11T06:44:28+00:00',
                                     'vendor_updated_at': '2026-01-11T06:55:31+00:00'},
                          'comment': ['<p class="no-margin">mathew</p>', 'John Doe', True],
                          'changes': None},
 'ticket_attribute_updated': {'external_id': 'ticket:215472629311235',
                              'account': 'abc123def',
                              'event_type': 'ticket.attribute.updated',
                              'vendor_event_id': 'notif_6be9baac-fd68-49c2-8f41-28d7f7deb994',
                              'fields': {'subject': "Unclear user message 'erf' with pending email response",
                                         'description': "User sent an unclear message 'erf' and was informed that "
                                                        'replies will be sent here and to admin@example.com; '
                                                        'awaiting further clarification or response.',
                                         'custom_fields': {'Platforms': 'rewg',
                                                           'Root cause': None,
                                                           'ticket_id': '66040342'},
                                         'status': 'submitted',
                                         'type': 'tickets',
                                         'requester_id': '696346bbaebb5a479d3851a3',
                                         'assignee_id': '9608799',
                                         'assignee_name': 'John Doe',
                                         'assignee_email': 'admin@example.com',
                                         'group': None,
                                         'vendor_created_at': '2026-01-11T06:44:28+00:00',
                                         'vendor_updated_at': '2026-01-11T06:57:59+00:00'},
                              'comment': None,
                              'changes': {'custom_fields': {'Platforms': {'previous': '', 'current': 'rewg'}}}},
 'ticket_closed': {'external_id': 'ticket:215472629311235',
                   'account': 'abc123def',
                   'event_type': 'ticket.closed',
                   'vendor_event_id': 'notif_aedb66d9-7147-43ee-8b75-fe3ee2108b11',
                   'fields': {'subject': "Unclear user message 'erf' with pending email response",
                              'description': "User sent an unclear message 'erf' and was informed that replies "
                                             'will be sent here and to admin@example.com; awaiting further '
                                             'clarification or response.',
                              'custom_fields': {'Platforms': 'rewg', 'Root cause': None, 'ticket_id': '66040342'},
                              'status': 'resolved',
                              'type': 'tickets',
                              'requester_id': '696346bbaebb5a479d3851a3',
                              'assignee_id': '9608799',
                              'assignee_name': 'John Doe',
                              'assignee_email': 'admin@example.com',
                              'group': None,
                              'organization': None,
                              'vendor_created_at': '2026-01-11T06:44:28+00:00',
                              'vendor_updated_at': '2026-01-11T07:41:07+00:00'},
                   'comment': None,
                   'changes': {'status': {'previous': 'submitted', 'current': 'resolved'}}},
 'ticket_note_created': {'external_id': 'ticket:215472629353977',
                         'account': 'abc123def',
                         'event_type': 'ticket.note.created',
                         'vendor_event_id': 'notif_83b0ce3c-7c9c-4125-911d-16679ad38f1e',
                         'fields': {'subject': None,
                                    'description': None,
                                    'custom_fields': {'Platforms': None,
                                                      'Root cause': None,
                                                      'ticket_id': '66040991'},
                                    'status': 'submitted',
                                    'type': 'tickets',
                                    'requester_id': '6961f75992dc9c41aeee94c6',
                                    'assignee_id': '9608799',
                                    'assignee_name': 'John Doe',
                                    'assignee_email': 'admin@example.com',
                                    'group': None,
                                    'vendor_created_at': '2026-01-11T07:00:09+00:00',
                                    'vendor_updated_at': '2026-01-11T07:41:59+00:00'},
                         'comment': ['<p class="no-margin">agd</p>', 'John Doe', False],
                         'changes': None},
 'ticket_contact_replied': {'external_id': 'ticket:215472629548109',
                            'account': 'abc123def',
                            'event_type': 'ticket.contact.replied',
                            'vendor_event_id': 'notif_9d2bc71d-ac2f-4f2d-9a3c-f4213dd933aa',
                            'fields': {'subject': 'Unclear customer message received',
                                       'description': "Customer sent an unclear message 'wetewt' and was informed "
                                                      'that replies will be sent here and via email at '
                                                      'admin@example.com.',
                                       'custom_fields': {'Platforms': None,
                                                         'Root cause': None,
                                                         'ticket_id': '66044663'},
                                       'status': 'submitted',
                                       'type': 'tickets',
                                       'requester_id': '696354ce6b48146fdc536f97',
                                       'assignee_id': '9608799',
                                       'assignee_name': 'John Doe',
                                       'assignee_email': 'admin@example.com',
                                       'group': None,
                                       'vendor_created_at': '2026-01-11T07:44:29+00:00',
                                       'requester_email': 'admin@example.com',
                                       'vendor_updated_at': '2026-01-11T07:45:07+00:00'},
                            'comment': ['<p>asfsf</p>', 'admin@example.com', True],
                            'changes': None},
 'ticket_contact_attached': {'external_id': 'ticket:215472629353977',
                             'account': 'abc123def',
                             'event_type': 'ticket.contact.attached',
                             'vendor_event_id': 'notif_b7c34885-5797-4468-b8f8-9fff786bbb7e',
                             'fields': {'subject': None,
                                        'description': None,
                                        'custom_fields': {'Platforms': None, 'Root cause': None},
                                        'status': 'submitted',
                                        'type': 'tickets',
                                        'vendor_updated_at': '2026-01-11T07:48:44+00:00'},
                             'comment': None,
                             'changes': None},
 'ticket_contact_detached': {'external_id': 'ticket:215472629353977',
                             'account': 'abc123def',
                             'event_type': 'ticket.contact.detached',
                             'vendor_event_id': 'notif_bce453db-05b4-4d76-b58b-a2e72362711f',
                             'fields': {'subject': None,
                                        'description': None,
                                        'custom_fields': {'Platforms': None, 'Root cause': None},
                                        'status': 'submitted',
                                        'type': 'tickets',
                                        'vendor_updated_at': '2026-01-11T07:49:27+00:00'},
                             'comment': None,
                             'changes': None},
 'activepieces_ticket_item_sample_ticket_state_string': {'external_id': 'ticket:2',
                                                         'account': '',
                                                         'event_type': 'ticket.snapshot',
                                                         'vendor_event_id': None,
                                                         'fields': {'subject': 'fdfdf',
                                                                    'description': 'dfdfdf',
                                                                    'custom_fields': {'List': None,
                                                                                      'Number': None,
                                                                                      'decimal': None,
                                                                                      'bool': None,
                                                                                      'date time': None,
                                                                                      'files': [],
                                                                                      'ticket_id': '1'},
                                                                    'status': 'in_progress',
                                                                    'type': 'test',
                                                                    'requester_id': '67a87380c16da6b56c76bbb7',
                                                                    'assignee_id': '8055717',
                                                                    'assignee_name': 'John Doe',
                                                                    'assignee_email': 'johndoe@example.com',
                                                                    'group': None,
                                                                    'organization': '67a8a24c4670c9f1995b2382',
                                                                    'vendor_created_at': '2025-02-09T12:52:40+00:00',
                                                                    'vendor_updated_at': '2025-02-14T09:10:30+00:00'},
                                                         'comment': None,
                                                         'changes': None},
 'conversation_user_created': {'external_id': 'conversation:21321941764',
                               'account': 'i6wc9ipe',
                               'event_type': 'conversation.user.created',
                               'vendor_event_id': 'notif_3ac27816-d27c-45fd-a65a-bbaf021cf780',
                               'fields': {'subject': None,
                                          'description': '<p>Hello everyone!</p>',
                                          'status': 'open',
                                          'tags': [],
                                          'requester_name': "Rose Poodle from St. John's",
                                          'requester_id': '5c9553cb27e377f24eed49f7',
                                          'assignee_id': None,
                                          'assignee_name': None,
                                          'assignee_email': None,
                                          'vendor_created_at': '2019-03-22T21:29:58+00:00',
                                          'vendor_updated_at': '2019-03-22T21:29:58+00:00'},
                               'comment': ['<p>Hello everyone!</p>', "Rose Poodle from St. John's", True],
                               'changes': None},
 'conversation_user_replied': {'external_id': 'conversation:21322009097',
                               'account': 'i6wc9ipe',
                               'event_type': 'conversation.user.replied',
                               'vendor_event_id': 'notif_2c71fff0-65ef-46be-bbfe-dbf637bbff15',
                               'fields': {'subject': None,
                                          'description': '<p>Hello</p>',
                                          'status': 'open',
                                          'tags': [],
                                          'requester_name': 'Eeshan Garg',
                                          'requester_email': 'jerryguitarist@example.com',
                                          'requester_id': '5c9553cb27e377f24eed49f7',
                                          'assignee_name': 'Eeshan Garg',
                                          'assignee_email': 'jerryguitarist@example.com',
                                          'assignee_id': '1957471',
                                          'vendor_created_at': '2019-03-22T21:42:13+00:00',
                                          'vendor_updated_at': '2019-03-22T21:48:28+00:00'},
                               'comment': ['<p>Well, I need some help getting access to a developer account.</p>',
                                           'Eeshan Garg',
                                           True],
                               'changes': None},
 'conversation_admin_replied': {'external_id': 'conversation:21322009097',
                                'account': 'i6wc9ipe',
                                'event_type': 'conversation.admin.replied',
                                'vendor_event_id': 'notif_44d1f763-d3ad-4927-8e5c-da6cd6ca78d2',
                                'fields': {'subject': None,
                                           'description': '<p>Hello</p>',
                                           'status': 'open',
                                           'tags': [],
                                           'requester_name': 'Eeshan Garg',
                                           'requester_email': 'jerryguitarist@example.com',
                                           'requester_id': '5c9553cb27e377f24eed49f7',
                                           'assignee_name': 'Cordelia Lear',
                                           'assignee_email': 'cordelia@zulip.com',
                                           'assignee_id': '1957471',
                                           'vendor_created_at': '2019-03-22T21:42:13+00:00',
                                           'vendor_updated_at': '2019-03-22T21:45:12+00:00'},
                                'comment': ['<p>Hey Eeshan! How can I help?</p>', 'Eeshan Garg', True],
                                'changes': None},
 'conversation_admin_noted': {'external_id': 'conversation:21330067382',
                              'account': 'i6wc9ipe',
                              'event_type': 'conversation.admin.noted',
                              'vendor_event_id': 'notif_2087a079-b2de-408b-8f30-8d56695fe2d9',
                              'fields': {'subject': None,
                                         'description': "<p>Hey! I'd like to set up a new account</p>",
                                         'status': 'open',
                                         'tags': [],
                                         'requester_name': 'Eeshan Garg',
                                         'requester_email': 'jerryguitarist@example.com',
                                         'requester_id': '5c9553cb27e377f24eed49f7',
                                         'assignee_name': 'Cordelia Lear',
                                         'assignee_email': 'cordelia@zulip.com',
                                         'assignee_id': '1957471',
                                         'vendor_created_at': '2019-03-23T21:54:42+00:00',
                                         'vendor_updated_at': '2019-03-23T22:02:17+00:00'},
                              'comment': ["<p>Talk to Tim about this user's query.</p>", 'Eeshan Garg', False],
                              'changes': None},
 'conversation_admin_closed': {'external_id': 'conversation:21322009097',
                               'account': 'i6wc9ipe',
                               'event_type': 'conversation.admin.closed',
                               'vendor_event_id': 'notif_2bc4bf3a-0064-4fb0-9e17-dc44d91bcb9b',
                               'fields': {'subject': None,
                                          'description': '<p>Hello</p>',
                                          'status': 'closed',
                                          'tags': [],
                                          'requester_name': 'Eeshan Garg',
                                          'requester_email': 'jerryguitarist@example.com',
                                          'requester_id': '5c9553cb27e377f24eed49f7',
                                          'assignee_name': 'Cordelia Lear',
                                          'assignee_email': 'cordelia@zulip.com',
                                          'assignee_id': '1957471',
                                          'vendor_created_at': '2019-03-22T21:42:13+00:00',
                                          'vendor_updated_at': '2019-03-22T21:49:50+00:00'},
                               'comment': None,
                               'changes': None},
 'conversation_admin_snoozed': {'external_id': 'conversation:21330067382',
                                'account': 'i6wc9ipe',
                                'event_type': 'conversation.admin.snoozed',
                                'vendor_event_id': 'notif_0530a65a-8052-4f67-9070-a50f1363dc68',
                                'fields': {'subject': None,
                                           'description': "<p>Hey! I'd like to set up a new account</p>",
                                           'status': 'snoozed',
                                           'tags': [],
                                           'requester_name': 'Eeshan Garg',
                                           'requester_email': 'jerryguitarist@example.com',
                                           'requester_id': '5c9553cb27e377f24eed49f7',
                                           'assignee_name': 'Cordelia Lear',
                                           'assignee_email': 'cordelia@zulip.com',
                                           'assignee_id': '1957471',
                                           'vendor_created_at': '2019-03-23T21:54:42+00:00',
                                           'vendor_updated_at': '2019-03-23T22:00:14+00:00'},
                                'comment': None,
                                'changes': None},
 'conversation_admin_single_created': {'external_id': 'conversation:21330075292',
                                       'account': 'i6wc9ipe',
                                       'event_type': 'conversation.admin.single.created',
                                       'vendor_event_id': 'notif_ca44c80b-1eaa-411c-b10f-046890017eea',
                                       'fields': {'subject': 'Hello',
                                                  'description': "<p>Hi Eeshan, What's up</p>",
                                                  'status': 'closed',
                                                  'tags': [],
                                                  'requester_name': 'Eeshan Garg',
                                                  'requester_email': 'jerryguitarist@example.com',
                                                  'requester_id': '5c9553cb27e377f24eed49f7',
                                                  'assignee_name': "Cordelia, Lear's daughter",
                                                  'assignee_email': 'cordelia@zulip.com',
                                                  'assignee_id': '1957471',
                                                  'vendor_created_at': '2019-03-23T21:56:21+00:00',
                                                  'vendor_updated_at': '2019-03-23T21:56:21+00:00'},
                                       'comment': ["<p>Hi Eeshan, What's up</p>",
                                                   "Cordelia, Lear's daughter",
                                                   True],
                                       'changes': None},
 'conversation_part_tag_created': {'external_id': 'conversation:21330067382',
                                   'account': 'i6wc9ipe',
                                   'event_type': 'conversation_part.tag.created',
                                   'vendor_event_id': 'notif_11aef68a-8049-4f29-bbd9-48a7adfc8f30',
                                   'fields': {'subject': None,
                                              'description': "<p>Hey! I'd like to set up a new account</p>",
                                              'status': 'open',
                                              'tags': ['developer'],
                                              'requester_name': 'Eeshan Garg',
                                              'requester_email': 'jerryguitarist@example.com',
                                              'requester_id': '5c9553cb27e377f24eed49f7',
                                              'assignee_id': None,
                                              'assignee_name': None,
                                              'assignee_email': None,
                                              'vendor_created_at': '2019-03-23T21:54:42+00:00',
                                              'vendor_updated_at': '2019-03-23T22:05:44+00:00'},
                                   'comment': None,
                                   'changes': {'tags': {'added': ['developer']}}},
 'conversation_admin_open_assigned': {'external_id': 'conversation:215472621202693',
                                      'account': 'abc123def',
                                      'event_type': 'conversation.admin.open.assigned',
                                      'vendor_event_id': 'notif_58e78c8e-1755-4e61-954a-dc1bb1cead0d',
                                      'fields': {'subject': None,
                                                 'description': '<p>helklo</p>',
                                                 'status': 'open',
                                                 'priority': 'not_priority',
                                                 'tags': [],
                                                 'custom_fields': {'Has attachments': False,
                                                                   'Imported via standalone': False,
                                                                   'Auto-translated': False,
                                                                   'Fin AI Agent: Preview': False,
                                                                   'Fin AI Agent: Image used in reply': False,
                                                                   'Copilot used': False},
                                                 'requester_id': '696205460674dbb9050aa7fd',
                                                 'assignee_id': '9608799',
                                                 'group': None,
                                                 'vendor_created_at': '2026-01-10T07:56:29+00:00',
                                                 'assignee_name': 'John Doe',
                                                 'assignee_email': 'admin@example.com',
                                                 'vendor_updated_at': '2026-01-10T08:00:01+00:00'},
                                      'comment': ['<p class="no-margin">aMSIJJO</p>', 'John Doe', True],
                                      'changes': None},
 'conversation_contact_attached': {'external_id': 'conversation:215472621202693',
                                   'account': 'abc123def',
                                   'event_type': 'conversation.contact.attached',
                                   'vendor_event_id': 'notif_15048009-a4c5-472f-9055-a0e4d7c7a3bc',
                                   'fields': {'vendor_created_at': '2026-01-10T07:56:29+00:00',
                                              'vendor_updated_at': '2026-01-10T08:10:15+00:00'},
                                   'comment': None,
                                   'changes': None},
 'conversation_operator_replied': {'external_id': 'conversation:215472621202693',
                                   'account': 'abc123def',
                                   'event_type': 'conversation.operator.replied',
                                   'vendor_event_id': 'notif_9108e504-998b-4afb-afd2-405cff43b99f',
                                   'fields': {'subject': None,
                                              'description': '<p>helklo</p>',
                                              'status': 'open',
                                              'priority': 'not_priority',
                                              'tags': [],
                                              'custom_fields': {'Has attachments': False,
                                                                'Imported via standalone': False,
                                                                'Auto-translated': False,
                                                                'Fin AI Agent: Preview': False,
                                                                'Fin AI Agent: Image used in reply': False,
                                                                'Copilot used': False},
                                              'requester_id': '696205460674dbb9050aa7fd',
                                              'assignee_id': None,
                                              'group': None,
                                              'vendor_created_at': '2026-01-10T07:56:29+00:00',
                                              'vendor_updated_at': '2026-01-10T07:56:33+00:00'},
                                   'comment': ['<p>shetty will reply as soon as they can.</p>', 'Fin', True],
                                   'changes': None},
 'conversation_priority_updated': {'external_id': 'conversation:215472621202693',
                                   'account': 'abc123def',
                                   'event_type': 'conversation.priority.updated',
                                   'vendor_event_id': 'notif_92261e36-95a7-4a80-90ef-bda7b55287cf',
                                   'fields': {'subject': None,
                                              'description': '<p>helklo</p>',
                                              'status': 'open',
                                              'priority': 'priority',
                                              'tags': [],
                                              'custom_fields': {'Has attachments': False,
                                                                'Imported via standalone': False,
                                                                'Auto-translated': False,
                                                                'Fin AI Agent: Preview': False,
                                                                'Fin AI Agent: Image used in reply': False,
                                                                'Copilot used': False},
                                              'requester_id': '696205460674dbb9050aa7fd',
                                              'assignee_id': '9608799',
                                              'assignee_name': 'John Doe',
                                              'assignee_email': 'admin@example.com',
                                              'group': None,
                                              'vendor_created_at': '2026-01-10T07:56:29+00:00',
                                              'vendor_updated_at': '2026-01-10T08:08:54+00:00'},
                                   'comment': None,
                                   'changes': None},
 'conversation_part_redacted': {'external_id': 'conversation:215472621202693',
                                'account': 'abc123def',
                                'event_type': 'conversation_part.redacted',
                                'vendor_event_id': 'notif_574e80f7-1e3a-425d-a485-2fe8ddf0b6d9',
                                'fields': {'subject': None,
                                           'description': '<p>helklo</p>',
                                           'status': 'open',
                                           'priority': 'not_priority',
                                           'tags': [],
                                           'custom_fields': {'Has attachments': False,
                                                             'Imported via standalone': False,
                                                             'Auto-translated': False,
                                                             'Fin AI Agent: Preview': False,
                                                             'Fin AI Agent: Image used in reply': False,
                                                             'Copilot used': False},
                                           'requester_id': '696205460674dbb9050aa7fd',
                                           'assignee_id': '9608799',
                                           'assignee_name': 'John Doe',
                                           'assignee_email': 'admin@example.com',
                                           'group': None,
                                           'vendor_created_at': '2026-01-10T07:56:29+00:00',
                                           'vendor_updated_at': '2026-01-10T08:20:04+00:00'},
                                'comment': None,
                                'changes': None},
 'conversation_deleted': {'external_id': 'conversation:215472621305755',
                          'account': 'abc123def',
                          'event_type': 'conversation.deleted',
                          'vendor_event_id': 'notif_d808d1ab-c203-42fb-9e66-d281c7d1f74d',
                          'fields': {'vendor_updated_at': '2026-01-11T06:14:57+00:00'},
                          'comment': None,
                          'changes': None,
                          'deletion': 'soft'}}

REJECTED = {'conversation_deleted_without_id': 'data.item.conversation_id',
 'conversation_under_a_ticket_topic': 'data.item.type',
 'notification_without_topic': 'topic',
 'ticket_part_without_ticket_id': 'data.item.ticket.id',
 'ticket_topic_without_item': 'data.item'}
IGNORED = ['company_created',
 'contact_deleted',
 'contact_user_created',
 'intercom_docs_company_created',
 'intercom_docs_signed_user_created',
 'ping',
 'user_created']

#: Intercom names its events in the body: no fixture comes with a header.
HEADERS: dict[str, dict[str, str]] = {}

(test_each_fixture_normalizes_to_the_whole_event_it_describes,
 test_each_unusable_fixture_is_refused_naming_the_field,
 test_each_authentic_event_not_about_a_ticket_normalizes_to_nothing) = fixture_tests(intercom, CASES, REJECTED, IGNORED,
                                                                                    HEADERS)


def changed(case: str, change) -> dict:
    body = copy.deepcopy(load("intercom", case))
    change(body)
    return body


def item(case: str) -> dict:
    return load("intercom", case)["data"]["item"]


BAD_VALUES = {
    "a topic that is not text": (lambda b: b.update(topic=42), "topic"),
    "data that is not an object": (lambda b: b.update(data=[b["data"]]), "data"),
    "an item of another kind": (lambda b: b["data"]["item"].update(type="contact"), "data.item.type"),
    "an unrendered ticket id": (lambda b: b["data"]["item"].update(id="{{ticket.id}}"), "data.item.id"),
    "a title that is an object": (lambda b: b["data"]["item"]["ticket_attributes"].update(_default_title_={"x": 1}),
                                  "data.item.ticket_attributes._default_title_"),
    "attributes that are a list": (lambda b: b["data"]["item"].update(ticket_attributes=[]),
                                   "data.item.ticket_attributes"),
    "a state category that is a fraction": (lambda b: b["data"]["item"]["ticket_state"].update(category=1.5),
                                            "data.item.ticket_state.category"),
    "contacts that are text": (lambda b: b["data"]["item"].update(contacts="someone"), "data.item.contacts"),
    "parts that are not a list": (lambda b: b["data"]["item"]["ticket_parts"].update(ticket_parts={}),
                                  "data.item.ticket_parts.ticket_parts"),
}


@pytest.mark.parametrize("case", list(BAD_VALUES))
def test_a_ticket_value_of_the_wrong_kind_is_refused_naming_the_field(case):
    change, field = BAD_VALUES[case]
    with pytest.raises(InvalidField) as refused:
        intercom.normalize(changed("ticket_created", change), {})
    assert refused.value.field == field


def test_a_part_that_fired_must_be_an_object():
    body = changed("ticket_note_created", lambda b: b["data"]["item"].update(ticket_part="note"))
    with pytest.raises(InvalidField) as refused:
        intercom.normalize(body, {})
    assert refused.value.field == "data.item.ticket_part"


def test_a_conversation_with_a_tickets_number_is_another_ticket():
    ticket = intercom.normalize(load("intercom", "ticket_closed"), {})
    body = changed("conversation_priority_updated", lambda b: b["data"]["item"].update(id="215472629311235"))
    conversation = intercom.normalize(body, {})
    assert (ticket.external_id, conversation.external_id) == ("ticket:215472629311235",
                                                             "conversation:215472629311235")


def test_topics_not_about_a_ticket_are_ignored_whatever_their_body():
    for body in ({"topic": "contact.lead.created"}, {"topic": "visitor.signed_up", "data": "?"},
                 {"topic": "admin.away_mode_updated", "data": {"item": {"type": "admin", "id": "1"}}}):
        assert intercom.normalize(body, {}) is None


def test_a_body_that_is_neither_a_notification_nor_an_object_is_refused_naming_the_topic():
    for body in ({"ticket": {"id": 31}}, {"type": "contact", "id": "5"}, {"topic": ""}):
        with pytest.raises(InvalidField) as refused:
            intercom.normalize(body, {})
        assert refused.value.field == "topic"


def test_a_conversation_handed_on_alone_is_a_snapshot_without_news():
    """A relay's `data.item` (or an API object) lists parts of any age: none is the event's."""
    event = intercom.normalize(item("conversation_admin_noted"), {})
    assert (event.external_id, event.event_type, event.comment, event.changes, event.vendor_event_id) == (
        "conversation:21330067382", "ticket.snapshot", None, None, None)
    assert event.fields["vendor_updated_at"].isoformat() == "2019-03-23T22:02:16+00:00"  # the object's updated_at


def test_the_notification_id_is_the_delivery_and_none_when_unusable():
    for value, expected in ((" notif_1 ", "notif_1"), (None, None), ("", None), (7, None), ("notif_\x00", None),
                            ("n" * 300, "n" * 200)):
        event = intercom.normalize(changed("ticket_closed", lambda b, value=value: b.update(id=value)), {})
        assert event.vendor_event_id == expected


def test_the_account_is_the_sources_or_else_the_workspace_the_body_names():
    body = load("intercom", "ticket_closed")
    assert intercom.normalize(body, {}, "abc123def").account == "abc123def"
    assert intercom.normalize(body, {}).account == "abc123def"
    assert intercom.claimed_accounts(body, {}) == ("abc123def",)
    for app_id in (None, "", "a b", "x" * 65, 42):
        assert intercom.claimed_accounts({**body, "app_id": app_id}, {}) == ()
    assert intercom.normalize({**body, "app_id": None}, {}).account == ""


def test_a_note_topic_is_private_whatever_its_part_says():
    """Never a private note shown as public: the topic says note even if the part does not."""
    body = changed("ticket_note_created", lambda b: b["data"]["item"]["ticket_part"].update(part_type="comment"))
    assert intercom.normalize(body, {}).comment.public is False


def test_an_event_without_its_time_falls_back_to_the_objects_updated_at():
    body = changed("ticket_closed", lambda b: b.pop("created_at"))
    assert plain(intercom.normalize(body, {}))["fields"]["vendor_updated_at"] == "2026-01-11T07:41:06+00:00"
