#!/usr/bin/env python3
"""Produce the shared test vectors in ../vectors/ from the message table.

Every codec (Swift, C, the trace decoder) must decode each valid vector to exactly the
given message and canonical text, re-encode it to the same bytes, and reject each invalid
vector with the given reason. See ../vectors/README.md.

  gen_vectors.py           write the vectors
  gen_vectors.py --check   exit 1 if the committed vectors are out of date
"""

import json
import os
import struct

import protocol as p

VEC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "vectors")

LIMITS = dict(depth_min_um=400, depth_max_um=1000, depth_trip_um=1100, rate_min_dhz=500,
              rate_max_dhz=1500, rate_stall_dhz=400, rate_runaway_dhz=1600, deadman_ms=300)
LIMITS_CRC = p.crc32c(p.encode_payload(p.load_table(), p.message_by_name(p.load_table(), "set_limits"), LIMITS))

# (name, seq, message, fields, note)
VALID = [
    ("hello_v1_0", 0, "hello", dict(proto_major=1, proto_minor=0), "Host opens the link."),
    ("hello_future_major", 1, "hello", dict(proto_major=2, proto_minor=7), "A newer host; the pen answers version_mismatch."),
    ("heartbeat", 2, "heartbeat", {}, "Empty payload."),
    ("heartbeat_seq_255", 255, "heartbeat", {}, "Highest sequence number."),
    ("set_limits_defaults", 3, "set_limits", LIMITS, "Upper-dermis band, default rate window."),
    ("set_limits_extremes", 4, "set_limits",
     dict(depth_min_um=0, depth_max_um=2000, depth_trip_um=2000, rate_min_dhz=400, rate_max_dhz=1600,
          rate_stall_dhz=400, rate_runaway_dhz=1600, deadman_ms=1000),
     "Every field at its protocol bound (the pen still checks consistency)."),
    ("set_limits_shortest_deadman", 4, "set_limits", dict(LIMITS, deadman_ms=150),
     "The shortest deadman: the host then sends a frame at least every 150 / 3 = 50 ms."),
    ("get_limits", 5, "get_limits", {}, ""),
    ("set_setpoints", 6, "set_setpoints", dict(depth_um=800, rate_dhz=1200), "0.8 mm at 120 Hz."),
    ("arm", 7, "arm", dict(limits_crc=LIMITS_CRC), "Arm with the checksum of set_limits_defaults."),
    ("disarm", 8, "disarm", {}, ""),
    ("motor_run", 9, "motor_run", {}, ""),
    ("motor_stop", 10, "motor_stop", {}, ""),
    ("estop", 11, "estop", {}, ""),
    ("clear_fault", 12, "clear_fault", {}, ""),
    ("identify", 13, "identify", dict(duration_ms=3000), ""),
    ("get_status", 14, "get_status", {}, ""),
    ("read_cartridge", 0, "read_cartridge", {}, "seq 0 after a wrap."),
    ("ack_ok", 7, "ack", dict(acked_seq=7, acked_id=0x06, status="ok", detail=0), "ARM accepted."),
    ("ack_bad_field", 3, "ack", dict(acked_seq=3, acked_id=0x03, status="bad_field", detail=2), "SET_LIMITS field 2 refused."),
    ("ack_unknown_status", 4, "ack", dict(acked_seq=9, acked_id=0x08, status=200, detail=0),
     "AckStatus is open: an unknown value decodes (and is treated as a refusal)."),
    ("hello_reply", 0, "hello_reply",
     dict(proto_major=1, proto_minor=0, fw_major=0, fw_minor=9, fw_patch=3, capabilities=0xFF,
          serial="SMP3-000142", limits_crc=0, depth_ceiling_um=2000), "A pen with every capability."),
    ("hello_reply_full_serial", 1, "hello_reply",
     dict(proto_major=1, proto_minor=2, fw_major=1, fw_minor=0, fw_patch=0, capabilities=0x15,
          serial='A"B\\C-0123456789', limits_crc=LIMITS_CRC, depth_ceiling_um=1500),
     "Serial fills all 16 bytes, with a quote and a backslash to test escaping."),
    ("status_idle", 2, "status",
     dict(state="idle", flags=0x0103, fault="none", depth_setpoint_um=0, rate_setpoint_dhz=0, pen_time_us=1000000), ""),
    ("status_faulted", 3, "status",
     dict(state="faulted", flags=0x0203, fault="over_depth", depth_setpoint_um=800, rate_setpoint_dhz=1200,
          pen_time_us=0xFFFFFFFF), "pen_time_us just before the wrap."),
    ("telemetry_running", 4, "telemetry",
     dict(pen_time_us=123456789, stroke_count=5000, peak_protrusion_um=812, stroke_rate_dhz=1198,
          motor_current_ma=420, temperature_dc=312, flags=0x013F), "A stroke while running."),
    ("telemetry_not_measured", 5, "telemetry",
     dict(pen_time_us=0, stroke_count=0, peak_protrusion_um=65535, stroke_rate_dhz=0,
          motor_current_ma=65535, temperature_dc=-32768, flags=0), "Idle frame of a pen without sensors; zero bytes in the payload."),
    ("telemetry_unknown_flags", 6, "telemetry",
     dict(pen_time_us=1, stroke_count=1, peak_protrusion_um=1, stroke_rate_dhz=5000,
          motor_current_ma=1, temperature_dc=-1, flags=0xC010), "Flag bits this version does not name are kept and printed in hex."),
    ("cartridge_inserted", 7, "cartridge",
     dict(event="inserted", needle_count=3, needle_diameter_um=250, expiry_days=21000,
          cartridge_id="3RL-25-A0001", lot="L2026-11"), "A 3RL 0.25 mm cartridge."),
    ("cartridge_removed_empty", 8, "cartridge",
     dict(event="removed", needle_count=0, needle_diameter_um=0, expiry_days=0, cartridge_id="", lot=""),
     "Empty text fields are all NUL."),
    ("fault_over_depth", 9, "fault", dict(code="over_depth", detail=0, value=1240, pen_time_us=99), ""),
    ("fault_reset_brownout", 0, "fault", dict(code="reset", detail=1, value=0, pen_time_us=0), "First frame after a brown-out."),
    ("fault_negative_value", 10, "fault", dict(code="over_temperature", detail=0, value=-2147483648, pen_time_us=5), "Lowest i32."),
    ("limits_none", 11, "limits",
     dict(depth_min_um=0, depth_max_um=0, depth_trip_um=0, rate_min_dhz=0, rate_max_dhz=0, rate_stall_dhz=0,
          rate_runaway_dhz=0, deadman_ms=300, limits_crc=0), "No limits set yet."),
    ("limits_set", 12, "limits", dict(LIMITS, limits_crc=LIMITS_CRC), "Read-back of set_limits_defaults."),
    ("log_info", 13, "log", dict(level="info", text="boot ok, fw 0.9.3"), ""),
    ("log_empty", 14, "log", dict(level="debug", text=""), "Text may be empty."),
    ("log_longest", 15, "log", dict(level="error", text="x" * 55), "Longest payload: 56 bytes."),
]


