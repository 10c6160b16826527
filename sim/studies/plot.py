"""Plotting: matplotlib figures (Agg) written as deterministic PNGs with a caption naming
the command, tools and library that produced their numbers."""
import textwrap
from pathlib import Path

__all__ = ["figure", "save_figure"]


def figure(panels=1, *, width=None, height=4):
    """A matplotlib (Agg) figure with ``panels`` side by side: ``(fig, [axes])``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, panels, figsize=(width or 5 * panels, height),
                             squeeze=False)
    return fig, list(axes[0])


def save_figure(fig, path, caption, *, dpi=110, tight=True):
    """Write ``fig`` as a PNG with ``caption`` (the command, tools and library that
    produced its numbers) under it; same inputs, same bytes. Returns the path."""
    import matplotlib.pyplot as plt
    text = "\n".join(textwrap.wrap(caption.replace("`", ""), 150))
    fig.text(0.01, 0.005, text, fontsize=6, va="bottom", ha="left", color="0.3")
    if tight:
        fig.tight_layout(rect=(0, 0.03 * (text.count("\n") + 1), 1, 1))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, metadata={"Software": None})
    plt.close(fig)
    return path
