"""Demo data for `oppcli init --sample`: lookup tables and a few dozen realistic deals.

Deterministic (no randomness, fixed timestamps) so examples and tests can rely on it.
"""

from __future__ import annotations

from typing import Any

# A fresh store without --sample still has Copper's default pipeline, so that create works.
DEFAULT_LOOKUPS: dict[str, Any] = {
    "pipelines": [
        {"id": 1, "name": "Sales", "is_default": True, "is_revenue": True, "type": "opportunity",
         "stages": [
             {"id": 11, "name": "Qualified", "win_probability": 10},
             {"id": 12, "name": "Follow-up", "win_probability": 25},
             {"id": 13, "name": "Presentation", "win_probability": 50},
             {"id": 14, "name": "Contract Sent", "win_probability": 75},
             {"id": 15, "name": "Negotiation", "win_probability": 90},
         ]},
    ],
    "users": [], "customer_sources": [], "loss_reasons": [], "custom_field_definitions": [],
    "companies": [], "people": [],
}

SAMPLE_LOOKUPS: dict[str, Any] = {
    "pipelines": DEFAULT_LOOKUPS["pipelines"] + [
        {"id": 2, "name": "Renewals", "is_revenue": True, "type": "opportunity",
         "stages": [
             {"id": 21, "name": "Upcoming", "win_probability": 40},
             {"id": 22, "name": "Qualified", "win_probability": 60},
             {"id": 23, "name": "Quote Sent", "win_probability": 80},
             {"id": 24, "name": "Verbal Yes", "win_probability": 95},
         ]},
    ],
    "users": [
        {"id": 101, "name": "Ada Park", "email": "ada.park@example.com"},
        {"id": 102, "name": "Ben Okafor", "email": "ben.okafor@example.com"},
        {"id": 103, "name": "Carla Reyes", "email": "carla.reyes@example.com"},
        {"id": 104, "name": "Dev Raman", "email": "dev.raman@example.com"},
    ],
    "customer_sources": [
        {"id": 201, "name": "Website"}, {"id": 202, "name": "Referral"},
        {"id": 203, "name": "Trade Show"}, {"id": 204, "name": "Outbound"},
    ],
    "loss_reasons": [
        {"id": 301, "name": "Price"}, {"id": 302, "name": "Competitor"},
        {"id": 303, "name": "No Budget"}, {"id": 304, "name": "Timing"},
    ],
    "custom_field_definitions": [
        {"id": 401, "name": "Region", "data_type": "Dropdown", "available_on": ["opportunity"],
         "is_filterable": True,
         "options": [{"id": 4011, "name": "EMEA", "rank": 0}, {"id": 4012, "name": "Americas", "rank": 1},
                     {"id": 4013, "name": "APAC", "rank": 2}]},
        {"id": 402, "name": "Contract Months", "data_type": "Float",
         "available_on": ["opportunity"], "is_filterable": True},
        {"id": 403, "name": "Signed NDA", "data_type": "Checkbox",
         "available_on": ["opportunity"], "is_filterable": True},
        {"id": 404, "name": "Competitors", "data_type": "MultiSelect",
         "available_on": ["opportunity"], "is_filterable": True,
         "options": [{"id": 4041, "name": "Acme CRM", "rank": 0},
                     {"id": 4042, "name": "Globex", "rank": 1},
                     {"id": 4043, "name": "Initech", "rank": 2}]},
        {"id": 405, "name": "Champion Notes", "data_type": "Text",
         "available_on": ["opportunity"], "is_filterable": False},
    ],
    "companies": [
        {"id": 501, "name": "Northwind Traders"}, {"id": 502, "name": "Contoso Ltd"},
        {"id": 503, "name": "Fabrikam Inc"}, {"id": 504, "name": "Tailspin Toys"},
        {"id": 505, "name": "Wide World Importers"}, {"id": 506, "name": "Adventure Works"},
        {"id": 507, "name": "Blue Yonder Airlines"}, {"id": 508, "name": "Coho Winery"},
        {"id": 509, "name": "Lucerne Publishing"}, {"id": 510, "name": "Margie's Travel"},
    ],
    "people": [
        {"id": 601, "name": "Nancy Davolio", "company_id": 501, "email": "nancy@northwind.example"},
        {"id": 602, "name": "Andrew Fuller", "company_id": 502, "email": "andrew@contoso.example"},
        {"id": 603, "name": "Janet Leverling", "company_id": 503, "email": "janet@fabrikam.example"},
        {"id": 604, "name": "Margaret Peacock", "company_id": 504, "email": "margaret@tailspin.example"},
        {"id": 605, "name": "Steven Buchanan", "company_id": 505, "email": "steven@wwi.example"},
        {"id": 606, "name": "Michael Suyama", "company_id": 506, "email": "michael@aw.example"},
        {"id": 607, "name": "Robert King", "company_id": 507, "email": "robert@blueyonder.example"},
        {"id": 608, "name": "Laura Callahan", "company_id": 508, "email": "laura@coho.example"},
        {"id": 609, "name": "Anne Dodsworth", "company_id": 509, "email": "anne@lucerne.example"},
        {"id": 610, "name": "Yoshi Latimer", "company_id": 510, "email": "yoshi@margies.example"},
        {"id": 611, "name": "Maria Anders", "company_id": 501, "email": "maria@northwind.example"},
        {"id": 612, "name": "Pat Lee", "company_id": None, "email": "pat.lee@example.com"},
    ],
}

