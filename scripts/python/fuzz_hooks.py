"""schemathesis hooks of scripts/fuzz-api (loaded through SCHEMATHESIS_HOOKS).

A feed `cursor` is valid only as the server issued it (`next_cursor`), and
only without `page` and with its own `sort` and `tag`: rules no schema can
state, so docs/api.md and the parameter's description state them in words.
Cases meant to be valid therefore leave `cursor` out (tests/api_documents.rs
and the crates' tests cover real cursors); cases meant to be invalid keep
their made-up cursors, which the server must refuse.
"""

import schemathesis
from schemathesis.core import NotSet


@schemathesis.hook
def map_case(context, case):
    meta = case.meta
    if meta is not None and meta.generation.mode.is_positive and case.query:
        case.query.pop("cursor", None)
    return case



@schemathesis.hook
def filter_case(context, case):
    # schemathesis 4.32.5's coverage phase pairs the values of an optional
    # header (Idempotency-Key) with a body of `0` and calls the case valid,
    # though every request body here is an object: not a case of the document.
    meta = case.meta
    if meta is not None and meta.generation.mode.is_positive:
        body = case.body
        if not isinstance(body, (dict, NotSet)):
            return False
    return True
