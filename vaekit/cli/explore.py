"""`vaekit explore RUN`: the latent-space explorer, a local web page over one run folder."""
from __future__ import annotations

import warnings

from ..errors import VaekitWarning
from .common import count

HELP = "explore a run's latent space in a local web page (map, sliders, interpolation, samples)"


def add_arguments(p) -> None:
    p.add_argument("run", help="a run folder: an image, sentence or table run")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on; anything but loopback shares the model and data with the network")
    p.add_argument("--port", type=int, default=8765, help="port to listen on (0: any free one)")
    p.add_argument("--points", type=count(2), default=2000, help="held-out examples on the map")
    p.add_argument("--map", choices=["pca", "umap"], default="pca",
                   help="how codes above 2-D are mapped to the plane (umap needs umap-learn)")
    p.add_argument("--label", default=None, help="tables: the column that colours the map (default: the last "
                                                  "column with few values)")
    p.add_argument("--data-dir", default=None, help="where the run's named data set lives, if not where it was")


def run(args) -> int:
    from ..explorer import Explorer, open_space
    from ..explorer.server import LOOPBACK

    if not 0 <= args.port <= 65535:
        from ..errors import VaekitError

        raise VaekitError(f"--port {args.port} is not a port: use 0 to 65535")
    if args.host not in LOOPBACK:
        warnings.warn(f"listening on {args.host}: anyone who can reach this machine can use the page, decode "
                      f"from the model and see the run's examples; use --host 127.0.0.1 to keep it local",
                      VaekitWarning)
    print(f"reading {args.run} ...", flush=True)
    space = open_space(args.run, points=args.points, map_method=args.map, label=args.label, data_dir=args.data_dir)
    explorer = Explorer(space, args.host, args.port)
    print(f"vaekit explorer: {explorer.url}  ({space.kind} run, {len(space.codes)} examples; Ctrl-C stops it)",
          flush=True)
    explorer.run()
    return 0
