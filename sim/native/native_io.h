// Helpers shared by the native players on Verilator (harness.cpp: operand streams of
// the arrays; tile_harness.cpp: host transactions of the tile): failing in one line,
// putting bytes on ports and reading fields of them (plain or VlWide), timing, and
// reading the hex memory file token by token. Include after "Vtop.h".
#pragma once
#include <chrono>
#include <ctime>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "verilated.h"

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
// Bits [lo, lo + w) of a port (w <= 64).
static inline uint64_t low_bits(uint64_t v, int w) {
    return w >= 64 ? v : v & ((uint64_t(1) << w) - 1);
}
template <class T> static inline uint64_t field(const T& port, int lo, int w) {
    return low_bits(uint64_t(port) >> lo, w);
}
template <std::size_t N>
static inline uint64_t field(const VlWide<N>& port, int lo, int w) {
    const uint32_t* d = port.data();
    uint64_t v = 0;
    for (int got = 0; got < w;) {
        int bit = lo + got, off = bit % 32, take = 32 - off;
        if (take > w - got) take = w - got;
        v |= low_bits(uint64_t(d[bit / 32] >> off), take) << got;
        got += take;
    }
    return v;
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

// Hex digits ``t[0..n)`` (MSB first) -> ``nbytes`` little-endian bytes at ``out``
// (zero-extended); false if a digit is not hex or the number needs more bytes.
static bool hex_bytes(const char* t, ssize_t n, uint8_t* out, int nbytes) {
    memset(out, 0, nbytes);
    for (ssize_t i = 0; i < n; ++i) {
        int d = digit(t[n - 1 - i]);
        if (d < 0) return false;
        if (i / 2 >= nbytes) {
            if (d) return false;
            continue;
        }
        out[i / 2] |= uint8_t(d << (4 * (i & 1)));
    }
    return true;
}

// Open the stream `in_path` and the results file `out_path` (fail() in one line if
// either cannot be opened), check the stream's magic word and that its layout id is
// `layout` (this player's design); `in` is left after the layout id.
static FILE* open_stream(Reader& in, const char* in_path, const char* out_path,
                         uint64_t layout) {
    g_path = in_path;
    in.f = fopen(in_path, "r");
    if (!in.f) fail("cannot open the stream");
    FILE* out = fopen(out_path, "wb");
    if (!out) {
        g_path = out_path;
        fail("cannot write the results");
    }
    if (in.number("the magic word") != 0x53595354u)
        fail("not a systolic stream (bad magic word)");
    uint64_t id = in.number("the layout id");
    if (id != layout)
        fail("stream for another design (layout id " + std::to_string(id) +
             ", this player's is " + std::to_string(layout) + ")");
    return out;
}

// The design, with its clock and reset low and evaluated once.
static Vtop* new_top() {
    auto* top = new Vtop{new VerilatedContext};
    top->clk = 0;
    top->rst = 0;
    top->eval();
    return top;
}

// Finish the design (final blocks) and free it and its context.
static void delete_top(Vtop* top) {
    top->final();
    VerilatedContext* ctx = top->contextp();
    delete top;
    delete ctx;
}

// One clock cycle: the rising edge, then the falling edge.
static void tick(Vtop* top) {
    top->clk = 1;
    top->eval();
    top->clk = 0;
    top->eval();
}
