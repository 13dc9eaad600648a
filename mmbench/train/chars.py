"""Character-level text encoders (Wehrmann and Barros; ``lavse``): a fixed alphabet, words as character
ids, the LIWE word embedding, the sentence GRU that reads it, a word-table control and a char-CNN.

* **Alphabet.** LIWE's code ships one character vocabulary (``.vocab_cache/char.json``): 101 symbols,
  ``<pad>`` (0), ``<unk>`` (1), ``<start>`` (2), ``<end>`` (3), space (4), then 96 characters (Latin letters
  in both cases, digits, punctuation, German umlauts and ß, é). :data:`REFERENCE_ALPHABET` is that list;
  any other character (another script, a French or Czech accent) is ``<unk>``: never an error.
* **Words as characters** (:func:`encode_words`): NFC-normalised, ``<start>`` + characters + ``<end>``,
  cut or padded with ``<pad>`` to ``max_chars`` (26), so every word of every language is a row of 26 ids.
* **LIWE** (:class:`LiweWords`): 24-d character vectors concatenated (26 x 24 = 624) -> per word, layers of
  weight-normalised 1x1 convolutions (= ``Linear``) with batch norm and LeakyReLU(0.1): 624 -> 384 -> 448
  -> 300 (every layer, the last included, has norm and activation, as in the reference).
* **Sentence GRU** (:class:`SentenceGRU`): a bidirectional GRU over the word vectors, the two directions
  averaged at the last valid step, L2-normalised (the reference's ``use_bi_gru`` with ``pooling: lens``).
* :class:`WordTableEncoder`: the same GRU over a learnt word table (the word-embedding control);
  :class:`CharCNNEncoder`: the convolutional character-level sentence encoder (see its docstring).
"""

from __future__ import annotations

import itertools
import unicodedata
from collections.abc import Sequence

import torch
import torch.nn.functional as F

PAD, UNK, START, END, SPACE = 0, 1, 2, 3, 4
# LIWE's character vocabulary in its order (lavse .vocab_cache/char.json, ids 5..100).
_REFERENCE_CHARS = 'Twoyungsitharlked.,WmbAfjpSvcqFx\'-GBJDY()PMC2Lz"5O?4NVI13KH0;REX!:&7U69Q#8Z$`%äüßöÜÖÄ>/´é_=+[\\@]'
REFERENCE_ALPHABET: tuple[str, ...] = ("<pad>", "<unk>", "<start>", "<end>", " ", *_REFERENCE_CHARS)


class Alphabet:
    """Characters -> ids; ``symbols[0:5]`` are pad, unk, start, end and space."""

    def __init__(self, symbols: Sequence[str] = REFERENCE_ALPHABET) -> None:
        self.symbols = list(symbols)
        if self.symbols[:5] != list(REFERENCE_ALPHABET[:5]) or len(set(self.symbols)) != len(self.symbols):
            raise ValueError("an alphabet starts with <pad>, <unk>, <start>, <end>, space and has no repeats")
        self.index = {s: i for i, s in enumerate(self.symbols) if i >= SPACE}

    def __len__(self) -> int:
        return len(self.symbols)

    def ids(self, text: str) -> list[int]:
        """One id per character of the NFC form of ``text``; unknown characters are ``UNK``."""
        return [self.index.get(c, UNK) for c in unicodedata.normalize("NFC", text)]


def encode_words(words: Sequence[str], alphabet: Alphabet, max_chars: int = 26) -> torch.Tensor:
    """``(len(words), max_chars)`` int64: ``<start>`` + character ids + ``<end>``, cut or ``<pad>``-padded."""
    out = torch.zeros(len(words), max_chars, dtype=torch.int64)
    for row, word in enumerate(words):
        ids = ([START] + alphabet.ids(word) + [END])[:max_chars]
        out[row, :len(ids)] = torch.tensor(ids, dtype=torch.int64)
    return out


