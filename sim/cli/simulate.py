"""``systolic sim mac``: the cocotb MAC bench on the RTL simulators."""
from .common import add_mac_options, mac_config, simulators


def run_mac_benches(cfg, sims):
    """Run the cocotb MAC bench on each simulator; print one line per run."""
    from sim.drivers.mac import simulate_mac
    failures = 0
    for sim in sims:
        outcome = simulate_mac(cfg, sim)
        status = "PASS" if outcome.failed == 0 and outcome.passed > 0 else "FAIL"
        print(f"  {sim:9s} {status}: {outcome.passed} passed, {outcome.failed} failed "
              f"({outcome.seconds:.1f} s)")
        failures += outcome.failed or (outcome.passed == 0)
    return failures


def cmd_sim(args):
    cfg = mac_config(args)
    sims = simulators(args.sim)
    print(f"cocotb MAC bench for {cfg.slug}: 256 pairs, resets, wrap-around run")
    return 1 if run_mac_benches(cfg, sims) else 0


def register(sub):
    r = sub.add_parser("sim", help="run the cocotb bench on RTL simulators")
    r.add_argument("design", choices=["mac"])
    add_mac_options(r)
    r.add_argument("--sim", action="append", metavar="SIM",
                   help="verilator or icarus (repeatable; default: all present)")
    r.set_defaults(func=cmd_sim)
