/*
 * Stipple pen protocol v1: framing, CRC-32C and a streaming decoder for pen firmware.
 *
 * Portable C99: no malloc, no I/O, fixed buffers; needs only stdint.h, stddef.h and string.h.
 * The per-message structs and payload codec are in stipple_messages.h (generated from
 * ../messages.json). See ../PROTOCOL.md.
 */
#ifndef STIPPLE_WIRE_H
#define STIPPLE_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "stipple_messages.h"

#ifdef __cplusplus
extern "C" {
#endif

/* CRC-32C (CRC-32/ISCSI): poly 0x1EDC6F41 reflected, init and xorout 0xFFFFFFFF.
 * stw_crc32c("123456789", 9) == 0xE3069283. */
#define STW_CRC32C_CHECK 0xE3069283u
uint32_t stw_crc32c(const uint8_t *data, size_t len);

/* What stw_decoder_push returns. */
typedef enum {
    STW_NONE = 0,            /* byte consumed, nothing complete yet */
    STW_FRAME = 1,           /* a valid frame is in *out */
    STW_REJECT_TOO_LONG = 2, /* more than STW_MAX_ENCODED_FRAME bytes before a delimiter */
    STW_REJECT_TRUNCATED = 3,/* shorter than header + CRC, or COBS block cut off */
    STW_REJECT_BAD_CRC = 4,
    STW_REJECT_UNKNOWN_ID = 5, /* CRC good: out->seq and out->msg.id are valid (NAK it) */
    STW_REJECT_BAD_LENGTH = 6, /* CRC good: out->detail = payload length needed */
    STW_REJECT_BAD_FIELD = 7   /* CRC good: out->detail = 0-based field index */
} stw_result;

/* A decoded frame. */
typedef struct {
    uint8_t seq;
    uint8_t detail;
    stw_message msg;
} stw_frame;

/* Streaming decoder state: about 70 bytes, no heap. */
typedef struct {
    uint8_t raw[STW_MAX_RAW_FRAME];
    uint8_t raw_len;
    uint8_t encoded_len;
    uint8_t block_remaining;
    uint8_t zero_pending;
    uint8_t discarding;
} stw_decoder;

void stw_decoder_init(stw_decoder *d);

/* Feed one received byte. Returns STW_FRAME with *out filled when the byte completes a valid
 * frame, a STW_REJECT_* code when it completes an invalid one, STW_NONE otherwise. */
stw_result stw_decoder_push(stw_decoder *d, uint8_t byte, stw_frame *out);

/* Encode a frame as wire bytes (0x00, COBS, 0x00) into out, which holds at least
 * STW_MAX_WIRE_BYTES bytes. Returns the number of bytes written, 0 if the message is invalid
 * (unknown id or payload too long). */
size_t stw_encode_frame(uint8_t seq, const stw_message *msg, uint8_t *out, size_t cap);

/* Name of a decoder result ("too_long", "bad_crc", ...), as used by the test vectors. */
const char *stw_result_name(stw_result r);

#ifdef __cplusplus
}
#endif

#endif
