"""Decoding: from a model that scores the next token to sequences - sampling (temperature, top-k,
top-p), greedy decoding and batched beam search, for any decoder.

A decoder is any object with

    step(tokens, state) -> (logits, state)

``tokens`` (B,) long are the latest tokens, ``state`` what the decoder needs to know of everything
before them (None is allowed: the decoder's own start), ``logits`` (B, V) score the token that
follows. Beam search also picks and repeats rows of the state; by default ``select_state`` takes
rows along dim 0 of every tensor in it (nested tuples, lists and dicts; None stays None), and a
decoder whose state is laid out otherwise defines ``select_state(state, index)`` itself.

    >>> ids = sample(model.stepper(), start, state, max_length=200, temperature=0.8, top_p=0.9,
    ...              generator=torch.Generator().manual_seed(0)).tokens       # (B, N)
    >>> best = beam_search(decoder, start, state, width=5, max_length=50, end_token=eos,
    ...                    length_normalization="gnmt")[0][0]                 # row 0's best

Sampling draws from softmax(logits / temperature), restricted to the ``top_k`` most likely tokens
and then to the smallest set of most likely tokens whose probability adds up to at least
``top_p`` (nucleus sampling, Holtzman et al. 2020); top_k=1 is greedy (no random number drawn).
Beam search keeps the ``width`` best unfinished sequences of each row by their summed
log-probability (nats); a sequence ends with ``end_token``, and finished sequences are ranked by
that sum divided by a length penalty: none, the length ("mean"), or GNMT's
((5 + length) / 6) ** alpha (Wu et al. 2016). A row stops when no unfinished sequence can still
beat its ``n_best`` best finished ones, or at ``max_length``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, NamedTuple, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor

LENGTH_NORMALIZATIONS = (None, "mean", "gnmt")


class Decoder(Protocol):
    """What decoding needs of a model: the next token's logits (B, V) given tokens (B,) and a
    state. A decoder may also define ``select_state(state, index)`` (see ``select_state``)."""

    def step(self, tokens: Tensor, state: Any) -> tuple[Tensor, Any]: ...


def select_state(state: Any, index: Tensor) -> Any:
    """Rows ``index`` (K,) of a state: ``index_select`` along dim 0 of every tensor in nested
    tuples, lists and dicts (None and other leaves are kept as they are)."""
    if state is None:
        return None
    if isinstance(state, Tensor):
        return state.index_select(0, index.to(state.device))
    if isinstance(state, (tuple, list)):
        picked = [select_state(s, index) for s in state]
        return type(state)(*picked) if hasattr(state, "_fields") else type(state)(picked)
    if isinstance(state, dict):
        return {key: select_state(value, index) for key, value in state.items()}
    return state


def _selector(decoder: Decoder):
    return getattr(decoder, "select_state", select_state)


# --- arguments -------------------------------------------------------------------------------


def check_sampling(length: int = 0, temperature: float = 1.0, top_k: int | None = None,
                   top_p: float | None = None) -> None:
    """Raise a ValueError for sampling arguments that make no sense: ``length`` (tokens to
    generate) >= 0, temperature > 0, top_k >= 1, top_p in (0, 1]."""
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) \
            or not temperature > 0 or not math.isfinite(temperature):
        raise ValueError(f"temperature must be a positive number, got {temperature!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int)
                              or top_k < 1):
        raise ValueError(f"top-k must be an integer of at least 1 (or None for all), got "
                         f"{top_k!r}")
    if top_p is not None and (isinstance(top_p, bool) or not isinstance(top_p, (int, float))
                              or not 0 < top_p <= 1):
        raise ValueError(f"top-p must be a probability in (0, 1] (1 keeps every token), got "
                         f"{top_p!r}")
    if isinstance(length, bool) or not isinstance(length, int) or length < 0:
        raise ValueError(f"length must be an integer >= 0, got {length!r}")


def _check_tokens(tokens: Tensor) -> Tensor:
    if not isinstance(tokens, Tensor) or tokens.dim() != 1 or tokens.dtype != torch.long \
            or tokens.numel() == 0:
        shown = tuple(tokens.shape) if isinstance(tokens, Tensor) else type(tokens).__name__
        raise ValueError(f"tokens must be a 1-D long tensor (B,) of start tokens, B >= 1; got "
                         f"{shown}")
    return tokens


def _check_logits(logits: Tensor) -> None:
    if not isinstance(logits, Tensor) or logits.dim() != 2:
        shown = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise ValueError(f"a decoder's step must return logits shaped (B, V), got {shown}")


# --- one step: which tokens, with which probabilities ----------------------------------------


def _candidates(logits: Tensor, temperature: float, top_k: int | None,
                top_p: float | None) -> tuple[Tensor, Tensor]:
    """The tokens sampling may draw and their (unnormalised) probabilities, both (B, K).

    Without top-k or top-p: every token, in vocabulary order. With top-k: the k largest, sorted.
    With top-p: sorted, and the tokens past the smallest set of mass >= p get probability 0.
    """
    logits = logits if logits.dtype == torch.float64 else logits.float()
    # shift the largest to 0 first: a tiny temperature then gives -inf, never inf - inf = nan
    logits = (logits - logits.amax(-1, keepdim=True)) / temperature
    vocab = logits.shape[-1]
    nucleus = top_p is not None and top_p < 1
    if top_k is not None and top_k < vocab:
        values, ids = torch.topk(logits, top_k, dim=-1)  # exactly k, ties or not; sorted
    elif nucleus:
        values, ids = torch.sort(logits, dim=-1, descending=True, stable=True)
    else:
        ids = torch.arange(vocab, device=logits.device).expand(logits.shape)
        return torch.softmax(logits, dim=-1), ids
    probs = torch.softmax(values, dim=-1)
    if nucleus:
        before = probs.cumsum(dim=-1) - probs  # mass of the more likely tokens
        probs = probs.masked_fill(before >= top_p, 0.0)  # the most likely one always stays
    return probs, ids


def distribution(logits: Tensor, temperature: float = 1.0, top_k: int | None = None,
                 top_p: float | None = None) -> Tensor:
    """The distribution (B, V) (or (V,)) that ``sample_next`` draws from, normalised."""
    check_sampling(0, temperature, top_k, top_p)
    rows = logits.unsqueeze(0) if logits.dim() == 1 else logits
    if top_k == 1:
        out = F.one_hot(rows.argmax(-1), rows.shape[-1]).to(rows.dtype)
    else:
        probs, ids = _candidates(rows, temperature, top_k, top_p)
        out = torch.zeros(rows.shape, dtype=probs.dtype, device=probs.device)
        out.scatter_(-1, ids, probs / probs.sum(-1, keepdim=True))
    return out.squeeze(0) if logits.dim() == 1 else out


def sample_next(logits: Tensor, temperature: float = 1.0, top_k: int | None = None,
                top_p: float | None = None,
                generator: torch.Generator | None = None) -> Tensor:
    """One token per row drawn from logits (B, V) -> (B,) long (or (V,) -> a 0-d tensor).

    softmax(logits / temperature) over the ``top_k`` largest (all if None), then over the
    smallest most-likely set of mass >= ``top_p`` (all if None or 1). top_k=1 returns the argmax
    and draws no random number. ``generator`` makes the draw reproducible.
    """
    check_sampling(0, temperature, top_k, top_p)
    if top_k == 1:
        return logits.argmax(-1)
    rows = logits.unsqueeze(0) if logits.dim() == 1 else logits
    probs, ids = _candidates(rows, temperature, top_k, top_p)
    picked = ids.gather(-1, torch.multinomial(probs, 1, generator=generator)).squeeze(-1)
    return picked.squeeze(0) if logits.dim() == 1 else picked


def sample_logits(logits: Tensor, temperature: float = 1.0, top_k: int | None = None,
                  generator: torch.Generator | None = None, top_p: float | None = None) -> int:
    """One id drawn from logits (V,), as ``sample_next``."""
    return int(sample_next(logits, temperature, top_k, top_p, generator))


# --- whole sequences -------------------------------------------------------------------------


class Decoded(NamedTuple):
    """Sequences from ``sample`` or ``greedy``: ``tokens`` (B, N) long, the end token included
    and repeated past each row's end; ``lengths`` (B,) tokens up to and including the end token
    (N where a row did not end)."""

    tokens: Tensor
    lengths: Tensor


def stream(decoder: Decoder, tokens: Tensor, state: Any = None, *, steps: int = 1,
           temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
           generator: torch.Generator | None = None) -> Iterator[Tensor]:
    """Yield ``steps`` sampled tokens (B,) one at a time, each fed back to the decoder; the
    decoder runs only when the next token is asked for (for streaming text)."""
    check_sampling(steps, temperature, top_k, top_p)  # now, not at the first token
    return _stream(decoder, _check_tokens(tokens), state, steps, temperature, top_k, top_p,
                   generator)


def _stream(decoder: Decoder, tokens: Tensor, state: Any, steps: int, temperature: float,
            top_k: int | None, top_p: float | None,
            generator: torch.Generator | None) -> Iterator[Tensor]:
    for _ in range(steps):
        logits, state = decoder.step(tokens, state)
        _check_logits(logits)
        tokens = sample_next(logits, temperature, top_k, top_p, generator)
        yield tokens


def sample(decoder: Decoder, tokens: Tensor, state: Any = None, *, max_length: int = 100,
           temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
           end_token: int | None = None, generator: torch.Generator | None = None) -> Decoded:
    """Sample up to ``max_length`` tokens after ``tokens`` (B,) for every row, stopping a row at
    ``end_token`` and all of them once every row has ended."""
    check_sampling(max_length, temperature, top_k, top_p)
    if end_token is not None and (isinstance(end_token, bool) or not isinstance(end_token, int)
                                  or end_token < 0):
        raise ValueError(f"end_token must be a token id >= 0 (or None), got {end_token!r}")
    out: list[Tensor] = []
    ended = torch.zeros_like(_check_tokens(tokens), dtype=torch.bool)
    lengths = torch.full_like(tokens, max_length)
    for t, picked in enumerate(stream(decoder, tokens, state, steps=max_length,
                                      temperature=temperature, top_k=top_k, top_p=top_p,
                                      generator=generator)):
        if end_token is not None:
            picked = picked.masked_fill(ended, end_token)
            now = (picked == end_token) & ~ended
            lengths = torch.where(now, t + 1, lengths)
            ended = ended | now
        out.append(picked)
        if end_token is not None and bool(ended.all()):
            break
    lengths = lengths.clamp(max=len(out))
    stacked = torch.stack(out, dim=1) if out else tokens.new_empty(tokens.shape[0], 0)
    return Decoded(stacked, lengths)


def greedy(decoder: Decoder, tokens: Tensor, state: Any = None, *, max_length: int = 100,
           end_token: int | None = None) -> Decoded:
    """The most likely next token at every step (``sample`` with top_k=1: no randomness)."""
    return sample(decoder, tokens, state, max_length=max_length, top_k=1, end_token=end_token)


class Hypothesis(NamedTuple):
    """One sequence found by beam search.

    tokens: the generated tokens (the start token not included; the end token included when
        ``finished``); score: ``log_prob`` / the length penalty of ``len(tokens)`` (the ranking);
    log_prob: the summed log-probability in nats; finished: ended with the end token (False: cut
    at ``max_length``).
    """

    tokens: list[int]
    score: float
    log_prob: float
    finished: bool


def length_penalty(length: int, normalization: str | None = None, alpha: float = 0.6) -> float:
    """The divisor of a sequence's log-probability: 1 (None), ``length`` ("mean"), or GNMT's
    ((5 + length) / 6) ** alpha ("gnmt"). Each is >= 1 and grows with the length."""
    if normalization is None:
        return 1.0
    if normalization == "mean":
        return float(length)
    return ((5 + length) / 6) ** alpha


def beam_search(decoder: Decoder, tokens: Tensor, state: Any = None, *, width: int = 4,
                max_length: int = 100, end_token: int | None = None,
                length_normalization: str | None = None, alpha: float = 0.6,
                n_best: int = 1) -> list[list[Hypothesis]]:
    """The ``n_best`` most likely continuations of each start token, by batched beam search.

    Args:
        decoder: ``step(tokens (K,), state) -> (logits (K, V), state)``; K = B * width rows.
        tokens: the start tokens (B,) long; ``state`` the decoder's state for those B rows
            (repeated for the beams by ``select_state``, the decoder's own if it has one).
        width: sequences kept per row (1 is greedy decoding).
        max_length: the most tokens generated per sequence.
        end_token: the token that ends a sequence; None: every sequence runs to max_length.
        length_normalization: None (summed log-probabilities), "mean" (divided by the length)
            or "gnmt" (divided by ((5 + length) / 6) ** alpha); it ranks finished sequences.
        n_best: how many sequences to return per row, 1 <= n_best <= width.

    Returns:
        For each row, its best sequences, best first (``Hypothesis``: tokens, score, log_prob,
        finished). Sequences cut at max_length are included (finished=False) when a row had
        not found ``n_best`` better finished ones.
    """
    _check_beam(width, max_length, length_normalization, alpha, n_best)
    if end_token is not None and (isinstance(end_token, bool) or not isinstance(end_token, int)
                                  or end_token < 0):
        raise ValueError(f"end_token must be a token id >= 0 (or None), got {end_token!r}")
    tokens = _check_tokens(tokens)
    select = _selector(decoder)
    batch, device = tokens.shape[0], tokens.device
    rows = torch.arange(batch, device=device).repeat_interleave(width)
    state = select(state, rows)
    last = tokens[rows]
    scores = torch.full((batch, width), -math.inf, device=device, dtype=torch.float64)
    scores[:, 0] = 0.0  # the beams start as copies of one sequence: keep one of them
    history = tokens.new_empty(batch, width, 0)
    found: list[list[Hypothesis]] = [[] for _ in range(batch)]
    done = [False] * batch

    def penalty(length: int) -> float:
        return length_penalty(length, length_normalization, alpha)

    for t in range(1, max_length + 1):
        logits, state = decoder.step(last, state)
        _check_logits(logits)
        vocab = logits.shape[-1]
        if end_token is not None and not 0 <= end_token < vocab:
            raise ValueError(f"end_token {end_token} is not a token of this decoder's "
                             f"vocabulary [0, {vocab})")
        logp = torch.log_softmax(logits.double(), dim=-1).view(batch, width, vocab)
        candidates = (scores.unsqueeze(-1) + logp).view(batch, width * vocab)
        top_scores, top_index = candidates.topk(min(2 * width, width * vocab), dim=1)
        top_beam, top_token = top_index // vocab, top_index % vocab
        ends = top_token == end_token if end_token is not None else \
            torch.zeros_like(top_token, dtype=torch.bool)
        # an end token among the width best candidates finishes a sequence (width 1: greedy)
        finishing = ends.clone()
        finishing[:, width:] = False
        finishing &= torch.isfinite(top_scores)
        for b, j in finishing.nonzero().tolist():
            if not done[b]:
                raw = float(top_scores[b, j])
                sequence = history[b, int(top_beam[b, j])].tolist() + [end_token]
                found[b].append(Hypothesis(sequence, raw / penalty(t), raw, True))
        # the width best candidates that go on
        live, pick = top_scores.masked_fill(ends, -math.inf).topk(width, dim=1)
        beam, token = top_beam.gather(1, pick), top_token.gather(1, pick)
        history = torch.cat([history.gather(1, beam.unsqueeze(-1).expand(-1, -1, t - 1)),
                             token.unsqueeze(-1)], dim=2)
        scores = live
        state = select(state, (torch.arange(batch, device=device).unsqueeze(1) * width
                               + beam).view(-1))
        last = token.view(-1)
        # a row is done when no unfinished sequence can beat its n_best-th finished one: each
        # further token lowers the log-probability (<= 0), and the penalty is at most
        # penalty(max_length), so log_prob / penalty <= best live score / penalty(max_length)
        for b in range(batch):
            if not done[b] and len(found[b]) >= n_best:
                kth = sorted((h.score for h in found[b]), reverse=True)[n_best - 1]
                done[b] = kth >= float(scores[b, 0]) / penalty(max_length)
        if all(done):
            break
    for b in range(batch):
        if not done[b]:
            for w in range(width):
                raw = float(scores[b, w])
                if math.isfinite(raw):
                    sequence = history[b, w].tolist()
                    found[b].append(Hypothesis(sequence, raw / penalty(len(sequence)), raw,
                                               False))
    return [sorted(hyps, key=lambda h: h.score, reverse=True)[:n_best] for hyps in found]


def _check_beam(width: int, max_length: int, normalization: str | None, alpha: float,
                n_best: int) -> None:
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ValueError(f"beam width must be an integer >= 1, got {width!r}")
    if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
        raise ValueError(f"max_length must be an integer >= 1, got {max_length!r}")
    if normalization not in LENGTH_NORMALIZATIONS:
        raise ValueError(f"length_normalization must be one of {LENGTH_NORMALIZATIONS}, got "
                         f"{normalization!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not alpha >= 0 \
            or not math.isfinite(alpha):
        raise ValueError(f"alpha (GNMT's length penalty exponent) must be >= 0, got {alpha!r}")
    if isinstance(n_best, bool) or not isinstance(n_best, int) or not 1 <= n_best <= width:
        raise ValueError(f"n_best must be an integer in [1, width={width}], got {n_best!r}")
