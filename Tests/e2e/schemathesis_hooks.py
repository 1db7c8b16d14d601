"""Schemathesis hooks for the stateful run (SCHEMATHESIS_HOOKS=schemathesis_hooks): a generated
session opening is made one the simulated pen can take — its cartridge, a fresh client id (the
5-day gap rule refuses a client seen before) — so that the links open → cartridge → setpoint →
close are walked on real sessions instead of ending at the first 409."""

import itertools

import schemathesis

_clients = itertools.count(1)


@schemathesis.hook
def map_body(context, body):
    operation = context.operation
    if operation is None or not isinstance(body, dict):
        return body
    method = operation.method.upper()
    if method == "POST" and operation.path == "/v1/sessions":
        body = {key: value for key, value in body.items() if key not in ("pen_serial", "session_id", "gap_override_reason")}
        body["client_id"] = f"FUZZ-{next(_clients)}"
        body["cartridge_id"] = "SIM-CART-0001"
    elif method == "PUT" and operation.path == "/v1/sessions/{id}/cartridge":
        body = {"cartridge_id": "SIM-CART-0001"}
    return body
