"""edit: one deal in the user's editor (the policy lives in the library: api.Session.edit,
ops/edit.py; the document in domain/document.py)."""

from __future__ import annotations

from typing import Annotated

import typer

from oppcli.cli import completion as C
from oppcli.cli.commands.common import FieldsOpt, OutputOpt, RawOpt, field_list, run_of


def edit(
    ctx: typer.Context,
    opportunity: Annotated[str, typer.Argument(help="Id (or exact name) of the opportunity.",
                                               metavar="ID", autocompletion=C.ids)],
    output: OutputOpt = None, fields_: FieldsOpt = None, raw: RawOpt = False,
) -> None:
    """Edit one opportunity in your editor ($VISUAL, $EDITOR or vi); writes only what you change.

    The deal opens as a TOML document with names for ids: stage as Pipeline/Stage, owner,
    contact, company, source and loss reason by name, custom fields by their names, dates
    as YYYY-MM-DD; the read-only fields are comments. "" empties a field. On save the
    changed fields are checked as update checks its options and written as one update
    (`oppcli undo` takes it back); the updated record is printed. Nothing changed: nothing
    is written. An invalid document opens again with the problems at the top; without a
    terminal it exits 2 and keeps the file. If the deal changed meanwhile it exits 6 and
    keeps the file. An emptied file, or an editor that exits non-zero, changes nothing
    (exit 2).

    Example: oppcli edit 1001

    \b
    Another editor:  VISUAL='code --wait' oppcli edit "Acme - Pilot"
    """
    run = run_of(ctx)
    run.output_format(output), field_list(fields_)  # checked before the editor opens
    result = run.session.edit(opportunity)
    if not result.written:
        run.notice(f"no changes: opportunity {result.record['id']} is as it was")
        return
    run.notice(f"updated opportunity {result.record['id']}: {', '.join(result.changed)}")
    run.emit_record(result.record, output, fields_, raw)
