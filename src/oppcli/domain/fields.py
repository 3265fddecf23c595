"""THE single description of an opportunity's fields.

Everything else derives from this table: the CLI flags of create/update, validation, the
JSON key order the store writes, table columns, CSV columns, `--fields` and `--sort` names.
The names and order are Copper's (developer API v1, the opportunity object).
"""

from __future__ import annotations

from dataclasses import dataclass

STATUSES = ("Open", "Won", "Lost", "Abandoned")
# Copper's search body takes status ids; records carry the strings.
STATUS_IDS = {name: i for i, name in enumerate(STATUSES)}
PRIORITIES = ("None", "Low", "Medium", "High")
PIPELINE_TYPES = ("opportunity", "project", "item")
DATE_ORDERS = ("MDY", "DMY")

# Kinds of value; values.py knows how to parse and check each.
INT = "int"
REF = "ref"  # an integer id pointing into a lookup table (null allowed)
STR = "str"
TEXT = "text"
MONEY = "money"
BOOL = "bool"
ENUM = "enum"
DATE = "date"  # close_date: a string in the account's date order, "1/13/2018"
TIMESTAMP = "timestamp"  # Unix seconds
TAGS = "tags"
PERCENT = "percent"  # int 0..100
CUSTOM = "custom_fields"


@dataclass(frozen=True)
class Field:
    name: str
    kind: str
    help: str
    writable: bool = True
    required: bool = False
    nullable: bool = True
    choices: tuple[str, ...] = ()
    lookup: str | None = None  # lookup table a REF points into
    column: str | None = None  # short heading in tables (the field name when None)
    sortable: bool = True

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def param(self) -> str:
        return self.name

    @property
    def metavar(self) -> str:
        """How help shows the value a flag takes."""
        if self.kind == ENUM:
            return self.name.upper()
        return {REF: "ID", INT: "ID", STR: "TEXT", TEXT: "TEXT", MONEY: "NUMBER",
                PERCENT: "0-100", DATE: "DATE", BOOL: "true|false"}.get(self.kind, "VALUE")


FIELDS: tuple[Field, ...] = (
    Field("id", INT, "Opportunity id, assigned by the backend.", writable=False, nullable=False,
          column="ID"),
    Field("name", STR, "Name of the deal.", required=True, nullable=False, column="Name"),
    Field("assignee_id", REF, "User who owns the deal.", lookup="users", column="Owner"),
    Field("close_date", DATE, "Expected close date: YYYY-MM-DD, or MM/DD/YYYY or DD/MM/YYYY "
          "in the configured date order.", column="Close"),
    Field("company_id", REF, "Company the deal is with.", lookup="companies"),
    Field("company_name", STR, "Company name, derived from company_id.", writable=False),
    Field("customer_source_id", REF, "Customer source.", lookup="customer_sources"),
    Field("details", TEXT, "Free-text description.", sortable=False),
    Field("loss_reason_id", REF, "Loss reason (applies to Lost deals).", lookup="loss_reasons"),
    Field("monetary_value", MONEY, "Deal value, a number.", column="Value"),
    Field("pipeline_id", REF, "Pipeline.", lookup="pipelines"),
    Field("pipeline_is_revenue", BOOL, "Whether the pipeline counts as revenue.", writable=False,
          sortable=False),
    Field("primary_contact_id", REF, "Person who is the main contact.", required=True,
          lookup="people"),
    Field("priority", ENUM, "Priority.", nullable=False, choices=PRIORITIES, column="Priority"),
    Field("pipeline_stage_id", REF, "Stage within the pipeline.", lookup="stages",
          column="Stage"),
    Field("pipeline_type", ENUM, "Kind of pipeline.", choices=PIPELINE_TYPES, writable=False),
    Field("status", ENUM, "Status.", nullable=False, choices=STATUSES, column="Status"),
    Field("tags", TAGS, "Tags (a list of strings).", nullable=False, sortable=False),
    Field("win_probability", PERCENT, "Win probability, 0 to 100.", column="Prob%"),
    Field("date_created", TIMESTAMP, "Created, Unix seconds.", writable=False, nullable=False),
    Field("date_modified", TIMESTAMP, "Last modified, Unix seconds.", writable=False,
          nullable=False),
    Field("custom_fields", CUSTOM, "Custom field values: [{custom_field_definition_id, value}].",
          nullable=False, sortable=False),
)

