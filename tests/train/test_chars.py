"""Character encoding (any script: unknown symbols, never a crash) and the character-level encoders:
LIWE's shapes and size, the sentence GRU against torch's packed bidirectional GRU, and captions whose
vectors do not depend on the batch they are encoded in."""

from __future__ import annotations

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

from mmbench.text import tokenize
from mmbench.train.chars import (
    END,
    PAD,
    REFERENCE_ALPHABET,
    START,
    UNK,
    Alphabet,
    CharCNNEncoder,
    LiweTextEncoder,
    LiweWords,
    SentenceGRU,
    WordChars,
    count_parameters,
    encode_streams,
    encode_words,
)


def test_the_reference_alphabet_has_101_symbols_with_the_specials_first():
    assert len(REFERENCE_ALPHABET) == 101 and len(set(REFERENCE_ALPHABET)) == 101
    assert REFERENCE_ALPHABET[:5] == ("<pad>", "<unk>", "<start>", "<end>", " ")
    assert {"a", "z", "ä", "ß", "é", "0", "9"} <= set(REFERENCE_ALPHABET)


def test_words_are_wrapped_in_start_and_end_and_cut_or_padded():
    alphabet = Alphabet()
    rows = encode_words(["hund", "", "a" * 40], alphabet, max_chars=26)
    assert rows.shape == (3, 26) and rows.dtype == torch.int64
    assert rows[0, :6].tolist() == [START, *alphabet.ids("hund"), END] and rows[0, 6:].eq(PAD).all()
    assert rows[1, :2].tolist() == [START, END] and rows[1, 2:].eq(PAD).all()
    assert rows[2, 0] == START and rows[2, 1:].eq(alphabet.index["a"]).all()  # cut: no <end>


@pytest.mark.parametrize("word", ["собака", "كلب", "犬", "कुत्ता", "🐕", "pès", "příliš", "\u0301", "a\u200db"])
def test_unseen_scripts_are_unknown_symbols_never_an_error(word):
    alphabet = Alphabet()
    ids = alphabet.ids(word)
    assert all(0 < i < len(alphabet) for i in ids)
    known = [c for c in word if c in alphabet.index]
    assert ids.count(UNK) == len(word) - len(known)
    encoder = LiweTextEncoder(len(alphabet), neurons=(16,), dim=8, hidden=4).eval()
    chars, lengths = WordChars(alphabet)([tokenize(word) or [word]])
    with torch.inference_mode():
        assert torch.isfinite(encoder(chars, lengths)).all()


def test_decomposed_accents_map_to_the_precomposed_symbol():
    alphabet = Alphabet()
    assert alphabet.ids("mu\u0308de") == alphabet.ids("müde") and UNK not in alphabet.ids("müde")


def test_liwe_word_embedding_has_the_reference_shapes_and_a_size_free_of_the_vocabulary():
    words = LiweWords(101)
    linears = [layer[0] for layer in words.layers]
    assert [(m.in_features, m.out_features) for m in linears] == [(624, 384), (384, 448), (448, 300)]
    assert all(isinstance(layer[2], torch.nn.LeakyReLU) and layer[2].negative_slope == 0.1
               for layer in words.layers)
    assert words(encode_words(["dog", "hund", "собака"], Alphabet())).shape == (3, 300)
    # 101 x 24 characters + three weight-normalised layers with biases and batch norm
    expected = 101 * 24 + sum(a * b + b + b + 2 * b for a, b in ((624, 384), (384, 448), (448, 300)))
    assert count_parameters(words) == expected


def test_sentence_gru_equals_a_packed_bidirectional_gru_at_the_last_valid_step():
    torch.manual_seed(0)
    gru = SentenceGRU(5, 7)
    reference = torch.nn.GRU(5, 7, batch_first=True, bidirectional=True)
    with torch.no_grad():
        for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
            getattr(reference, name).copy_(getattr(gru.forward_gru, name))
            getattr(reference, name + "_reverse").copy_(getattr(gru.backward_gru, name))
    vectors, lengths = torch.randn(4, 6, 5), torch.tensor([6, 3, 1, 4])
    states, _ = reference(pack_padded_sequence(vectors, lengths, batch_first=True, enforce_sorted=False))
    states, _ = torch.nn.utils.rnn.pad_packed_sequence(states, batch_first=True)
    last = states[torch.arange(4), lengths - 1].view(4, 2, 7).mean(1)
    assert torch.allclose(gru(vectors, lengths), torch.nn.functional.normalize(last, dim=-1), atol=1e-6)


@pytest.mark.parametrize("kind", ["liwe", "charcnn"])
def test_a_caption_vector_does_not_depend_on_its_batch(kind):
    torch.manual_seed(0)
    alphabet = Alphabet()
    short, long = ["a", "dog", "runs"], ["two", "men", "in", "blue", "shirts", "play", "football", "on", "a", "green", "field"]
    if kind == "liwe":
        encoder = LiweTextEncoder(len(alphabet), neurons=(32,), dim=16, hidden=8)
        encode = WordChars(alphabet)
    else:
        encoder = CharCNNEncoder(len(alphabet), channels=(8, 8), kernels=(3, 5), hidden=8)
        encode = lambda captions: encode_streams(captions, alphabet)
    encoder.train()
    encoder(*encode([short, long]))  # batch-norm statistics move away from their start
    encoder.eval()
    with torch.inference_mode():
        alone = encoder(*encode([short]))
        together = encoder(*encode([short, long, long[:2]]))
    assert torch.allclose(alone[0], together[0], atol=1e-6)
    assert torch.allclose(alone.norm(dim=-1), torch.ones(1))


def test_char_streams_join_words_with_spaces():
    alphabet = Alphabet()
    streams, lengths = encode_streams([["a", "dog"], []], alphabet)
    assert streams[0, :7].tolist() == [START, *alphabet.ids("a dog"), END] and lengths.tolist() == [7, 2]