def hexs(b):
    return b.hex()


def frame_from_body(body):
    """Wire bytes for an arbitrary body (id, seq, payload), CRC appended."""
    raw = body + struct.pack("<I", p.crc32c(body))
    return b"\0" + p.cobs_encode(raw) + b"\0"


def invalid(table):
    good = p.wire_frame(table, 4, "telemetry", dict(pen_time_us=0x11223344, stroke_count=2, peak_protrusion_um=3,
                                                      stroke_rate_dhz=4, motor_current_ma=5, temperature_dc=6, flags=7))
    flipped = bytearray(good)
    flipped[5] ^= 0x01
    crc_flipped = bytearray(good)
    crc_flipped[-2] ^= 0x80
    telemetry_body = p.raw_frame(table, 4, "telemetry", dict(pen_time_us=1, stroke_count=2, peak_protrusion_um=3,
                                                                stroke_rate_dhz=4, motor_current_ma=5, temperature_dc=6, flags=7))[:-4]
    limits_payload = bytearray(p.encode_payload(table, p.message_by_name(table, "set_limits"), LIMITS))
    bad_depth = bytearray(limits_payload)
    bad_depth[4:6] = struct.pack("<H", 2001)
    bad_rate = bytearray(limits_payload)
    bad_rate[6:8] = struct.pack("<H", 399)
    bad_deadman = bytearray(limits_payload)
    bad_deadman[14:16] = struct.pack("<H", 149)
    empty_serial = p.encode_payload(table, p.message_by_name(table, "hello_reply"),
                                    dict(proto_major=1, proto_minor=0, fw_major=0, fw_minor=9, fw_patch=3, capabilities=0xFF,
                                         serial="", limits_crc=0, depth_ceiling_um=2000))
    cart = p.message_by_name(table, "cartridge")
    cart_fields = dict(event="inserted", needle_count=3, needle_diameter_um=250, expiry_days=1,
                       cartridge_id="ABC", lot="L1")
    cart_payload = bytearray(p.encode_payload(table, cart, cart_fields))
    bad_event = bytearray(cart_payload)
    bad_event[0] = 3
    ctrl_text = bytearray(cart_payload)
    ctrl_text[6 + 1] = 0x07
    gap_text = bytearray(cart_payload)
    gap_text[6 + 5] = ord("Z")  # a character after the NUL padding has begun
    high_text = bytearray(cart_payload)
    high_text[6 + 16] = 0xC3
    long_raw = bytes([0x88, 1, 1]) + b"y" * 56
    long_wire = frame_from_body(long_raw)
    return [
        ("single_bit_flip_payload", bytes(flipped), "bad_crc", None, "One bit flipped in the payload."),
        ("single_bit_flip_crc", bytes(crc_flipped), "bad_crc", None, "One bit flipped in the CRC."),
        ("truncated_short", bytes.fromhex("0003010200"), "truncated", None, "Two bytes: less than header plus CRC."),
        ("truncated_cobs_block", b"\0" + p.cobs_encode(p.raw_frame(table, 1, "heartbeat", {}))[:-1] + b"\0",
         "truncated", None, "Last byte lost: the COBS block runs past the delimiter."),
        ("cut_off_frame", good[:12] + b"\0", "truncated", None, "A frame cut off by a reset, ended by the next delimiter."),
        ("too_long", b"\0" + bytes([0x55]) * 64 + b"\0", "too_long", None, "64 encoded bytes: one more than the maximum."),
        ("too_long_valid_crc", long_wire, "too_long", None, "A log frame with a 57-byte payload: too long even though its CRC is right."),
        ("unknown_id_host_range", frame_from_body(bytes([0x3F, 9])), "unknown_id", None, "A host command id v1 does not define."),
        ("unknown_id_pen_range", frame_from_body(bytes([0xFF, 9, 1, 2, 3])), "unknown_id", None, "A pen message id v1 does not define."),
        ("bad_length_telemetry", frame_from_body(telemetry_body[:-1]), "bad_length", 18, "Telemetry one byte short."),
        ("bad_length_hello", frame_from_body(bytes([0x01, 0, 1])), "bad_length", 2, "HELLO without its minor."),
        ("bad_field_depth_trip", frame_from_body(bytes([0x03, 5]) + bytes(bad_depth)), "bad_field", "depth_trip_um",
         "2001 um is above the 2000 um protocol ceiling."),
        ("bad_field_rate_min", frame_from_body(bytes([0x03, 5]) + bytes(bad_rate)), "bad_field", "rate_min_dhz",
         "39.9 Hz is below the 40 Hz floor."),
        ("bad_field_deadman_149", frame_from_body(bytes([0x03, 5]) + bytes(bad_deadman)), "bad_field", "deadman_ms",
         "149 ms is below the 150 ms deadman floor."),
        ("bad_field_empty_serial", frame_from_body(bytes([0x82, 0]) + empty_serial), "bad_field", "serial",
         "HELLO_REPLY serial is non-empty: 16 NUL bytes are refused."),
        ("bad_field_setpoint_depth", frame_from_body(bytes([0x05, 6]) + struct.pack("<HH", 65535, 1200)), "bad_field", "depth_um",
         "A setpoint of 65535 um."),
        ("bad_field_closed_enum", frame_from_body(bytes([0x85, 7]) + bytes(bad_event)), "bad_field", "event",
         "CartridgeEvent is closed: 3 is not a value."),
        ("bad_field_pen_state", frame_from_body(bytes([0x83, 2, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])), "bad_field", "state",
         "PenState 9 does not exist."),
        ("bad_field_text_control", frame_from_body(bytes([0x85, 7]) + bytes(ctrl_text)), "bad_field", "cartridge_id",
         "A control character in a text field."),
        ("bad_field_text_after_nul", frame_from_body(bytes([0x85, 7]) + bytes(gap_text)), "bad_field", "cartridge_id",
         "Text continues after the NUL padding began."),
        ("bad_field_text_non_ascii", frame_from_body(bytes([0x85, 7]) + bytes(high_text)), "bad_field", "lot",
         "A byte above 0x7E in a text field."),
        ("bad_field_log_text", frame_from_body(bytes([0x88, 1, 1]) + b"ok\nnext"), "bad_field", "text",
         "A newline in a log line."),
        ("bad_field_log_level", frame_from_body(bytes([0x88, 1, 4]) + b"hi"), "bad_field", "level",
         "LogLevel 4 does not exist."),
    ]


