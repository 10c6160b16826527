// Native player of the accelerator tile (hdl.tile) on Verilator: reads a *host stream*
// (sim.native.tile: hex tokens, one per line) and drives only the tile's host port:
// LOAD bursts of WRITEs, STORE bursts of READs, GEMM commands waited for until `done`.
// A long GEMM costs its operands and its results in the stream, not its cycles. No
// public signals: only the top's ports are touched.
//
//   systolic_tile_harness STREAM.hex RESULTS.bin
//
// Stream: 53595354 (magic), the layout id, the step count S, then S steps:
//   1 B  then B bursts of WRITEs: mem bank addr count, then count data words
//   2 B  then B bursts of READs:  mem bank addr count
//   3 poke timeout  then one value per GEMM command field (TILE_FIELDS order)
// Each step is played as the cocotb bench sim.tb.tile plays it (inputs applied between
// edges, one transaction per cycle, one idle cycle after a WRITE or READ step).
//
// Results: the 8 bytes "SYSTHST1", then little-endian u64 words, per step:
//   WRITE: error (OR over its cycles and the idle one), err_code
//   READ:  TILE_RDATA_WORDS words per READ (host_rdata, low word first), error, err_code
//   GEMM:  cycles (command edge -> the edge that raised done), error, err_code, the
//          access counters (TILE_COUNTERS order), wall ns, CPU ns
#include "Vtop.h"
#include "native_io.h"
#include "systolic_ports.h"

struct Words {
    FILE* f;
    std::vector<uint64_t> buf;
    void add(uint64_t v) {
        buf.push_back(v);
        if (buf.size() >= (1u << 16)) flush();
    }
    void flush() {
        if (!buf.empty() && fwrite(buf.data(), 8, buf.size(), f) != buf.size())
            fail("cannot write the results");
        buf.clear();
    }
};

// A GEMM that never finishes is the design's fault, not the stream's: its own tag, so
// the driver reports a simulation failure.
[[noreturn]] static void hang(const std::string& what) {
    fprintf(stderr, "systolic-tile: %s\n", what.c_str());
    exit(4);
}

static void reset(Vtop* top) {
    top->host_valid = 0;
    top->host_op = 0;
    top->host_mem = 0;
    top->host_bank = 0;
    top->host_addr = 0;
    zero(top->host_wdata);
#define TILE_ZERO(name, bits, nbytes) zero(top->name);
    TILE_FIELDS(TILE_ZERO)
    top->rst = 1;
    tick(top);
    tick(top);
    top->rst = 0;
    tick(top);
    for (long n = 0; top->busy; ++n) {           // the power-up flush
        if (n > 100000000L) hang("the tile stays busy after reset");
        tick(top);
    }
}

int main(int argc, char** argv) {
    Vtop* top = new_top();
    if (argc != 3) {
        fprintf(stderr, "usage: %s STREAM.hex RESULTS.bin\n", argv[0]);
        return 2;
    }
    Reader in{nullptr};
    FILE* out = open_stream(in, argv[1], argv[2], SYSTOLIC_LAYOUT);
    uint64_t steps = in.number("the step count");
    if (fwrite("SYSTHST1", 1, 8, out) != 8) fail("cannot write the results");
    Words words{out};
    words.buf.reserve(1u << 16);
    std::vector<uint8_t> data(TILE_WDATA_BYTES);
    reset(top);
    for (uint64_t s = 0; s < steps; ++s) {
        std::string where = "step " + std::to_string(s);
        uint64_t op = in.number(where + ": its kind");
        if (op == 1 || op == 2) {
            uint64_t bursts = in.number(where + ": its burst count");
            uint64_t err = 0;
            top->host_valid = 1;
            top->host_op = op;
            for (uint64_t b = 0; b < bursts; ++b) {
                std::string at = where + " burst " + std::to_string(b);
                top->host_mem = in.number(at + ": mem");
                top->host_bank = in.number(at + ": bank");
                uint64_t addr = in.number(at + ": addr");
                uint64_t count = in.number(at + ": count");
                for (uint64_t i = 0; i < count; ++i) {
                    top->host_addr = addr + i;
                    if (op == 1) {
                        ssize_t n;
                        const char* t = in.token(n, at + " word " + std::to_string(i));
                        if (!hex_bytes(t, n, data.data(), TILE_WDATA_BYTES))
                            fail(at + " word " + std::to_string(i) + ": not a hex word of "
                                 "at most " + std::to_string(TILE_WDATA_BITS) + " bits");
                        put(top->host_wdata, data.data(), TILE_WDATA_BYTES);
                    }
                    tick(top);
                    err |= top->error;
                    if (op == 2)
                        for (int w = 0; w < TILE_RDATA_WORDS; ++w) {
                            int lo = 64 * w, rest = TILE_RDATA_BITS - lo;
                            words.add(field(top->host_rdata, lo, rest < 64 ? rest : 64));
                        }
                }
            }
            top->host_valid = 0;
            tick(top);
            words.add(err | top->error);
            words.add(top->err_code);
        } else if (op == 3) {
            uint64_t poke = in.number(where + ": poke");
            uint64_t timeout = in.number(where + ": timeout");
#define TILE_FIELD(name, bits, nbytes)                                            \
    {                                                                             \
        ssize_t n;                                                                \
        const char* t = in.token(n, where + ": field " #name);                    \
        if (!hex_bytes(t, n, data.data(), nbytes))                                \
            fail(where + ": field " #name " is not a hex number of " #bits " bits"); \
        put(top->name, data.data(), nbytes);                                      \
    }
            TILE_FIELDS(TILE_FIELD)
            Clock clock;
            top->host_valid = 1;
            top->host_op = 3;
            tick(top);                       // edge 0 samples the command
            uint64_t cycles = 0;
            bool prev = top->done;
            if (poke) {                      // a WRITE while busy: refused (BUSY)
                top->host_op = 1;
                tick(top);
                ++cycles;
            }
            top->host_valid = 0;
            while (!(top->done && !prev) || cycles == 0) {
                if (cycles >= timeout)
                    hang(where + ": the GEMM did not finish in " + std::to_string(timeout) +
                         " cycles");
                prev = top->done;
                tick(top);
                ++cycles;
            }
            words.add(cycles);
            words.add(top->error);
            words.add(top->err_code);
#define TILE_COUNTER(name) words.add(top->name);
            TILE_COUNTERS(TILE_COUNTER)
            words.add(uint64_t(clock.wall() * 1e9));
            words.add(uint64_t(clock.cpu_used() * 1e9));
        } else {
            fail(where + ": unknown step kind " + std::to_string(op));
        }
    }
    words.flush();
    if (fclose(out) != 0) fail("cannot write the results");
    delete_top(top);
    return 0;
}
