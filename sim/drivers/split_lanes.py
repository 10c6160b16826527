"""Where a sub-array's streams enter and its results leave the ports of the splittable
array (:mod:`hdl.split`): the lane maps of :mod:`sim.drivers.split`'s programs."""

__all__ = ["lane_maps", "out_pairs"]


def lane_maps(config, sub):
    """Where the sub-array's edge lanes go: ``(a_entries, w_entries, out)``. An entry is
    ``(port suffix, lane ids, delay)``: the sub-array's a (or w and w_en; OS: b) stream
    is written to those lanes ``delay`` cycles late. Mux style: one entry (the
    sub-array's own edge). Ports style: one entry per tile column (row) inside the
    sub-array, delayed by its offset (see :mod:`hdl.split`). ``out``: per output lane of
    the sub-array (WS: per column; OS: per anti-diagonal, as in :mod:`hdl.array`), the
    ``(output pair, lane id)`` it leaves through (see :func:`out_pairs`)."""
    tr, tc, _, _ = config.grid
    R, C = config.rows, config.cols
    cols0 = [sub.c0] if config.style == "mux" else list(range(sub.c0, sub.c0 + sub.cols, tc))
    rows0 = [sub.r0] if config.style == "mux" else list(range(sub.r0, sub.r0 + sub.rows, tr))
    a = []
    for x in cols0:
        j = x // tc
        lanes = [((j - 1) * R if j else 0) + sub.r0 + i for i in range(sub.rows)]
        a.append(("_x" if j else "", lanes, x - sub.c0))
    w = []
    for y in rows0:
        g = y // tr
        lanes = [((g - 1) * C if g else 0) + sub.c0 + i for i in range(sub.cols)]
        w.append(("_x" if g else "", lanes, y - sub.r0))
    pair = _pair_index(config)

    def bottom(c):          # PE(last row of the sub-array, c)
        r1 = sub.r0 + sub.rows - 1
        if r1 == R - 1:
            return (0, c if config.dataflow == "ws" else R - 1 + c)
        return (pair["c_out_x"], (r1 // tr) * C + c)     # row boundary (r1+1)/tr
    if config.dataflow == "ws":
        return a, w, [bottom(sub.c0 + i) for i in range(sub.cols)]
    out = []
    for d in range(sub.rows + sub.cols - 1):     # the sub-array's anti-diagonal lanes
        if d < sub.rows:                         # PE(r0 + d, c0)
            r = sub.r0 + d
            out.append((0, r) if sub.c0 == 0 else
                       (pair["l_out_x"], (sub.c0 // tc - 1) * R + r))
        else:                                    # PE(r1, c0 + d - Rs + 1)
            out.append(bottom(sub.c0 + d - sub.rows + 1))
    return a, w, out


def out_pairs(config):
    """The (valid, values, lanes, W) output pairs the bench records, in index order."""
    _, _, gr, gc = config.grid
    W, R, C = config.mac.acc_width, config.rows, config.cols
    if config.dataflow == "ws":
        pairs = [["c_valid", "c_out", C, W]]
    else:
        pairs = [["c_valid", "c_out", R + C - 1, W]]
    if gr > 1:
        pairs.append(["c_valid_x", "c_out_x", (gr - 1) * C, W])
    if gc > 1 and config.dataflow == "os":
        pairs.append(["l_valid_x", "l_out_x", (gc - 1) * R, W])
    return pairs


def _pair_index(config):
    return {p[1]: i for i, p in enumerate(out_pairs(config))}