def streams(table):
    def f(seq, name, fields):
        return p.wire_frame(table, seq, name, fields)
    hb = f(1, "heartbeat", {})
    ack = f(1, "ack", dict(acked_seq=1, acked_id=2, status="ok", detail=0))
    tel = f(2, "telemetry", dict(pen_time_us=10, stroke_count=1, peak_protrusion_um=800, stroke_rate_dhz=1200,
                                 motor_current_ma=300, temperature_dc=300, flags=0x13F))
    cut = tel[:9]
    dropped = tel[:7] + tel[8:]
    no_leading = [hb[1:], ack[1:]]
    return [
        ("garbage_then_frame", b"\x13\x37\xfe\xff\x42" + hb, "Line noise before a frame is rejected once, the frame decodes."),
        ("cut_off_then_frame", cut + ack, "A frame cut off mid-way; the next frame's leading delimiter saves it."),
        ("dropped_byte_then_frame", dropped + ack, "One byte lost: that frame is rejected, the next decodes."),
        ("back_to_back_without_leading", b"".join(no_leading), "Frames with only a trailing delimiter also decode."),
        ("idle_delimiters", b"\0\0\0" + hb + b"\0\0", "Runs of delimiters are idle fill, not frames."),
        ("long_garbage_then_frame", bytes(range(1, 200)) + hb, "199 bytes without a delimiter: one too_long, then resync."),
    ]


