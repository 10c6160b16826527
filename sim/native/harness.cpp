// Native player of the systolic designs on Verilator: reads the operand stream of
// sim.native.stream (hex memory file), plays it on the verilated top (class Vtop), and
// writes the result lines. No public signals: only the top's ports are touched.
//
//   systolic_harness STREAM.hex RESULTS.txt     play every job of the stream
//   systolic_harness --bare N                   the ceiling: N cycles toggling the clock
//                                               only (inputs held at 0 after reset),
//                                               prints wall and CPU seconds
//
// systolic_ports.h (written by sim.native.build) lists the ports:
//   SYSTOLIC_LAYOUT         32-bit layout id the stream must carry
//   SYSTOLIC_RECORD_BYTES   bytes per record
//   SYSTOLIC_INPUTS(X)      X(name, bits, byte offset) per input port
//   SYSTOLIC_OUTPUTS(X)     X(valid name, valid bits, value name, value bits) per pair
#include <chrono>
#include <ctime>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "Vtop.h"
#include "verilated.h"
#include "systolic_ports.h"

static const char* g_path = "";

[[noreturn]] static void fail(const std::string& what) {
    fprintf(stderr, "systolic-harness: error: %s: %s\n", g_path, what.c_str());
    exit(3);
}

template <class T> static void put(T& port, const uint8_t* src, int nbytes) {
    T v = 0;
    memcpy(&v, src, nbytes);
    port = v;
}
template <std::size_t N> static void put(VlWide<N>& port, const uint8_t* src, int nbytes) {
    uint32_t w[N] = {0};
    memcpy(w, src, nbytes);
    for (std::size_t i = 0; i < N; ++i) port.data()[i] = w[i];
}
template <class T> static void zero(T& port) { port = 0; }
template <std::size_t N> static void zero(VlWide<N>& port) {
    for (std::size_t i = 0; i < N; ++i) port.data()[i] = 0;
}
template <class T> static bool any(const T& port) { return port != 0; }
template <std::size_t N> static bool any(const VlWide<N>& port) {
    for (std::size_t i = 0; i < N; ++i)
        if (port.data()[i]) return true;
    return false;
}
// The low `bits` of a port as hex, MSB first, at `s`; returns the end.
static const char* const HEX = "0123456789abcdef";
template <class T> static char* hex(char* s, const T& port, int bits) {
    uint64_t v = port;
    for (int d = (bits + 3) / 4 - 1; d >= 0; --d) *s++ = HEX[(v >> (4 * d)) & 15];
    return s;
}
template <std::size_t N> static char* hex(char* s, const VlWide<N>& port, int bits) {
    const uint32_t* w = port.data();
    for (int d = (bits + 3) / 4 - 1; d >= 0; --d) *s++ = HEX[(w[d / 8] >> (4 * (d % 8))) & 15];
    return s;
}

// Wall and process CPU seconds since `t0` / `c0`.
struct Clock {
    std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
    double c0 = cpu();
    static double cpu() {
        timespec ts;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
        return ts.tv_sec + 1e-9 * ts.tv_nsec;
    }
    double wall() const {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    double cpu_used() const { return cpu() - c0; }
};

static int digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

struct Reader {
    FILE* f;
    char* line = nullptr;
    size_t cap = 0;
    // The next whitespace-free token (one per line), or fail().
    const char* token(ssize_t& n, const std::string& what) {
        while ((n = getline(&line, &cap, f)) >= 0) {
            while (n && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' '))
                line[--n] = 0;
            if (n) return line;
        }
        fail("ends before " + what);
    }
    uint64_t number(const std::string& what) {
        ssize_t n;
        const char* t = token(n, what);
        uint64_t v = 0;
        if (n > 16) fail(what + " is not a hex number: " + std::string(t, 20));
        for (ssize_t i = 0; i < n; ++i) {
            int d = digit(t[i]);
            if (d < 0) fail(what + " is not a hex number: " + std::string(t, n));
            v = (v << 4) | d;
        }
        return v;
    }
};

static void tick(Vtop* top) {
    top->clk = 1;
    top->eval();
    top->clk = 0;
    top->eval();
}

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
    auto* ctx = new VerilatedContext;
    auto* top = new Vtop{ctx};
    top->clk = 0;
    top->rst = 0;
    top->eval();
    if (argc == 3 && std::string(argv[1]) == "--bare") return bare(top, atoll(argv[2]));
    if (argc != 3) {
        fprintf(stderr, "usage: %s STREAM.hex RESULTS.txt | --bare N\n", argv[0]);
        return 2;
    }
    g_path = argv[1];
    Reader in{fopen(argv[1], "r")};
    if (!in.f) fail("cannot open the stream");
    FILE* out = fopen(argv[2], "w");
    if (!out) {
        g_path = argv[2];
        fail("cannot write the results");
    }
    if (in.number("the magic word") != 0x53595354u)
        fail("not a systolic stream (bad magic word)");
    uint64_t layout = in.number("the layout id");
    if (layout != SYSTOLIC_LAYOUT)
        fail("stream for another design (layout id " + std::to_string(layout) +
             ", this player's is " + std::to_string(SYSTOLIC_LAYOUT) + ")");
    uint64_t jobs = in.number("the job count");
    const int rb = SYSTOLIC_RECORD_BYTES;
    std::vector<uint8_t> rec(rb);
    // One result line: "R", the cycle, and every output pair in hex.
    size_t width = 32;
#define SYSTOLIC_WIDTH(v, vbits, o, obits) width += 2 + ((vbits) + 3) / 4 + ((obits) + 3) / 4;
    SYSTOLIC_OUTPUTS(SYSTOLIC_WIDTH)
    std::vector<char> line(width);
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
            top->clk = 1;
            top->eval();
            bool valid = false;
#define SYSTOLIC_ANY(v, vbits, o, obits) valid = valid || any(top->v);
            SYSTOLIC_OUTPUTS(SYSTOLIC_ANY)
            if (valid) {
                char* s = line.data() + snprintf(line.data(), 32, "R %llu",
                                                 (unsigned long long)t);
#define SYSTOLIC_HEX(v, vbits, o, obits) \
    *s++ = ' ';                          \
    s = hex(s, top->v, vbits);           \
    *s++ = ' ';                          \
    s = hex(s, top->o, obits);
                SYSTOLIC_OUTPUTS(SYSTOLIC_HEX)
                *s++ = '\n';
                fwrite(line.data(), 1, s - line.data(), out);
            }
            top->clk = 0;
            top->eval();
        }
        fprintf(out, "E %llu %.6f %.6f\n", (unsigned long long)j, clock.wall(),
                clock.cpu_used());
    }
    if (fclose(out) != 0) fail("cannot write the results");
    top->final();
    delete top;
    delete ctx;
    return 0;
}