class WordChars:
    """Captions (token lists) -> ``chars`` (B, T, max_chars) and ``lengths`` (B,); each distinct word is
    encoded once and remembered. An empty caption becomes one ``<unk>`` word (length 1)."""

    def __init__(self, alphabet: Alphabet, max_chars: int = 26) -> None:
        self.alphabet, self.max_chars = alphabet, max_chars
        self._cache: dict[str, torch.Tensor] = {}

    def word(self, word: str) -> torch.Tensor:
        row = self._cache.get(word)
        if row is None:
            row = self._cache[word] = encode_words([word], self.alphabet, self.max_chars)[0]
        return row

    def __call__(self, captions: Sequence[Sequence[str]]) -> tuple[torch.Tensor, torch.Tensor]:
        captions = [list(c) or ["<unk>"] for c in captions]
        lengths = torch.tensor([len(c) for c in captions], dtype=torch.int64)
        chars = torch.zeros(len(captions), int(lengths.max()) if captions else 1, self.max_chars,
                            dtype=torch.int64)
        for i, caption in enumerate(captions):
            chars[i, :len(caption)] = torch.stack([self.word(w) for w in caption])
        return chars, lengths


def encode_streams(captions: Sequence[Sequence[str]], alphabet: Alphabet,
                   max_length: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """Captions as one character stream each, for the char-CNN: ``<start>`` + words joined by spaces +
    ``<end>``, cut to ``max_length``; returns ``(B, L)`` ids padded with ``<pad>`` and the lengths."""
    streams = [([START] + alphabet.ids(" ".join(c)) + [END])[:max_length] for c in captions]
    lengths = torch.tensor([len(s) for s in streams], dtype=torch.int64)
    out = torch.zeros(len(streams), int(lengths.max()) if streams else 1, dtype=torch.int64)
    for i, s in enumerate(streams):
        out[i, :len(s)] = torch.tensor(s, dtype=torch.int64)
    return out, lengths


class LiweWords(torch.nn.Module):
    """LIWE: ``(N, max_chars)`` character ids -> ``(N, dim)`` word vectors (module docstring)."""

    def __init__(self, n_symbols: int, *, char_dim: int = 24, max_chars: int = 26,
                 neurons: Sequence[int] = (384, 448), dim: int = 300) -> None:
        super().__init__()
        from torch.nn.utils.parametrizations import weight_norm

        self.chars = torch.nn.Embedding(n_symbols, char_dim)
        sizes = [char_dim * max_chars, *neurons, dim]
        self.layers = torch.nn.Sequential(*(
            torch.nn.Sequential(weight_norm(torch.nn.Linear(a, b)), torch.nn.BatchNorm1d(b),
                                torch.nn.LeakyReLU(0.1))
            for a, b in itertools.pairwise(sizes)))

    def forward(self, chars: torch.Tensor) -> torch.Tensor:
        return self.layers(self.chars(chars).flatten(1))


class SentenceGRU(torch.nn.Module):
    """``(B, T, dim)`` word vectors and lengths -> ``(B, hidden)``: a bidirectional GRU's two directions
    averaged at the last valid step, L2-normalised.

    Padding never enters: the forward direction's output at ``length - 1`` has read only valid words (the
    padding comes later), and the backward direction's output there has read only the last valid word, so
    it is one GRU step from the zero state. The result equals ``torch.nn.GRU(bidirectional=True)`` over a
    packed sequence, at a third of the cost (no packing, one direction over the sequence). The reference
    runs the backward direction over the padding too, so a caption's vector depended on its batch.
    """

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.forward_gru = torch.nn.GRU(dim, hidden, batch_first=True)
        self.backward_gru = torch.nn.GRU(dim, hidden, batch_first=True)

    def forward(self, vectors: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        rows = torch.arange(vectors.shape[0], device=vectors.device)
        last = lengths.to(vectors.device) - 1
        states, _ = self.forward_gru(vectors)
        backward, _ = self.backward_gru(vectors[rows, last].unsqueeze(1))
        return F.normalize((states[rows, last] + backward[:, 0]) / 2, dim=-1)


class LiweTextEncoder(torch.nn.Module):
    """``chars`` (B, T, max_chars), ``lengths`` -> (B, hidden): LIWE word vectors through the sentence GRU.
    Only valid word positions go through LIWE (so padding never enters batch-norm statistics)."""

    def __init__(self, n_symbols: int, *, char_dim: int = 24, max_chars: int = 26,
                 neurons: Sequence[int] = (384, 448), dim: int = 300, hidden: int = 1024) -> None:
        super().__init__()
        self.words = LiweWords(n_symbols, char_dim=char_dim, max_chars=max_chars, neurons=neurons, dim=dim)
        self.gru = SentenceGRU(dim, hidden)

    def forward(self, chars: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        valid = torch.arange(chars.shape[1], device=chars.device)[None, :] < lengths.to(chars.device)[:, None]
        flat = self.words(chars[valid])
        vectors = flat.new_zeros(*valid.shape, flat.shape[-1]).masked_scatter(valid[..., None], flat)
        return self.gru(vectors, lengths)


class WordTableEncoder(torch.nn.Module):
    """The control: ``tokens`` (B, T) rows of a word table (0 pads), ``lengths`` -> the same sentence GRU."""

    def __init__(self, n_rows: int, *, dim: int = 300, hidden: int = 1024) -> None:
        super().__init__()
        self.words = torch.nn.Embedding(n_rows, dim, padding_idx=0)
        self.gru = SentenceGRU(dim, hidden)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.gru(self.words(tokens), lengths)


class _ParallelConv(torch.nn.Module):
    """Convolutions of several widths side by side ('same' padding), each with batch norm and
    LeakyReLU(0.1), concatenated on channels (the reference's ``ConvBlock``/``ParallelBlock``)."""

    def __init__(self, channels_in: int, channels_out: int, kernels: Sequence[int]) -> None:
        super().__init__()
        self.convs = torch.nn.ModuleList(
            torch.nn.Sequential(torch.nn.Conv1d(channels_in, channels_out, k, padding=k // 2),
                                torch.nn.BatchNorm1d(channels_out), torch.nn.LeakyReLU(0.1))
            for k in kernels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([conv(x) for conv in self.convs], dim=1)


class CharCNNEncoder(torch.nn.Module):
    """A caption's character stream (B, L) and its lengths -> (B, hidden), L2-normalised.

    Character vectors -> ``len(channels)`` blocks of parallel convolutions (widths ``kernels``, each block
    followed by max-pooling of 2 but the last) -> max over the valid positions -> ``Linear(-> hidden)``.
    Positions past a caption's end are masked after every block (-inf for the pooling, then 0, as the
    convolutions' own zero padding), so a caption's vector does not depend on its batch.
    """

    def __init__(self, n_symbols: int, *, char_dim: int = 24, channels: Sequence[int] = (128, 256),
                 kernels: Sequence[int] = (3, 5, 7), hidden: int = 1024) -> None:
        super().__init__()
        self.chars = torch.nn.Embedding(n_symbols, char_dim, padding_idx=PAD)
        widths = [char_dim] + [c * len(kernels) for c in channels]
        self.blocks = torch.nn.ModuleList(_ParallelConv(a, c, kernels) for a, c in zip(widths, channels))
        self.out = torch.nn.Linear(widths[-1], hidden)

    def forward(self, chars: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = self.chars(chars).transpose(1, 2)  # (B, char_dim, L)
        lengths = lengths.to(chars.device)
        for i, block in enumerate(self.blocks):
            x = block(x).masked_fill(~_valid(x.shape[-1], lengths)[:, None, :], float("-inf"))
            if i < len(self.blocks) - 1:  # pool, then zeros where the convolutions' own padding would be
                x = F.max_pool1d(x, 2, ceil_mode=True)
                lengths = (lengths + 1) // 2
                x = x.masked_fill(~_valid(x.shape[-1], lengths)[:, None, :], 0.0)
        return F.normalize(self.out(x.amax(dim=-1)), dim=-1)


def _valid(width: int, lengths: torch.Tensor) -> torch.Tensor:
    return torch.arange(width, device=lengths.device)[None, :] < lengths[:, None]


def count_parameters(module: torch.nn.Module) -> int:
    """Trainable parameters of ``module`` (weight-normalised layers count their direction and gain)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
