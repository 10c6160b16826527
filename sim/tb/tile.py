"""cocotb bench for ``systolic_tile``: plays host programs made by :mod:`sim.drivers.tile`.

The environment variable ``SYSTOLIC_TILE_PROGRAM`` names a JSON file
``{"steps": [...], "output": "<out>.json"}``; each step is one of

* ``{"op": "write", "mem": [...], "bank": [...], "addr": [...], "data": [...]}``: one
  host WRITE per cycle;
* ``{"op": "gemm", "fields": {port: value}}``: one GEMM command, then wait for ``done``;
  (``"poke": 1``: a WRITE in the next cycle, which the busy tile refuses) and
  records ``cycles`` (the edge that raised ``done``, counted from the edge that sampled
  the command), ``error``, ``err_code`` and the access counters;
* ``{"op": "read", "mem": [...], "bank": [...], "addr": [...]}``: one host READ per
  cycle (pipelined: the edge that samples a READ puts its word on ``host_rdata``);
* ``{"op": "count", "tiles": [...]}`` (split tile): per tile, ``host_sub`` = tile for one
  cycle, then its four access counters.

A gemm step with ``"watch": 1`` (split tile) steps cycle by cycle and also records, per
``tile_done`` bit that was low after the command's first edge, the edge that raised it.

A step may carry ``"sub": k`` (the split tile's ``host_sub``). The bench holds ``rst``
for two cycles, waits for ``busy`` to fall (the array's power-up
flush), then plays the steps, acting at falling edges (as :mod:`sim.tb.array`). The
output JSON has one record per step (gemm: the fields above; read: ``data``; write:
``error`` if any write raised it).
"""
import json

import cocotb
from cocotb.triggers import Timer, RisingEdge, First
from cocotb.utils import get_sim_time

from hdl.emit import write_atomic
from sim.tb.array import PERIOD_NS, load_spec, start_clock

PROGRAM_ENV = "SYSTOLIC_TILE_PROGRAM"
COUNTERS = ("cnt_a_reads", "cnt_b_reads", "cnt_c_reads", "cnt_c_writes")


async def _watch(dut, step, t0, limit):
    """Step cycle by cycle until ``done``; returns (cycles, {tile: cycle its tile_done
    bit rose}) for the bits low after the command's first edge."""
    low, rose = None, {}
    for _ in range(limit):
        await step                       # a falling edge: the rising edge's values
        cyc = int((get_sim_time("ns") - t0) // PERIOD_NS)
        bits = int(dut.tile_done.value)
        width = len(dut.tile_done)
        if low is None:
            low = {t for t in range(width) if not bits >> t & 1}
        for t in list(low):
            if bits >> t & 1:
                rose[str(t)] = cyc
                low.discard(t)
        if int(dut.done.value):
            return cyc, rose
    raise RuntimeError(f"the GEMM did not finish in {limit} cycles")


@cocotb.test()
async def run_program(dut):
    spec = load_spec(PROGRAM_ENV)
    step = Timer(PERIOD_NS, unit="ns")
    await start_clock(dut)
    for name in ("host_valid", "host_op", "accumulate", "mode"):
        getattr(dut, name).value = 0
    dut.rst.value = 1
    await step
    await step
    dut.rst.value = 0
    await step
    while int(dut.busy.value):
        await step
    out = []
    for item in spec["steps"]:
        op = item["op"]
        if "sub" in item:                    # split tile: the addressed sub-array
            dut.host_sub.value = int(item["sub"])
        if op == "write":
            dut.host_valid.value = 1
            dut.host_op.value = 1
            err = 0
            for mem, bank, addr, data in zip(item["mem"], item["bank"], item["addr"],
                                             item["data"]):
                dut.host_mem.value = mem
                dut.host_bank.value = bank
                dut.host_addr.value = addr
                dut.host_wdata.value = data
                await step
                err |= int(dut.error.value)
            dut.host_valid.value = 0
            await step
            out.append({"op": op, "error": int(dut.error.value) | err,
                        "err_code": int(dut.err_code.value)})
        elif op == "read":
            dut.host_valid.value = 1
            dut.host_op.value = 2
            data = []
            for mem, bank, addr in zip(item["mem"], item["bank"], item["addr"]):
                dut.host_mem.value = mem
                dut.host_bank.value = bank
                dut.host_addr.value = addr
                await step               # the edge took the address; the word is out
                data.append(int(dut.host_rdata.value))
            dut.host_valid.value = 0
            await step
            out.append({"op": op, "data": data, "error": int(dut.error.value),
                        "err_code": int(dut.err_code.value)})
        elif op == "gemm":
            for name, value in item["fields"].items():
                getattr(dut, name).value = int(value)
            dut.host_valid.value = 1
            dut.host_op.value = 3
            await step                       # edge 0 sampled the command
            t0 = get_sim_time("ns") - PERIOD_NS // 2
            if item.get("poke"):             # a WRITE while busy: refused (BUSY)
                dut.host_op.value = 1
                await step
            dut.host_valid.value = 0
            limit = int(item.get("timeout", 10_000_000))
            rose = {}
            if item.get("watch"):            # split tile: the edge each tile_done rose
                cycles, rose = await _watch(dut, step, t0, limit)
            else:
                fired = await First(RisingEdge(dut.done), Timer(limit * PERIOD_NS, unit="ns"))
                if not isinstance(fired, RisingEdge):
                    raise RuntimeError(f"the GEMM did not finish in {limit} cycles")
                cycles = round((get_sim_time("ns") - t0) / PERIOD_NS)
                await Timer(PERIOD_NS // 2, unit="ns")      # back to a falling edge
            rec = {"op": op, "cycles": cycles, "error": int(dut.error.value),
                   "err_code": int(dut.err_code.value)}
            if rose:
                rec["tile_done"] = rose
            for name in COUNTERS:
                if hasattr(dut, name):
                    rec[name] = int(getattr(dut, name).value)
            out.append(rec)
        elif op == "count":                  # split tile: counters of each tile
            counts = {}
            for t in item["tiles"]:
                dut.host_sub.value = int(t)
                await step
                counts[str(t)] = {name[4:]: int(getattr(dut, name).value)
                                  for name in COUNTERS}
            out.append({"op": op, "counters": counts})
        else:
            raise ValueError(f"unknown step {op!r}")
    write_atomic(spec["output"], json.dumps({"steps": out}))
