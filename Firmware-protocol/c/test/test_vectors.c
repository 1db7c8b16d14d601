/*
 * Host test for the C codec: runs every shared vector (../vectors/vectors.tsv), the CRC check
 * value, every single-bit flip of every valid frame, and random garbage, under ASan/UBSan.
 * Usage: test_vectors path/to/vectors.tsv
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stipple_wire.h"

static int passed, failed;

#define CHECK(cond, ...)                                   \
    do {                                                   \
        if (cond) {                                        \
            passed++;                                      \
        } else {                                           \
            failed++;                                      \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                  \
            fprintf(stderr, "\n");                         \
        }                                                  \
    } while (0)

static size_t unhex(const char *hex, uint8_t *out, size_t cap) {
    size_t n = 0;
    unsigned v;
    while (hex[0] && hex[1] && n < cap) {
        if (sscanf(hex, "%2x", &v) != 1) break;
        out[n++] = (uint8_t)v;
        hex += 2;
    }
    return n;
}

typedef struct {
    stw_result result;
    stw_frame frame;
} output;

/* Decode a whole byte string; returns the number of outputs (frames and rejections). */
static size_t decode_all(const uint8_t *bytes, size_t len, output *outs, size_t cap) {
    stw_decoder d;
    size_t i, n = 0;
    stw_frame f;
    stw_decoder_init(&d);
    for (i = 0; i < len; i++) {
        stw_result r = stw_decoder_push(&d, bytes[i], &f);
        if (r != STW_NONE && n < cap) {
            outs[n].result = r;
            outs[n].frame = f;
            n++;
        }
    }
    return n;
}

static char *field(char **cursor) {
    char *start = *cursor, *tab;
    if (!start) return NULL;
    tab = strchr(start, '\t');
    if (tab) {
        *tab = 0;
        *cursor = tab + 1;
    } else {
        *cursor = NULL;
    }
    return start;
}

static void flip_every_bit(const char *name, const uint8_t *wire, size_t len) {
    uint8_t copy[512];
    output outs[64];
    size_t byte, n, k;
    int bit, accepted;
    for (byte = 0; byte < len; byte++) {
        for (bit = 0; bit < 8; bit++) {
            memcpy(copy, wire, len);
            copy[byte] ^= (uint8_t)(1u << bit);
            n = decode_all(copy, len, outs, 64);
            accepted = 0;
            for (k = 0; k < n; k++) accepted |= outs[k].result == STW_FRAME;
            if (accepted) CHECK(0, "%s: flipping bit %d of byte %zu still decodes", name, bit, byte);
        }
    }
    passed++;
}

static void run_vectors(const char *path) {
    FILE *f = fopen(path, "r");
    char line[4096], text[1024];
    uint8_t wire[4096], again[STW_MAX_WIRE_BYTES];
    output outs[64];
    size_t n = 0, len = 0, expect_index = 0;
    char stream_name[128] = "";
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        exit(2);
    }
    while (fgets(line, sizeof line, f)) {
        char *cur = line, *kind;
        line[strcspn(line, "\n")] = 0;
        if (line[0] == '#' || line[0] == 0) continue;
        kind = field(&cur);
        if (strcmp(kind, "valid") == 0) {
            char *name = field(&cur), *hex = field(&cur), *seq = field(&cur), *reenc = field(&cur), *want = cur;
            len = unhex(hex, wire, sizeof wire);
            n = decode_all(wire, len, outs, 64);
            CHECK(n == 1 && outs[0].result == STW_FRAME, "%s: expected one frame, got %zu outputs (first %s)", name, n,
                  n ? stw_result_name(outs[0].result) : "none");
            if (n != 1 || outs[0].result != STW_FRAME) continue;
            CHECK(outs[0].frame.seq == atoi(seq), "%s: seq %u, want %s", name, outs[0].frame.seq, seq);
            stw_format_message(&outs[0].frame.msg, text, sizeof text);
            CHECK(strcmp(text, want) == 0, "%s:\n  got  %s\n  want %s", name, text, want);
            if (atoi(reenc)) {
                size_t m = stw_encode_frame(outs[0].frame.seq, &outs[0].frame.msg, again, sizeof again);
                CHECK(m == len && memcmp(again, wire, len) == 0, "%s: re-encoding differs", name);
            }
            flip_every_bit(name, wire, len);
        } else if (strcmp(kind, "invalid") == 0) {
            char *name = field(&cur), *hex = field(&cur), *reason = field(&cur), *detail = cur;
            len = unhex(hex, wire, sizeof wire);
            n = decode_all(wire, len, outs, 64);
            CHECK(n == 1 && strcmp(stw_result_name(outs[0].result), reason) == 0, "%s: want %s, got %s", name, reason,
                  n ? stw_result_name(outs[0].result) : "nothing");
            if (n == 1 && outs[0].result == STW_REJECT_BAD_FIELD) {
                const char *fname = stw_field_name(outs[0].frame.msg.id, outs[0].frame.detail);
                CHECK(fname && strcmp(fname, detail) == 0, "%s: bad field %s, want %s", name, fname ? fname : "?", detail);
            }
            if (n == 1 && outs[0].result == STW_REJECT_BAD_LENGTH)
                CHECK(outs[0].frame.detail == atoi(detail), "%s: expected length %u, want %s", name, outs[0].frame.detail, detail);
        } else if (strcmp(kind, "stream") == 0) {
            char *name = field(&cur), *hex = field(&cur);
            snprintf(stream_name, sizeof stream_name, "%s", name);
            len = unhex(hex, wire, sizeof wire);
            n = decode_all(wire, len, outs, 64);
            expect_index = 0;
        } else if (strcmp(kind, "expect") == 0) {
            char *what = field(&cur);
            if (expect_index >= n) {
                CHECK(0, "%s: missing output %zu", stream_name, expect_index);
            } else if (strcmp(what, "frame") == 0) {
                char *seq = field(&cur), *want = cur;
                CHECK(outs[expect_index].result == STW_FRAME, "%s: output %zu is %s, want a frame", stream_name, expect_index,
                      stw_result_name(outs[expect_index].result));
                if (outs[expect_index].result == STW_FRAME) {
                    stw_format_message(&outs[expect_index].frame.msg, text, sizeof text);
                    CHECK(strcmp(text, want) == 0 && outs[expect_index].frame.seq == atoi(seq), "%s: got %s", stream_name, text);
                }
            } else {
                char *reason = cur;
                CHECK(strcmp(stw_result_name(outs[expect_index].result), reason) == 0, "%s: output %zu is %s, want %s",
                      stream_name, expect_index, stw_result_name(outs[expect_index].result), reason);
            }
            expect_index++;
        } else if (strcmp(kind, "end") == 0) {
            CHECK(expect_index == n, "%s: %zu outputs, want %zu", stream_name, n, expect_index);
        }
    }
    fclose(f);
}