def expected_outputs(table, data):
    out = []
    for item in p.decode_stream(table, data):
        if item[0] == "frame":
            _, seq, name, fields = item
            out.append({"frame": p.canonical(table, name, fields), "seq": seq})
        else:
            out.append({"reject": item[1]})
    return out


def build(table):
    valid_vecs = []
    tsv = ["# generated by gen_vectors.py from valid.json, invalid.json and streams.json; one line per vector.\n"]
    for name, seq, msg, fields, note in VALID:
        wire = p.wire_frame(table, seq, msg, fields)
        raw = p.raw_frame(table, seq, msg, fields)
        # Decode through the reference model to normalise enum names to numbers.
        got = list(p.decode_stream(table, wire))
        assert got[0][0] == "frame", (name, got)
        _, gseq, gname, gfields = got[0]
        text = p.canonical(table, gname, gfields)
        valid_vecs.append(dict(name=name, wire=hexs(wire), raw=hexs(raw), seq=seq, message=msg,
                               fields=gfields, text=text, reencodes=True, note=note))
    # Forward compatibility: a newer minor may append fields; older receivers ignore them.
    base = p.raw_frame(table, 20, "set_setpoints", dict(depth_um=600, rate_dhz=1000))[:-4]
    body = base + bytes([0xAA, 0x00, 0x55])
    wire = frame_from_body(body)
    valid_vecs.append(dict(name="set_setpoints_with_future_fields", wire=hexs(wire),
                           raw=hexs(body + struct.pack("<I", p.crc32c(body))), seq=20, message="set_setpoints",
                           fields=dict(depth_um=600, rate_dhz=1000),
                           text=p.canonical(table, "set_setpoints", dict(depth_um=600, rate_dhz=1000)), reencodes=False,
                           note="Three trailing bytes from a newer minor version are ignored (section 9)."))
    for v in valid_vecs:
        tsv.append(f"valid\t{v['name']}\t{v['wire']}\t{v['seq']}\t{1 if v['reencodes'] else 0}\t{v['text']}\n")

    invalid_vecs = []
    for name, wire, reason, detail, why in invalid(table):
        got = list(p.decode_stream(table, wire))
        assert len(got) == 1 and got[0][0] == "reject" and got[0][1] == reason, (name, got)
        if reason == "bad_field":
            assert got[0][2] == detail, (name, got)
        entry = dict(name=name, wire=hexs(wire), reject=reason, why=why)
        if reason == "bad_field":
            entry["field"] = detail
        if reason == "bad_length":
            entry["expected_length"] = detail
        invalid_vecs.append(entry)
        tsv.append(f"invalid\t{name}\t{hexs(wire)}\t{reason}\t{detail if detail is not None else '-'}\n")

    stream_vecs = []
    for name, data, why in streams(table):
        exp = expected_outputs(table, data)
        stream_vecs.append(dict(name=name, wire=hexs(data), expect=exp, why=why))
        tsv.append(f"stream\t{name}\t{hexs(data)}\n")
        for e in exp:
            if "frame" in e:
                tsv.append(f"expect\tframe\t{e['seq']}\t{e['frame']}\n")
            else:
                tsv.append(f"expect\treject\t{e['reject']}\n")
        tsv.append("end\n")

    crc = dict(algorithm="CRC-32/ISCSI", check_input="123456789", check=f"0x{p.crc32c(b'123456789'):08X}",
               more=[dict(input_hex=hexs(b), crc=f"0x{p.crc32c(b):08X}") for b in
                     [b"", b"\0", bytes(range(32)), b"\xff" * 8]])
    def dump(obj):
        return json.dumps(obj, indent=2, ensure_ascii=True) + "\n"
    return {
        "valid.json": dump(dict(vectors=valid_vecs)),
        "invalid.json": dump(dict(vectors=invalid_vecs)),
        "streams.json": dump(dict(vectors=stream_vecs)),
        "crc.json": dump(crc),
        "vectors.tsv": "".join(tsv),
    }


def main():
    files = {os.path.join(VEC, name): text for name, text in build(p.load_table()).items()}
    p.write_or_check(files, os.path.dirname(VEC), "Firmware-protocol/tools/gen_vectors.py")


if __name__ == "__main__":
    main()
