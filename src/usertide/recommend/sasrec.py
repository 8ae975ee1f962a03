"""SASRec (Kang & McAuley, ICDM 2018): a causal self-attention next-item model, in
PyTorch on the CPU (the optional extra ``usertide[deep]``; this module imports torch
only when it trains or answers, so snapshots can be read and checked without it).

The network: item embeddings (scaled by ``sqrt(hidden)``) plus learned positional ones,
``blocks`` blocks of (layer-normed query) causal self-attention and a point-wise
feed-forward layer, each with a residual, dropout and layer norm; the item embeddings
are shared with the output, so an item's score after a session is the dot product of
its embedding with the network's state at the session's last position. Training is the
paper's: every position of every sequence (its last ``maxlen + 1`` items) predicts the
next item, binary cross-entropy of that item against ``negatives`` items drawn
uniformly among those the sequence never had; Adam (β2 0.98). (``loss="sampled"``: a
softmax over the next item and ``negatives`` items drawn for the batch; ``"softmax"``:
over every item, more than ten times slower here.) Batches hold sequences of similar lengths
and are cut to their longest, which makes an epoch several times faster (most sequences
are far shorter than ``maxlen``); each position still weighs the same (a batch's loss is
divided by an average batch's positions, not its own).

How it lives in the service:

- ``learn`` keeps each session's latest ``maxlen + 1`` items (the ``max_sessions`` most
  recently active): the training sequences. It never changes the network, so it costs
  microseconds; answers read the session given, so every new event counts at once.
- Training is ``train_network(sequences, items, config)``: sequences of catalogue
  numbers in, a :class:`Network` (numpy weights) out, in any thread; ``install`` swaps
  it in. ``retrain`` does both on what was learned; ``train`` makes a trained model
  from sequences of item ids; ``fit_sequences`` is what ``usertide eval recommend``
  calls, with the users' second-last items as validation (the number of epochs is
  chosen there: the best validation check, stopping when ``patience`` checks in a row
  did not improve it). With ``retrain_every`` set, ``learn`` itself retrains (in the
  caller's thread) each time that many events came since the last training.
- Items learned after the network was trained are not in it: they take the base
  class's popularity fallback until the next training, and are skipped in the input.

An answer is one forward pass over the session's last ``maxlen`` items the network
knows; every item it knows is scored, ``exp(logit - best)`` (positive; the best is 1).
Training is deterministic given the seed (seeded torch and numpy generators, torch's
deterministic algorithms, one thread by default); training ``k`` of a recommender is
seeded with ``seed + k``. Snapshots hold the weights as little-endian float32 arrays in
the msgpack envelope of ``base.py`` (never ``torch.save`` or pickle); loading checks
every array's name, shape and finiteness.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final, Literal, Self

import msgspec
import numpy as np
import numpy.typing as npt

from usertide.recommend.base import (
    EMPTY,
    Recommender,
    Scores,
    configured,
    decode,
    pack,
    unpack,
)

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

Weights = dict[str, npt.NDArray[np.float32]]
Validation = Sequence[tuple[Sequence[int], int]]  # (history, the item that followed)
VALIDATION_NEGATIVES: Final = 100
VALIDATION_CUTOFF: Final = 10
_MASKED: Final = -1e9  # attention score of a padding key (finite: a padding row stays finite)
_EPS: Final = 1e-8  # layer norm, as the paper's code


class SASRecConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The paper's settings for the Amazon data, except ``epochs`` (an upper bound when
    there is validation: see ``patience``)."""

    maxlen: int = 50
    hidden: int = 50
    blocks: int = 2
    heads: int = 1
    dropout: float = 0.5
    lr: float = 0.001
    beta2: float = 0.98
    batch: int = 128
    # bce: the paper's, ``negatives`` per position; sampled: softmax cross-entropy over
    # the next item and ``negatives`` items drawn for the whole batch; softmax: over all
    loss: Literal["bce", "sampled", "softmax"] = "bce"
    negatives: int = 1
    # an upper bound with validation (patience stops it): the Amazon data's best check
    # was epoch 190 of a 200 cap and 220 of this one
    epochs: int = 400
    eval_every: int = 10  # epochs between validation checks (when there is validation)
    patience: int = 3  # checks without improvement before stopping
    seed: int = 0
    retrain_every: int = 0  # learn() retrains after this many new events (0: never)
    max_sessions: int = 1_000_000  # the most recently active sessions kept for training

    def __post_init__(self) -> None:
        positive = (self.maxlen, self.hidden, self.blocks, self.heads, self.batch)
        if min(positive) < 1 or self.negatives < 1 or self.max_sessions < 1:
            raise ValueError("maxlen, hidden, blocks, heads, batch, negatives, max_sessions >= 1")
        if self.hidden % self.heads:
            raise ValueError("hidden must be a multiple of heads")
        if not 0.0 <= self.dropout < 1.0 or not self.lr > 0 or not 0.0 < self.beta2 < 1.0:
            raise ValueError("dropout in [0, 1), lr > 0, beta2 in (0, 1)")
        if min(self.epochs, self.retrain_every) < 0 or self.eval_every < 1 or self.patience < 1:
            raise ValueError("epochs, retrain_every >= 0; eval_every, patience >= 1")