static void test_crc(void) {
    const uint8_t check[] = "123456789";
    CHECK(stw_crc32c(check, 9) == STW_CRC32C_CHECK, "CRC-32C check value 0x%08X", (unsigned)stw_crc32c(check, 9));
    CHECK(stw_crc32c(check, 0) == 0, "CRC of nothing");
}

/* Random bytes never crash the decoder, never overflow, and a frame after them decodes. */
static void test_garbage(void) {
    stw_decoder d;
    stw_frame f;
    stw_message hb;
    uint8_t wire[STW_MAX_WIRE_BYTES];
    uint32_t x = 12345u;
    size_t i, len, frames = 0;
    memset(&hb, 0, sizeof hb);
    hb.id = STW_MSG_HEARTBEAT;
    len = stw_encode_frame(9, &hb, wire, sizeof wire);
    stw_decoder_init(&d);
    for (i = 0; i < 1000000u; i++) {
        x = x * 1664525u + 1013904223u;
        (void)stw_decoder_push(&d, (uint8_t)(x >> 24), &f);
    }
    for (i = 0; i < len; i++) frames += stw_decoder_push(&d, wire[i], &f) == STW_FRAME;
    CHECK(frames == 1 && f.seq == 9, "frame after garbage");
}

/* Frames longer than the maximum are refused at encode time too. */
static void test_encode_limits(void) {
    stw_message m;
    uint8_t small[8];
    memset(&m, 0, sizeof m);
    m.id = 0x3F;
    CHECK(stw_encode_frame(0, &m, small, sizeof small) == 0, "small buffer refused");
    {
        uint8_t out[STW_MAX_WIRE_BYTES];
        CHECK(stw_encode_frame(0, &m, out, sizeof out) == 0, "unknown id refused");
    }
}

/* The host heartbeat period follows the deadman: min(100, deadman_ms / 3) (PROTOCOL.md section 5). */
static void test_heartbeat_period(void) {
    CHECK(STW_HOST_HEARTBEAT_PERIOD_MS(STW_DEADMAN_RANGE_MS_MIN) == 50u, "150 ms deadman: 50 ms");
    CHECK(STW_HOST_HEARTBEAT_PERIOD_MS(200u) == 66u, "200 ms deadman: 66 ms");
    CHECK(STW_HOST_HEARTBEAT_PERIOD_MS(STW_DEADMAN_DEFAULT_MS) == 100u, "300 ms deadman: 100 ms");
    CHECK(STW_HOST_HEARTBEAT_PERIOD_MS(STW_DEADMAN_RANGE_MS_MAX) == 100u, "1000 ms deadman: 100 ms");
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s vectors.tsv\n", argv[0]);
        return 2;
    }
    test_crc();
    test_garbage();
    test_encode_limits();
    test_heartbeat_period();
    run_vectors(argv[1]);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
