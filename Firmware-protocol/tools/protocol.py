"""Reference model of the Stipple pen protocol, read from ../messages.json.

This is the third, independent implementation of the wire format (besides the
Swift and C codecs). It exists to *produce* the shared test vectors and the
generated message code, so it favours plainness over speed.
"""

import json
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TABLE_PATH = os.path.join(HERE, "..", "messages.json")

INT_TYPES = {
    "u8": ("<B", 0, 0xFF),
    "u16": ("<H", 0, 0xFFFF),
    "u32": ("<I", 0, 0xFFFFFFFF),
    "i16": ("<h", -0x8000, 0x7FFF),
    "i32": ("<i", -0x80000000, 0x7FFFFFFF),
}


class Reject(Exception):
    """A frame the receiver must drop, with the reason the vectors name."""

    def __init__(self, reason, detail=None):
        super().__init__(reason if detail is None else f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def load_table(path=TABLE_PATH):
    with open(path, encoding="utf-8") as f:
        table = json.load(f)
    for m in table["messages"]:
        m["id_int"] = int(m["id"], 16)
        for fld in m["fields"]:
            fld["kind"], fld["size"] = field_kind(table, fld)
    return table


def field_kind(table, fld):
    """Return (kind, encoded size); size None for the variable text."""
    t = fld["type"]
    if t in INT_TYPES:
        return "int", struct.calcsize(INT_TYPES[t][0])
    if t.startswith("enum:"):
        return "enum", 1
    if t.startswith("flags:"):
        return "flags", table["flags"][t[6:]]["size"]
    if t.startswith("text[") and t.endswith("]"):
        return "text", int(t[5:-1])
    if t == "text*":
        return "vartext", None
    raise ValueError(f"unknown field type {t}")


def fixed_payload_length(msg):
    return sum(f["size"] for f in msg["fields"] if f["size"] is not None)


def field_range(fld):
    """The protocol range of an integer field (min, max)."""
    if fld["kind"] == "int":
        _, lo, hi = INT_TYPES[fld["type"]]
        return fld.get("min", lo), fld.get("max", hi)
    return None


# --- CRC-32C (CRC-32/ISCSI), bitwise -----------------------------------------

def crc32c(data, crc=0xFFFFFFFF):
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


# --- COBS ---------------------------------------------------------------------

def cobs_encode(raw):
    out = bytearray()
    block = bytearray()
    for b in raw:
        if b == 0:
            out.append(len(block) + 1)
            out += block
            block = bytearray()
        else:
            block.append(b)
            if len(block) == 254:
                out.append(255)
                out += block
                block = bytearray()
    out.append(len(block) + 1)
    out += block
    return bytes(out)


def cobs_decode(enc):
    out = bytearray()
    i = 0
    while i < len(enc):
        code = enc[i]
        if code == 0:
            raise Reject("truncated", "zero byte inside a COBS frame")
        i += 1
        if i + code - 1 > len(enc):
            raise Reject("truncated", "COBS block runs past the delimiter")
        out += enc[i:i + code - 1]
        i += code - 1
        if code != 255 and i < len(enc):
            out.append(0)
    return bytes(out)


# --- fields -------------------------------------------------------------------

def enum_names(table, name):
    return {v["value"]: k for k, v in table["enums"][name]["values"].items()}


def flag_names(table, name):
    return {v["bit"]: k for k, v in table["flags"][name]["bits"].items()}


def encode_payload(table, msg, fields):
    out = bytearray()
    for fld in msg["fields"]:
        v = fields[fld["name"]]
        kind = fld["kind"]
        if kind == "int":
            out += struct.pack(INT_TYPES[fld["type"]][0], v)
        elif kind == "enum":
            if isinstance(v, str):
                v = table["enums"][fld["type"][5:]]["values"][v]["value"]
            out += struct.pack("<B", v)
        elif kind == "flags":
            out += struct.pack("<H" if fld["size"] == 2 else "<B", v)
        elif kind == "text":
            b = v.encode("ascii")
            assert len(b) <= fld["size"], fld["name"]
            out += b + bytes(fld["size"] - len(b))
        else:
            out += v.encode("ascii")
    return bytes(out)


def printable(b):
    return 0x20 <= b <= 0x7E


def decode_payload(table, msg, payload):
    need = fixed_payload_length(msg)
    if len(payload) < need:
        raise Reject("bad_length", f"{msg['name']} needs {need} payload bytes, got {len(payload)}")
    fields = {}
    off = 0
    for fld in msg["fields"]:
        kind, size, name = fld["kind"], fld["size"], fld["name"]
        if kind == "int":
            (v,) = struct.unpack_from(INT_TYPES[fld["type"]][0], payload, off)
            lo, hi = field_range(fld)
            if not lo <= v <= hi:
                raise Reject("bad_field", name)
        elif kind == "enum":
            v = payload[off]
            enum = table["enums"][fld["type"][5:]]
            names = enum_names(table, fld["type"][5:])
            if v not in names and not enum["open"]:
                raise Reject("bad_field", name)
        elif kind == "flags":
            (v,) = struct.unpack_from("<H" if size == 2 else "<B", payload, off)
        elif kind == "text":
            raw = payload[off:off + size]
            text = raw.rstrip(b"\0")
            if any(not printable(b) for b in text):
                raise Reject("bad_field", name)
            if fld.get("nonempty") and not text:
                raise Reject("bad_field", name)
            v = text.decode("ascii")
        else:
            raw = payload[off:]
            size = len(raw)
            if size > fld["max_length"] or any(not printable(b) for b in raw):
                raise Reject("bad_field", name)
            v = raw.decode("ascii")
        fields[name] = v
        off += size
    return fields


# --- frames -------------------------------------------------------------------

def message_by_name(table, name):
    for m in table["messages"]:
        if m["name"] == name:
            return m
    raise KeyError(name)


def message_by_id(table, mid):
    for m in table["messages"]:
        if m["id_int"] == mid:
            return m
    return None


def raw_frame(table, seq, name, fields):
    msg = message_by_name(table, name)
    body = bytes([msg["id_int"], seq]) + encode_payload(table, msg, fields)
    assert len(body) - 2 <= table["framing"]["max_payload"]
    return body + struct.pack("<I", crc32c(body))


def wire_frame(table, seq, name, fields):
    """The bytes a sender writes: delimiter, COBS(raw frame), delimiter."""
    return b"\0" + cobs_encode(raw_frame(table, seq, name, fields)) + b"\0"


def decode_raw(table, raw):
    """Decode one COBS-decoded frame; returns (seq, name, fields) or raises Reject."""
    if len(raw) < 6:
        raise Reject("truncated", f"{len(raw)} bytes is shorter than header and CRC")
    body, (crc,) = raw[:-4], struct.unpack("<I", raw[-4:])
    if crc32c(body) != crc:
        raise Reject("bad_crc")
    mid, seq = body[0], body[1]
    msg = message_by_id(table, mid)
    if msg is None:
        raise Reject("unknown_id", f"0x{mid:02X}")
    return seq, msg["name"], decode_payload(table, msg, body[2:])


def decode_stream(table, data):
    """Split a byte stream at delimiters and decode every non-empty frame.

    Yields ("frame", seq, name, fields) or ("reject", reason, detail).
    A frame whose encoded length exceeds the maximum is "too_long".
    """
    max_enc = table["framing"]["max_encoded_frame"]
    for chunk in data.split(b"\0"):
        if not chunk:
            continue
        if len(chunk) > max_enc:
            yield ("reject", "too_long", None)
            continue
        try:
            raw = cobs_decode(chunk)
            seq, name, fields = decode_raw(table, raw)
            yield ("frame", seq, name, fields)
        except Reject as r:
            yield ("reject", r.reason, r.detail)


# --- canonical text -----------------------------------------------------------

def quote(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_value(table, fld, v):
    kind = fld["kind"]
    if kind == "int":
        return str(v)
    if kind == "enum":
        names = enum_names(table, fld["type"][5:])
        return names.get(v, str(v))
    if kind == "flags":
        names = flag_names(table, fld["type"][6:])
        parts = [names[b] for b in sorted(names) if v & (1 << b)]
        known = sum(1 << b for b in names)
        if v & ~known:
            parts.append(f"0x{v & ~known:X}")
        return "|".join(parts) if parts else "0"
    return quote(v)


def canonical(table, name, fields):
    """The one-line text every codec prints for a decoded message."""
    msg = message_by_name(table, name)
    parts = [name]
    for fld in msg["fields"]:
        parts.append(f"{fld['name']}={format_value(table, fld, fields[fld['name']])}")
    return " ".join(parts)


# --- generated files ----------------------------------------------------------

def write_or_check(files, root, regenerate_hint):
    """Write generated files, or with --check on the command line fail if any is stale."""
    check = "--check" in sys.argv[1:]
    stale = []
    for path, text in files.items():
        old = open(path, encoding="utf-8").read() if os.path.exists(path) else None
        if old == text:
            continue
        if check:
            stale.append(os.path.relpath(path, root))
        else:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            print(f"wrote {os.path.relpath(path, root)}")
    if stale:
        print(f"out of date (run {regenerate_hint}): " + ", ".join(stale), file=sys.stderr)
        sys.exit(1)