def shapes(config: SASRecConfig, items: int) -> dict[str, tuple[int, ...]]:
    """Every weight of a network over ``items`` items (row 0 of ``item``: padding)."""
    h = config.hidden
    out: dict[str, tuple[int, ...]] = {"item": (items + 1, h), "position": (config.maxlen, h)}
    for b in range(config.blocks):
        for name in ("query", "key", "value", "out", "ff1", "ff2"):
            out[f"{b}.{name}.w"] = (h, h)
            out[f"{b}.{name}.b"] = (h,)
        for norm in ("norm1", "norm2"):
            out[f"{b}.{norm}.w"] = (h,)
            out[f"{b}.{norm}.b"] = (h,)
    out["last.w"] = (h,)
    out["last.b"] = (h,)
    return out


class Network:
    """Trained weights over catalogue items ``0 .. items - 1`` (numpy float32), and
    their torch tensors for answering (made once, on first use)."""

    def __init__(self, config: SASRecConfig, items: int, weights: Weights, epochs: int = 0) -> None:
        expected = shapes(config, items)
        if sorted(weights) != sorted(expected):
            raise ValueError(f"sasrec weights: expected {sorted(expected)}, got {sorted(weights)}")
        for name, array in weights.items():
            if array.shape != expected[name] or array.dtype != np.float32:
                raise ValueError(
                    f"sasrec weight {name}: {array.dtype}{array.shape}, "
                    f"expected float32{expected[name]}"
                )
            if not np.isfinite(array).all():
                raise ValueError(f"sasrec weight {name} is not finite")
        self.config = config
        self.items = items
        self.weights = weights
        self.epochs = epochs
        self._tensors: dict[str, torch.Tensor] | None = None

    def tensors(self) -> dict[str, torch.Tensor]:
        if self._tensors is None:
            import torch

            self._tensors = {k: torch.from_numpy(v.copy()) for k, v in self.weights.items()}
        return self._tensors

    def logits(self, session: Sequence[int]) -> npt.NDArray[np.float64]:
        """The score of every item after ``session`` (catalogue numbers < items)."""
        import torch

        recent = list(session[-self.config.maxlen :])
        with torch.inference_mode():
            p = self.tensors()
            state = _encode(p, torch.tensor([[i + 1 for i in recent]]), self.config, False)
            out = p["item"][1:] @ state[0, -1]
        result: npt.NDArray[np.float64] = out.numpy().astype(np.float64)
        return result


def _dropout(x: torch.Tensor, rate: float, training: bool) -> torch.Tensor:
    """Inverted dropout (a uniform draw is about three times faster than a Bernoulli one
    on this CPU)."""
    import torch

    if not training or rate == 0.0:
        return x
    return x * ((torch.rand_like(x) >= rate).to(x.dtype) / (1.0 - rate))


