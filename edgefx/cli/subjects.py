"""`edgefx subjects list|remove` and `edgefx audit verify`: the enrolled subjects and the audit trail's check."""

from __future__ import annotations

import argparse
from typing import Any

from edgefx.cli.options import add_engine_options, add_gallery_options, gallery_settings, print_json
from edgefx.engine import Engine
from edgefx.gallery.store import check_subject_id
from edgefx.runtime.errors import AuditChainBroken


def engine_for(args: argparse.Namespace) -> Engine:
    return Engine(gallery_settings(args), load_qa=False)


def cmd_subjects_list(args: argparse.Namespace) -> int:
    rows = [s.to_dict() for s in engine_for(args).subjects()]
    if args.json:
        print_json(rows)
    else:
        for s in rows:
            print(f"{s['id']:<24} {s['templates']:3d} template(s)  enrolled {s['created']}  {s['name'] or ''}")
        print(f"{len(rows)} subject(s)")
    return 0


def cmd_subjects_remove(args: argparse.Namespace) -> int:
    check_subject_id(args.subject)
    erased = engine_for(args).remove_subject(args.subject)
    data = {"removed": args.subject, "templates_erased": erased}
    if args.json:
        print_json(data)
    else:
        print(f"removed {args.subject}: {erased} template(s) erased, database vacuumed")
    return 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    report = engine_for(args).audit_verify()
    if not report["ok"]:
        raise AuditChainBroken(f"the audit trail does not verify: {report['problem']} ({report['rows']} row(s) "
                               "before it verify)")
    if args.json:
        print_json(report)
    else:
        print(f"audit trail verifies: {report['rows']} row(s), head {report['head'][:16]}")
    return 0


def with_options(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--json", action="store_true")
    add_gallery_options(p)
    add_engine_options(p)
    return p


def register(sub: Any) -> None:
    group = sub.add_parser("subjects", help="list or remove enrolled subjects")
    actions = group.add_subparsers(dest="subjects_command", required=True)
    with_options(actions.add_parser("list", help="every enrolled subject")).set_defaults(func=cmd_subjects_list)
    p = with_options(actions.add_parser("remove", help="erase a subject's templates (vacuumed, WAL checkpointed)"))
    p.add_argument("subject", metavar="ID")
    p.set_defaults(func=cmd_subjects_remove)

    group = sub.add_parser("audit", help="the tamper-evident audit trail")
    actions = group.add_subparsers(dest="audit_command", required=True)
    p = with_options(actions.add_parser("verify", help="check the hash chain (exit 2 on a changed or deleted row)"))
    p.set_defaults(func=cmd_audit_verify)