_PRODUCTS = ["Annual Licence", "Pilot", "Expansion", "Support Plan", "Onboarding Package",
             "Analytics Add-on", "Enterprise Upgrade", "Seat Top-up"]
_STATUS_CYCLE = ["Open", "Open", "Open", "Won", "Open", "Lost", "Open", "Abandoned", "Open", "Won"]
_PRIORITY_CYCLE = ["High", "Medium", "None", "Low", "Medium", "High", "None", "Medium"]
_TAG_SETS = [["enterprise"], ["smb"], ["enterprise", "q3"], [], ["renewal"], ["upsell", "q3"],
             ["smb", "hot"], ["enterprise", "hot"]]
BASE_TIME = 1767225600  # 2026-01-01T00:00:00Z


def sample_records(count: int = 36, date_order: str = "MDY") -> list[dict[str, Any]]:
    """The demo deals; close dates written in the store's date order, as Copper would."""
    import datetime as dt

    from oppcli.domain.values import format_close_date

    lk = SAMPLE_LOOKUPS
    people = lk["people"]
    companies = {c["id"]: c["name"] for c in lk["companies"]}
    users = [u["id"] for u in lk["users"]]
    sources = [s["id"] for s in lk["customer_sources"]]
    losses = [r["id"] for r in lk["loss_reasons"]]
    records = []
    for i in range(count):
        person = people[i % len(people)]
        company_id = person["company_id"]
        renewal = i % 4 == 3
        pipeline = lk["pipelines"][1 if renewal else 0]
        stages = pipeline["stages"]
        stage = stages[(i * 3) % len(stages)]
        status = _STATUS_CYCLE[i % len(_STATUS_CYCLE)]
        product = _PRODUCTS[i % len(_PRODUCTS)]
        company_name = companies.get(company_id) if company_id else None
        created = BASE_TIME + i * 86400 * 3 + 3600 * (i % 7)
        month = 1 + (i * 5) % 12
        day = 1 + (i * 7) % 28
        value = (5 + (i * 37) % 120) * 1000 + (500 if i % 5 == 0 else 0)
        tags = _TAG_SETS[i % len(_TAG_SETS)] + (["renewal"] if renewal and i % 8 != 3 else [])
        records.append({
            "id": 1001 + i,
            "name": f"{company_name or person['name']} - {product}",
            "assignee_id": None if i % 9 == 8 else users[i % len(users)],
            "close_date": format_close_date(dt.date(2026, month, day), date_order),
            "company_id": company_id,
            "company_name": company_name,
            "customer_source_id": None if i % 6 == 5 else sources[i % len(sources)],
            "details": f"{product} for {company_name or person['name']}; contact {person['name']}."
                       if i % 3 else None,
            "loss_reason_id": losses[i % len(losses)] if status == "Lost" else None,
            "monetary_value": value if i % 11 != 10 else None,
            "pipeline_id": pipeline["id"],
            "pipeline_is_revenue": True,
            "primary_contact_id": person["id"],
            "priority": _PRIORITY_CYCLE[i % len(_PRIORITY_CYCLE)],
            "pipeline_stage_id": stage["id"],
            "pipeline_type": "opportunity",
            "status": status,
            "tags": sorted(set(tags), key=tags.index),
            "win_probability": 100 if status == "Won" else 0 if status in ("Lost", "Abandoned")
            else stage["win_probability"],
            "date_created": created,
            "date_modified": created + 3600 * (1 + i % 48) + (i * 7919) % 86400,
            "custom_fields": [
                {"custom_field_definition_id": 401, "value": [4011, 4012, 4013][i % 3]
                 if i % 5 != 4 else None},
                {"custom_field_definition_id": 402, "value": [12, 24, 36, 6][i % 4]
                 if i % 3 != 2 else None},
                {"custom_field_definition_id": 403, "value": i % 2 == 0},
                {"custom_field_definition_id": 404, "value": [[4041], [4042, 4043], [], [4043]][i % 4]},
                {"custom_field_definition_id": 405, "value": "Champion is the CFO" if i % 7 == 0
                 else None},
            ],
        })
    return records