def _encode(
    p: Mapping[str, torch.Tensor], seqs: torch.Tensor, config: SASRecConfig, training: bool
) -> torch.Tensor:
    """The network's state at every position of ``seqs`` (batch, length; item + 1, 0 for
    padding, right-aligned): batch x length x hidden."""
    import torch
    import torch.nn.functional as F

    batch, length = seqs.shape
    h, heads, rate = config.hidden, config.heads, config.dropout
    x = p["item"][seqs] * math.sqrt(h) + p["position"][config.maxlen - length :]
    x = _dropout(x, rate, training)
    keep = (seqs != 0).unsqueeze(-1).to(x.dtype)
    x = x * keep
    causal = torch.ones(length, length, dtype=torch.bool).triu(1)
    masked = causal.unsqueeze(0) | (seqs == 0).unsqueeze(1)  # batch x query x key
    masked = masked.unsqueeze(1)  # over the heads
    size = h // heads
    for b in range(config.blocks):

        def w(name: str, block: int = b) -> torch.Tensor:
            return p[f"{block}.{name}"]

        q = F.layer_norm(x, (h,), w("norm1.w"), w("norm1.b"), _EPS)

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(batch, length, heads, size).transpose(1, 2)

        query = split(F.linear(q, w("query.w"), w("query.b")))
        key = split(F.linear(x, w("key.w"), w("key.b")))
        value = split(F.linear(x, w("value.w"), w("value.b")))
        scores = (query @ key.transpose(-1, -2)) / math.sqrt(size)
        attention = _dropout(torch.softmax(scores.masked_fill(masked, _MASKED), -1), rate, training)
        mixed = (attention @ value).transpose(1, 2).reshape(batch, length, h)
        x = q + F.linear(mixed, w("out.w"), w("out.b"))
        x = F.layer_norm(x, (h,), w("norm2.w"), w("norm2.b"), _EPS)
        inner = _dropout(F.relu(F.linear(x, w("ff1.w"), w("ff1.b"))), rate, training)
        x = x + _dropout(F.linear(inner, w("ff2.w"), w("ff2.b")), rate, training)
        x = x * keep
    out: torch.Tensor = F.layer_norm(x, (h,), p["last.w"], p["last.b"], _EPS)
    return out


def _initial(config: SASRecConfig, items: int, generator: torch.Generator) -> dict[str, Any]:
    """Xavier-normal matrices and embeddings (the padding row zero), zero biases, unit
    layer-norm gains."""
    import torch

    out = {}
    for name, shape in shapes(config, items).items():
        if len(shape) == 2:
            std = math.sqrt(2.0 / (shape[0] + shape[1]))
            t = torch.randn(shape, generator=generator) * std
        elif name.endswith("norm1.w") or name.endswith("norm2.w") or name == "last.w":
            t = torch.ones(shape)
        else:
            t = torch.zeros(shape)
        out[name] = t
    out["item"][0] = 0.0
    return out


@contextmanager
def _deterministic(seed: int, threads: int) -> Iterator[None]:
    """Seeded torch randomness, deterministic algorithms, ``threads`` threads; all put
    back afterwards."""
    import torch

    previous_threads = torch.get_num_threads()
    previous_mode = torch.are_deterministic_algorithms_enabled()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(True)
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(previous_mode)
            torch.set_num_threads(previous_threads)