BY_NAME: dict[str, Field] = {f.name: f for f in FIELDS}
FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in FIELDS)
WRITABLE: tuple[Field, ...] = tuple(f for f in FIELDS if f.writable)
# Flags that take a plain value on create/update (tags and custom fields have their own).
SIMPLE_WRITABLE: tuple[Field, ...] = tuple(f for f in WRITABLE if f.kind not in (TAGS, CUSTOM))
REQUIRED: tuple[str, ...] = tuple(f.name for f in FIELDS if f.required)
SORTABLE: tuple[str, ...] = tuple(f.name for f in FIELDS if f.sortable)
# oppcli's sort fields -> Copper's sort_by values: only those whose order is not in doubt.
# Copper may sort "assignee", "stage", "status" or "priority" by name or by its own ranks, not as
# the local store does, so those (and fields Copper cannot sort by at all) are sorted by the
# client after fetching every match (see split_for_copper).
COPPER_SORT = {"name": "name", "date_modified": "date_modified", "date_created": "date_created",
               "company_name": "company_name", "monetary_value": "monetary_value",
               "close_date": "close_date", "win_probability": "win_probability"}
# Sort fields Copper cannot order by: the Copper backend sorts them after fetching every match.
CLIENT_SORTED: tuple[str, ...] = tuple(n for n in SORTABLE if n not in COPPER_SORT)
# Fields a client may send that the backend owns; accepted in --from-json and ignored.
READ_ONLY: frozenset[str] = frozenset(f.name for f in FIELDS if not f.writable)
# Extras some Copper responses carry: kept and passed through, never written by oppcli.
PASSTHROUGH: frozenset[str] = frozenset({
    "interaction_count", "date_stage_changed", "date_last_contacted", "leads_converted_from",
    "date_lead_created", "converted_unit", "converted_value", "monetary_unit",
})
# Kinds only the extras have.
MONEY_TEXT = "money_text"  # a decimal number written as a string: converted_value, "250000.0"
LEAD_CONVERSIONS = "lead_conversions"  # [{"lead_id": N, "converted_timestamp": Unix seconds}]
# The extras (PASSTHROUGH) in Copper's own order, with the kind of their value: how `show`
# displays them, the CSV/TSV columns export always writes (after the fields, before the cf:
# columns) and how import reads such a cell back. Not FIELDS: not --fields or --sort names,
# never sent to Copper.
EXTRAS: tuple[Field, ...] = (
    Field("interaction_count", INT, "Interactions logged with the deal.", writable=False),
    Field("monetary_unit", STR, "Currency of monetary_value, e.g. USD.", writable=False),
    Field("converted_unit", STR, "Currency of converted_value, e.g. USD.", writable=False),
    Field("converted_value", MONEY_TEXT, 'The value in converted_unit, a string: "250000.0".',
          writable=False),
    Field("date_stage_changed", TIMESTAMP, "Stage last changed, Unix seconds.", writable=False),
    Field("date_last_contacted", TIMESTAMP, "Last contacted, Unix seconds.", writable=False),
    Field("leads_converted_from", LEAD_CONVERSIONS,
          "Leads the deal was converted from: [{lead_id, converted_timestamp}].", writable=False),
    Field("date_lead_created", TIMESTAMP, "Its lead was created, Unix seconds.", writable=False),
)
EXTRA_BY_NAME: dict[str, Field] = {f.name: f for f in EXTRAS}
EXTRA_NAMES: tuple[str, ...] = tuple(f.name for f in EXTRAS)
# The default columns of list/search tables, in reading order.
TABLE_DEFAULT: tuple[str, ...] = ("id", "name", "status", "pipeline_stage_id", "monetary_value",
                                  "win_probability", "close_date", "priority", "assignee_id")

# Lookup tables a backend provides, for names -> ids (and ids -> names in tables).
LOOKUP_TABLES = ("pipelines", "users", "customer_sources", "loss_reasons",
                 "custom_field_definitions", "companies", "people")

# Custom field data types (Copper's names) whose value is text, and those whose value is a number.
CF_TEXT_TYPES = ("String", "Text", "URL")
CF_NUMBER_TYPES = ("Float", "Percentage", "Currency")


def parse_field_list(text: str) -> list[str]:
    """Split `--fields a,b,c` and check every name; raises ValidationError listing valid names."""
    from oppcli.errors import ValidationError

    names = list(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    if not names:
        raise ValidationError("--fields is empty", "give field names separated by commas")
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise ValidationError(
            f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} in --fields",
            "valid fields: " + ", ".join(FIELD_NAMES),
        )
    return names
