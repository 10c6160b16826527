// Native player of the systolic designs on Verilator: reads the operand stream of
// sim.native.stream (hex memory file), plays it on the verilated top (class Vtop), and
// writes the result events in binary (sim.native.stream.EVENT_DTYPE). No public
// signals: only the top's ports are touched.
//
//   systolic_harness STREAM.hex RESULTS.bin     play every job of the stream
//   systolic_harness --bare N                   the ceiling: N cycles toggling the clock
//                                               only (inputs held at 0 after reset),
//                                               prints wall and CPU seconds
//
// Results: the 8 bytes "SYSTRES1", then 16-byte little-endian records
//   u32 t, u16 lane, u8 pair, u8 kind, u64 value
// kind 0: after edge t, lane `lane` of output pair `pair` was valid and showed `value`;
// kind 1: job t is done, value = wall nanoseconds of its cycles; kind 2: its CPU ns.
//
// systolic_ports.h (written by sim.native.build) lists the ports:
//   SYSTOLIC_LAYOUT         32-bit layout id the stream must carry
//   SYSTOLIC_RECORD_BYTES   bytes per record
//   SYSTOLIC_INPUTS(X)      X(name, bits, byte offset) per input port
//   SYSTOLIC_OUTPUTS(X)     X(valid name, lanes, value name, lanes x lane bits) per pair
#include "Vtop.h"
#include "native_io.h"
#include "systolic_ports.h"

// The result events, buffered.
struct Event {
    uint32_t t;
    uint16_t lane;
    uint8_t pair, kind;
    uint64_t value;
};
static_assert(sizeof(Event) == 16, "16-byte result records");
struct Events {
    FILE* f;
    std::vector<Event> buf;
    void add(uint32_t t, uint16_t lane, uint8_t pair, uint8_t kind, uint64_t value) {
        buf.push_back(Event{t, lane, pair, kind, value});
        if (buf.size() >= (1u << 16)) flush();
    }
    void flush() {
        if (!buf.empty() && fwrite(buf.data(), sizeof(Event), buf.size(), f) != buf.size())
            fail("cannot write the results");
        buf.clear();
    }
};

static void reset(Vtop* top) {
#define SYSTOLIC_ZERO(name, bits, off) zero(top->name);
    SYSTOLIC_INPUTS(SYSTOLIC_ZERO)
    top->rst = 1;
    top->eval();
    tick(top);
    tick(top);
    top->rst = 0;
    top->eval();
}

static int bare(Vtop* top, long long n) {
    reset(top);
    Clock clock;
    for (long long t = 0; t < n; ++t) tick(top);
    printf("%.6f %.6f\n", clock.wall(), clock.cpu_used());
    return 0;
}

int main(int argc, char** argv) {
    Vtop* top = new_top();
    if (argc == 3 && std::string(argv[1]) == "--bare") return bare(top, atoll(argv[2]));
    if (argc != 3) {
        fprintf(stderr, "usage: %s STREAM.hex RESULTS.bin | --bare N\n", argv[0]);
        return 2;
    }
    Reader in{nullptr};
    FILE* out = open_stream(in, argv[1], argv[2], SYSTOLIC_LAYOUT);
    uint64_t jobs = in.number("the job count");
    const int rb = SYSTOLIC_RECORD_BYTES;
    std::vector<uint8_t> rec(rb);
    Events events{out};
    events.buf.reserve(1u << 16);
    if (fwrite("SYSTRES1", 1, 8, out) != 8) fail("cannot write the results");
    for (uint64_t j = 0; j < jobs; ++j) {
        std::string where = "job " + std::to_string(j);
        uint64_t T = in.number(where + ": its cycle count");
        reset(top);
        Clock clock;
        for (uint64_t t = 0; t < T; ++t) {
            ssize_t n;
            const char* w = in.token(n, where + " cycle " + std::to_string(t));
            if (n != 2 * rb)
                fail(where + " cycle " + std::to_string(t) + ": a record of " +
                     std::to_string(n) + " hex digits, expected " + std::to_string(2 * rb));
            for (int b = 0; b < rb; ++b) {
                int hi = digit(w[2 * (rb - 1 - b)]), lo = digit(w[2 * (rb - 1 - b) + 1]);
                if (hi < 0 || lo < 0)
                    fail(where + " cycle " + std::to_string(t) + ": not a hex record");
                rec[b] = (uint8_t)(hi << 4 | lo);
            }
#define SYSTOLIC_PUT(name, bits, off) put(top->name, rec.data() + (off), ((bits) + 7) / 8);
            SYSTOLIC_INPUTS(SYSTOLIC_PUT)
#ifdef SYSTOLIC_SETTLE_INPUTS
            // Clock gates (hdl.clock_gate): their latches must see this cycle's enable
            // while clk is still low, before the edge (as in the cocotb bench).
            top->eval();
#endif
            top->clk = 1;
            top->eval();
            {
                uint8_t pair = 0;
#define SYSTOLIC_EVENTS(v, lanes, o, obits)                                  \
    if (any(top->v)) {                                                       \
        for (int l = 0; l < (lanes); ++l)                                    \
            if (field(top->v, l, 1))                                         \
                events.add(uint32_t(t), uint16_t(l), pair, 0,                \
                           field(top->o, l * ((obits) / (lanes)), (obits) / (lanes))); \
    }                                                                        \
    ++pair;
                SYSTOLIC_OUTPUTS(SYSTOLIC_EVENTS)
            }
            top->clk = 0;
            top->eval();
        }
        events.add(uint32_t(j), 0, 0, 1, uint64_t(clock.wall() * 1e9));
        events.add(uint32_t(j), 0, 0, 2, uint64_t(clock.cpu_used() * 1e9));
    }
    events.flush();
    if (fclose(out) != 0) fail("cannot write the results");
    delete_top(top);
    return 0;
}