def _batch_arrays(
    sequences: Sequence[Sequence[int]], maxlen: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Inputs and targets (item + 1, right-aligned, 0 for padding) of each sequence's last
    ``maxlen + 1`` items."""
    inputs = np.zeros((len(sequences), maxlen), np.int64)
    targets = np.zeros((len(sequences), maxlen), np.int64)
    for row, sequence in enumerate(sequences):
        recent = np.asarray(sequence[-(maxlen + 1) :], np.int64) + 1
        n = len(recent) - 1
        inputs[row, maxlen - n :] = recent[:-1]
        targets[row, maxlen - n :] = recent[1:]
    return inputs, targets


def _batches(
    lengths: npt.NDArray[np.int64], size: int, rng: np.random.Generator
) -> list[npt.NDArray[np.int64]]:
    """One epoch's batches: the rows shuffled, then sorted by length within blocks of
    64 batches, so that a batch is cut to its longest row (most are far shorter than
    ``maxlen``), and the batches shuffled."""
    order = rng.permutation(len(lengths))
    out = []
    block = 64 * size
    for first in range(0, len(order), block):
        part = order[first : first + block]
        part = part[np.argsort(lengths[part], kind="stable")]
        out += [part[i : i + size] for i in range(0, len(part), size)]
    return [out[i] for i in rng.permutation(len(out)).tolist()]


def _negatives(
    inputs: npt.NDArray[np.int64],
    targets: npt.NDArray[np.int64],
    count: int,
    items: int,
    rng: np.random.Generator,
) -> npt.NDArray[np.int64]:
    """``count`` items (+ 1) per position, uniform among those the row never had (as
    the paper's ``random_neq``), batch x length x count."""
    had = np.concatenate((inputs, targets[:, -1:]), axis=1)  # every item of the row
    out = rng.integers(1, items + 1, (*targets.shape, count))
    if items <= 1:
        return out
    for _ in range(100):
        clash = (out[..., None] == had[:, None, None, :]).any(-1)
        if not clash.any():
            break
        out[clash] = rng.integers(1, items + 1, int(clash.sum()))
    return out


class Progress(msgspec.Struct, kw_only=True):
    """One validation check: what ``train_network`` reports to its ``progress``."""

    epoch: int
    loss: float
    seconds: float
    hr: float  # sampled HR@10 of the validation items (100 negatives)
    ndcg: float  # sampled NDCG@10
    full_hr: float  # HR@10 among all items, the history excluded
    full_ndcg: float


def train_network(
    sequences: Sequence[Sequence[int]],
    items: int,
    config: SASRecConfig,
    *,
    seed: int | None = None,
    epochs: int | None = None,
    validation: Validation | None = None,
    threads: int = 1,
    progress: Callable[[Progress], None] | None = None,
) -> Network:
    """A network over items ``0 .. items - 1`` trained on ``sequences`` (catalogue
    numbers, oldest first) for ``epochs`` (default: the config's). With ``validation``
    it is checked every ``eval_every`` epochs and the best check's weights are kept
    (by sampled NDCG@10), stopping after ``patience`` checks without improvement.
    Sequences shorter than two items teach nothing and are skipped."""
    import torch

    rounds = config.epochs if epochs is None else epochs
    seed = config.seed if seed is None else seed
    usable = [s for s in sequences if len(s) >= 2]
    if any(min(s) < 0 or max(s) >= items for s in usable):
        raise ValueError("training sequences name items outside the network")
    inputs, targets = _batch_arrays(usable, config.maxlen)
    lengths = (targets != 0).sum(1)
    # a batch's loss is divided by the positions an average batch has, not by its own:
    # batches of similar lengths (``_batches``) then weigh each position as random
    # batches do, and a short sequence counts no more than its positions
    per_batch = float(config.batch * lengths.mean()) if len(lengths) else 1.0
    rng = np.random.default_rng(seed)
    with _deterministic(seed, threads):
        generator = torch.Generator().manual_seed(seed)
        params = _initial(config, items, generator)
        for t in params.values():
            t.requires_grad_(True)
        optimiser = torch.optim.Adam(
            list(params.values()), lr=config.lr, betas=(0.9, config.beta2), fused=True
        )  # fused: the same update, a third of a batch's time less than the default
        checker = _Checker(validation, items, config, rng) if validation else None
        best: tuple[float, int, Weights] | None = None
        stale = 0
        start = time.perf_counter()
        loss_sum, loss_batches = 0.0, 0
        for epoch in range(1, rounds + 1):
            for rows in _batches(lengths, config.batch, rng):
                width = int(lengths[rows].max())
                seqs, pos = inputs[rows, -width:], targets[rows, -width:]
                if config.loss == "bce":
                    neg = _negatives(seqs, pos, config.negatives, items, rng)
                elif config.loss == "sampled":
                    neg = rng.integers(1, items + 1, config.negatives)
                else:
                    neg = None
                # Any: typed the same with torch and without it (its extra not installed)
                loss: Any = _loss(params, seqs, pos, neg, config, per_batch)
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                loss_sum += float(loss.detach())
                loss_batches += 1
            if checker is None or (epoch % config.eval_every and epoch != rounds):
                continue
            hr, ndcg, full_hr, full_ndcg = checker.check(params)
            report = Progress(
                epoch=epoch,
                loss=loss_sum / max(1, loss_batches),
                seconds=time.perf_counter() - start,
                hr=hr,
                ndcg=ndcg,
                full_hr=full_hr,
                full_ndcg=full_ndcg,
            )
            loss_sum, loss_batches = 0.0, 0
            log.info("sasrec %s", msgspec.json.encode(report).decode())
            if progress is not None:
                progress(report)
            if best is None or ndcg > best[0]:
                best, stale = (ndcg, epoch, _numpy(params)), 0
            else:
                stale += 1
                if stale >= config.patience:
                    break
    if best is not None:
        return Network(config, items, best[2], best[1])
    return Network(config, items, _numpy(params), rounds)


def _numpy(params: Mapping[str, torch.Tensor]) -> Weights:
    return {k: v.detach().numpy().astype(np.float32, copy=True) for k, v in params.items()}


def _loss(
    params: Mapping[str, torch.Tensor],
    seqs: npt.NDArray[np.int64],
    pos: npt.NDArray[np.int64],
    neg: npt.NDArray[np.int64] | None,
    config: SASRecConfig,
    per_batch: float,
) -> torch.Tensor:
    """Binary cross-entropy of each position's next item against its negatives, or
    (``neg`` None) the cross-entropy of the softmax over every item."""
    import torch
    import torch.nn.functional as F

    state = _encode(params, torch.from_numpy(seqs), config, True)
    item = params["item"]
    target = torch.from_numpy(pos)
    if neg is None or neg.ndim == 1:
        real = target != 0
        states, wanted = state[real], target[real]
        if neg is None:
            logits, right = states @ item[1:].T, wanted - 1
        else:
            others = torch.from_numpy(neg)
            against = (states @ item[others].T).masked_fill(wanted[:, None] == others, -math.inf)
            logits = torch.cat(((states * item[wanted]).sum(-1, keepdim=True), against), 1)
            right = torch.zeros(len(wanted), dtype=torch.long)
        softmax: torch.Tensor = F.cross_entropy(logits, right, reduction="sum") / per_batch
        return softmax
    positive = (state * item[target]).sum(-1)
    negative = (state.unsqueeze(2) * item[torch.from_numpy(neg)]).sum(-1)
    real = (target != 0).to(state.dtype)
    per_position = F.softplus(-positive) + F.softplus(negative).mean(-1)
    loss: torch.Tensor = (per_position * real).sum() / per_batch
    return loss


class _Checker:
    """Validation: each history's next item ranked among 100 sampled items it never
    had, and among all items (the history excluded)."""

    def __init__(
        self, cases: Validation, items: int, config: SASRecConfig, rng: np.random.Generator
    ) -> None:
        kept = [(list(h), a) for h, a in cases if h and 0 <= a < items]
        self.config = config
        self.inputs = np.zeros((len(kept), config.maxlen), np.int64)
        self.answers = np.asarray([a for _, a in kept], np.int64)
        self.candidates = np.zeros((len(kept), VALIDATION_NEGATIVES + 1), np.int64)
        self.histories = [h for h, _ in kept]
        for row, (history, answer) in enumerate(kept):
            recent = [i for i in history if 0 <= i < items][-config.maxlen :]
            if recent:
                self.inputs[row, config.maxlen - len(recent) :] = np.asarray(recent) + 1
            avoid = {*history, answer}
            chosen: list[int] = []
            seen: set[int] = set()
            wanted = min(VALIDATION_NEGATIVES, items - sum(0 <= i < items for i in avoid))
            while len(chosen) < wanted:
                for i in rng.integers(0, items, 2 * VALIDATION_NEGATIVES).tolist():
                    if i not in avoid and i not in seen:
                        seen.add(i)
                        chosen.append(i)
                        if len(chosen) == wanted:
                            break
            padded = chosen + [answer] * (VALIDATION_NEGATIVES - len(chosen))
            self.candidates[row] = [answer, *padded]

    def check(self, params: Mapping[str, torch.Tensor]) -> tuple[float, float, float, float]:
        import torch

        if not len(self.answers):
            return 0.0, 0.0, 0.0, 0.0
        sampled, full = [], []
        with torch.inference_mode():
            item = params["item"]
            for first in range(0, len(self.answers), 512):
                rows = slice(first, first + 512)
                inputs = self.inputs[rows]
                width = max(1, int((inputs != 0).sum(1).max()))
                state = _encode(params, torch.from_numpy(inputs[:, -width:]), self.config, False)
                last = state[:, -1]
                logits = last @ item[1:].T  # batch x items
                answer = torch.from_numpy(self.answers[rows])
                right = logits.gather(1, answer[:, None])
                picked = logits.gather(1, torch.from_numpy(self.candidates[rows]))
                sampled.append((picked[:, 1:] > right).sum(1).numpy())  # ties to the answer
                for r, history in enumerate(self.histories[rows]):
                    logits[r, [i for i in history if i != self.answers[first + r]]] = -math.inf
                full.append((logits > right).sum(1).numpy())
        ranks = np.concatenate(sampled) + 1
        full_ranks = np.concatenate(full) + 1

        def metrics(r: npt.NDArray[np.int64]) -> tuple[float, float]:
            inside = r <= VALIDATION_CUTOFF
            return float(inside.mean()), float(np.where(inside, 1 / np.log2(r + 1), 0).mean())

        return (*metrics(ranks), *metrics(full_ranks))


class _NetworkState(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    items: int
    epochs: int
    names: list[str]
    weights: list[bytes]  # <f4, in the shapes ``shapes`` gives


class _SASRecState(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    sessions: list[str]  # least recently active first
    lengths: bytes  # <i8
    history: bytes  # <i8, each session's latest items, session after session
    since: int  # events learned since the last training
    trainings: int
    network: _NetworkState | None


class SASRec(Recommender):
    name = "sasrec"

    def __init__(self, config: SASRecConfig | None = None) -> None:
        super().__init__()
        self.config = config or SASRecConfig()
        self.network: Network | None = None
        self._open: OrderedDict[str, list[int]] = OrderedDict()
        self._since = 0
        self._trainings = 0
        self._auto = True

    # -- learning ------------------------------------------------------------------

    def _learn(self, session_id: str, item: int, timestamp: float) -> None:
        history = self._open.get(session_id)
        if history is None:
            history = self._open[session_id] = []
            if len(self._open) > self.config.max_sessions:
                self._open.popitem(last=False)
        else:
            self._open.move_to_end(session_id)
        history.append(item)
        if len(history) > self.config.maxlen + 1:
            del history[0]
        self._since += 1
        if self._auto and self.config.retrain_every and self._since >= self.config.retrain_every:
            self.retrain()

    def forget_session(self, session_id: str) -> None:
        self._open.pop(session_id, None)

    def training_sequences(self) -> list[list[int]]:
        """A copy of the sequences kept (least recently active first), for a trainer."""
        return [list(h) for h in self._open.values()]

    def install(self, network: Network) -> None:
        """Answer with ``network`` from now on (trained on this catalogue's items)."""
        if network.config != self.config or network.items > len(self.catalogue):
            raise ValueError("that network was not trained for this recommender")
        self.network = network
        self._since = 0
        self._trainings += 1

    def retrain(
        self,
        epochs: int | None = None,
        validation: Validation | None = None,
        progress: Callable[[Progress], None] | None = None,
    ) -> Network:
        """Train on the sequences kept and install the result (in this thread)."""
        network = train_network(
            self.training_sequences(),
            len(self.catalogue),
            self.config,
            seed=self.config.seed + self._trainings,
            epochs=epochs,
            validation=validation,
            progress=progress,
        )
        self.install(network)
        return network

    def fit_sequences(
        self,
        events: Iterable[tuple[str, str, float]],
        validation: Sequence[tuple[Sequence[str], str]] | None = None,
        progress: Callable[[Progress], None] | None = None,
    ) -> Self:
        """Learn ``events`` (no training on the way), then train once; ``validation``:
        (history, next item) pairs in item ids to choose the epochs by."""
        self._auto = False
        try:
            self.fit(events)
        finally:
            self._auto = True
        index = self.catalogue.index
        cases = None
        if validation is not None:
            cases = [
                ([index[i] for i in history if i in index], index[answer])
                for history, answer in validation
                if answer in index
            ]
        self.retrain(validation=cases, progress=progress)
        return self

    # -- answering -----------------------------------------------------------------

    def _scores(self, session: Sequence[int], session_id: str | None) -> Scores:
        network = self.network
        if network is None:
            return EMPTY
        known = [i for i in session if i < network.items]
        if not known:
            return EMPTY
        logits = network.logits(known)
        scores = np.exp(logits - logits.max())
        items = np.flatnonzero(scores > 0)
        return items, scores[items]

    # -- snapshots -----------------------------------------------------------------

    def settings(self) -> Any:
        return msgspec.to_builtins(self.config)

    @classmethod
    def _configured(cls, settings: Any) -> Self:
        return cls(configured(settings, SASRecConfig))

    def _state(self) -> Any:
        histories = list(self._open.values())
        network = None
        if self.network is not None:
            names = sorted(self.network.weights)
            network = _NetworkState(
                self.network.items,
                self.network.epochs,
                names,
                [pack(self.network.weights[n], "<f4") for n in names],
            )
        return _SASRecState(
            list(self._open),
            pack([len(h) for h in histories], "<i8"),
            pack([item for h in histories for item in h], "<i8"),
            self._since,
            self._trainings,
            network,
        )

    def _restore(self, state: msgspec.Raw) -> None:
        loaded = decode(state, _SASRecState)
        lengths = unpack(loaded.lengths, "<i8", "sasrec history lengths", len(loaded.sessions))
        history = unpack(loaded.history, "<i8", "sasrec histories")
        if len(history) and (history.min() < 0 or history.max() >= len(self.catalogue)):
            raise ValueError("sasrec histories name items outside the catalogue")
        if (lengths < 1).any() or (lengths > self.config.maxlen + 1).any():
            raise ValueError("sasrec: bad history lengths")
        if lengths.sum() != len(history) or len(set(loaded.sessions)) != len(loaded.sessions):
            raise ValueError("sasrec: histories do not match their sessions")
        if min(loaded.since, loaded.trainings) < 0:
            raise ValueError("sasrec: negative counters")
        network = None
        if loaded.network is not None:
            n = loaded.network
            if len(n.names) != len(n.weights) or not 0 <= n.items <= len(self.catalogue):
                raise ValueError("sasrec: a network of the wrong size")
            expected = shapes(self.config, n.items)
            weights: Weights = {}
            for name, data in zip(n.names, n.weights, strict=True):
                if name not in expected:
                    raise ValueError(f"sasrec: unexpected weight {name!r}")
                count = math.prod(expected[name])
                array = unpack(data, "<f4", f"sasrec weight {name}", count)
                weights[name] = array.reshape(expected[name])
            network = Network(self.config, n.items, weights, n.epochs)
        ends = np.cumsum(lengths).tolist()
        starts = [0, *ends[:-1]]
        values = history.tolist()
        self._open = OrderedDict(
            (session, values[start:end])
            for session, start, end in zip(loaded.sessions, starts, ends, strict=True)
        )
        self._since, self._trainings, self.network = loaded.since, loaded.trainings, network


def train(
    sequences: Iterable[Sequence[str]],
    config: SASRecConfig | None = None,
    *,
    validation: Sequence[tuple[Sequence[str], str]] | None = None,
    progress: Callable[[Progress], None] | None = None,
) -> SASRec:
    """A trained recommender from item sequences (each one a session or a user's
    history, oldest first): sequences in, a model out."""
    events = (
        (str(number), item, 0.0) for number, sequence in enumerate(sequences) for item in sequence
    )
    return SASRec(config).fit_sequences(events, validation, progress)
