"""POT profiles: Shamir's secret sharing as draft-ietf-sfc-proof-of-transit uses it.

A profile for a path of N updating nodes holds two polynomials of degree N-1
over GF(P), P = 2^61 - 1 (:mod:`sfcframe_pot.arith`):

- POLY-1, secret: its constant term is the SECRET; node i holds one point of
  it, its *share* ``POLY-1(x_i)``;
- POLY-2, public but for its constant term, which the first node draws per
  packet: RND. Node i holds ``public = POLY-2(x_i) - RND`` (the part of POLY-2
  that does not change from packet to packet, evaluated once).

Node i also holds its Lagrange polynomial constant ``lpc = prod_{j != i} x_j /
(x_j - x_i)``. Every node updates ``CML += lpc * (share + public + RND) mod P``;
after all N, Lagrange interpolation at 0 gives ``CML = SECRET + RND mod P``,
which the verifier, holding the SECRET, checks. A packet that missed a node
lacks that node's term and fails; so does a CML that belonged to another RND.

The profile file is the verifier's (it holds the SECRET); each node gets its
own settings file with only its share, public value and LPC. Both are written
readable by their owner only.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from sfcframe_pot.arith import P, addmod, fold

#: what a profile file says it is
SCHEME = "sfcframe-pot/shamir-gf(2^61-1)/v1"
MAX_NODES = 64


@dataclass(frozen=True)
class NodeShare:
    """What node ``node`` (1-based, in path order) needs."""

    node: int
    x: int
    share: int
    public: int
    lpc: int

    def update(self, cml: int, rnd: int) -> int:
        from sfcframe_pot.arith import update

        return update(cml, rnd, addmod(self.share, self.public), self.lpc)


@dataclass(frozen=True)
class Profile:
    secret: int
    nodes: tuple[NodeShare, ...]
    namespace: int = 0
    index: int = 0  #: 0 or 1: the profile the packets' flag selects
    prime: int = P

    def expected(self, rnd: int) -> int:
        """The CML a packet with this RND must arrive with."""
        return addmod(self.secret, fold(rnd))

    def verifies(self, cml: int, rnd: int) -> bool:
        return fold(cml) == self.expected(rnd)

    def settings(self, node: int, stage: str = "pot") -> dict[str, int]:
        """Node ``node``'s stage settings (``sfcframe set`` names) for this profile."""
        share = self.node(node)
        return {f"{stage}.namespace": self.namespace,
                f"{stage}.share_{self.index}": share.share,
                f"{stage}.public_{self.index}": share.public,
                f"{stage}.lpc_{self.index}": share.lpc}

    def node(self, node: int) -> NodeShare:
        if not 1 <= node <= len(self.nodes):
            raise ValueError(f"node {node}: the profile has nodes 1..{len(self.nodes)}")
        return self.nodes[node - 1]

    # ---- files -------------------------------------------------------------
    def to_json(self) -> dict:
        return {"scheme": SCHEME, "prime": self.prime, "namespace": self.namespace,
                "profile": self.index, "secret": self.secret,
                "nodes": [asdict(n) for n in self.nodes]}

    @classmethod
    def from_json(cls, doc: dict) -> "Profile":
        if doc.get("scheme") != SCHEME:
            raise ValueError(f"not a POT profile of this tool (scheme {doc.get('scheme')!r}, "
                             f"expected {SCHEME!r})")
        if doc.get("prime") != P:
            raise ValueError(f"the profile's prime {doc.get('prime')} is not 2^61 - 1, the "
                             f"only one the stage computes in")
        nodes = tuple(NodeShare(**n) for n in doc["nodes"])
        profile = cls(int(doc["secret"]), nodes, int(doc.get("namespace", 0)),
                      int(doc.get("profile", 0)))
        profile.check()
        return profile

    def check(self) -> None:
        """ValueError unless the shares interpolate to SECRET + RND (tried on RND 0 and 1)."""
        if not 0 <= self.namespace <= 0xFFFF or self.index not in (0, 1):
            raise ValueError("namespace must be 0..65535 and profile 0 or 1")
        for rnd in (0, 1):
            cml = 0
            for n in self.nodes:
                cml = n.update(cml, rnd)
            if not self.verifies(cml, rnd):
                raise ValueError("the profile's shares do not reconstruct its secret")


def generate(nodes: int, *, namespace: int = 0, index: int = 0,
             randbelow: Callable[[int], int] = secrets.randbelow) -> Profile:
    """A fresh profile for ``nodes`` updating nodes (1..64): random SECRET,
    POLY-1 and POLY-2 coefficients and distinct nonzero points x_i."""
    if not 1 <= nodes <= MAX_NODES:
        raise ValueError(f"--nodes {nodes}: 1..{MAX_NODES} nodes")
    nonzero = lambda: 1 + randbelow(P - 1)  # noqa: E731
    poly1 = [randbelow(P)] + [nonzero() for _ in range(nodes - 1)]
    poly2 = [0] + [nonzero() for _ in range(nodes - 1)]  # constant term: RND, per packet
    xs: list[int] = []
    while len(xs) < nodes:
        x = nonzero()
        if x not in xs:
            xs.append(x)
    shares = []
    for i, x in enumerate(xs):
        lpc = 1
        for j, xj in enumerate(xs):
            if j != i:
                lpc = lpc * xj % P * pow((xj - x) % P, P - 2, P) % P
        shares.append(NodeShare(i + 1, x, _poly(poly1, x), _poly(poly2, x), lpc))
    profile = Profile(poly1[0], tuple(shares), namespace, index)
    profile.check()
    return profile


def _poly(coefficients: list[int], x: int) -> int:
    value = 0
    for c in reversed(coefficients):
        value = (value * x + c) % P
    return value


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        os.fchmod(out.fileno(), 0o600)
        out.write(text)


def write(profile: Profile, directory: Path, stage: str = "pot") -> list[Path]:
    """``profile.json`` (the verifier's: the SECRET) and ``node-<i>.settings``
    (``sfcframe set NAME --from FILE``), all mode 0600. Returns the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = [directory / "profile.json"]
    _write_private(written[0], json.dumps(profile.to_json(), indent=2) + "\n")
    for n in profile.nodes:
        path = directory / f"node-{n.node}.settings"
        lines = [f"# proof of transit, profile {profile.index}, node {n.node} of "
                 f"{len(profile.nodes)} (secret: keep this file private)"]
        lines += [f"{k}={v}" for k, v in profile.settings(n.node, stage).items()]
        _write_private(path, "\n".join(lines) + "\n")
        written.append(path)
    return written


def load(path: Path) -> Profile:
    try:
        doc = json.loads(Path(path).read_text())
    except OSError as exc:
        raise ValueError(f"{path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON ({exc.msg}, line {exc.lineno})") from None
    try:
        return Profile.from_json(doc)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a POT profile ({exc})") from None
