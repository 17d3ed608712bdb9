"""Every registered vendor is named wherever the service is described to an operator.

The registry (ingestion/vendors/__init__.py) is the one list of vendors; the prose around
it is written by hand. Help Scout once shipped missing from the OpenAPI description and
the compose file: these tests fail when a vendor is added (or renamed) without them.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from ingestion.vendors import VENDORS
from ingestion.web.openapi import document

ROOT = Path(__file__).resolve().parent.parent
IDS = [vendor.name for vendor in VENDORS]


def readme_section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else None]


def vendor_table_rows() -> list[str]:
    """The rows of the table that opens README's "Connecting the vendors"."""
    section = readme_section("Connecting the vendors")
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    assert rows and rows[0].startswith("| vendor |"), "the section opens with the vendors' table"
    return rows[1:]


def variables(vendor) -> list[str]:
    return [credential.variable for credential in vendor.credentials]


@pytest.mark.parametrize("vendor", VENDORS, ids=IDS)
def test_the_readme_table_has_a_row_with_the_vendors_url_and_variables(vendor):
    rows = [row for row in vendor_table_rows() if row.startswith(f"| {vendor.title} |")]
    assert len(rows) == 1, f"one row for {vendor.title}"
    assert f"`/api/v1/ingest/webhook/{vendor.name}`" in rows[0]
    for variable in variables(vendor):
        assert f"`{variable}`" in rows[0]


def test_the_readme_table_names_no_vendor_the_registry_lacks():
    titles = {vendor.title for vendor in VENDORS}
    assert {row.split("|")[1].strip() for row in vendor_table_rows()} == titles


@pytest.mark.parametrize("vendor", VENDORS, ids=IDS)
def test_the_configuration_table_documents_every_credential_variable(vendor):
    section = readme_section("Configuration")
    for variable in variables(vendor):
        assert f"| `{variable}` |" in section


@pytest.mark.parametrize("vendor", VENDORS, ids=IDS)
def test_the_openapi_description_names_the_vendor_and_its_paths(vendor):
    spec = yaml.safe_load(document(VENDORS))
    assert vendor.title in spec["info"]["description"]
    assert f"/api/v1/ingest/webhook/{vendor.name}" in spec["paths"]
    assert f"/api/v1/ingest/webhook/{vendor.name}/{{account}}" in spec["paths"]


@pytest.mark.parametrize("example", [".env.example", "deploy/k8s/secret.example.yaml"])
@pytest.mark.parametrize("vendor", VENDORS, ids=IDS)
def test_the_example_environments_offer_every_credential_variable(vendor, example):
    text = (ROOT / example).read_text()
    for variable in variables(vendor):
        # set, or commented out with a placeholder to fill in
        assert re.search(rf"^\s*#?\s*{variable}\s*[=:]", text, re.MULTILINE), f"{variable} in {example}"


@pytest.mark.parametrize("vendor", VENDORS, ids=IDS)
def test_the_compose_file_lists_the_vendors_webhook(vendor):
    text = (ROOT / "docker-compose.yml").read_text()
    listed = re.search(r"/api/v1/ingest/webhook/\{([a-z,]+)\}", text)
    assert listed, "the compose file's header lists the webhook URLs"
    assert vendor.name in listed.group(1).split(",")


EXPORTS = [vendor for vendor in VENDORS if vendor.export is not None]


@pytest.mark.parametrize("vendor", EXPORTS, ids=[vendor.name for vendor in EXPORTS])
def test_every_reconciled_vendors_api_variables_are_documented_and_offered(vendor):
    """A vendor the reconciler reads: its API secret and URL variables in the configuration
    table, its account variable too, its secret in both example environments."""
    section = readme_section("Configuration")
    account = f"{vendor.name.upper()}_API_ACCOUNT"  # the variable the reconciler names (engine.py)
    for variable in (vendor.export.secret_variable, vendor.export.url_variable, account):
        assert f"`{variable}`" in section, variable
    assert vendor.title in readme_section("Operations").split("### Reconciliation", 1)[1].split("\n### ", 1)[0]
    for example in (".env.example", "deploy/k8s/secret.example.yaml"):
        text = (ROOT / example).read_text()
        assert re.search(rf"^\s*#?\s*{vendor.export.secret_variable}\s*[=:]", text, re.MULTILINE), example
