"""Sentences to token ids and back: by words (a vocabulary cut by count and size) or by byte-pair encoding
trained on the training split with the `tokenizers` library. Both save as JSON in the run folder.

Ids 0-3 are the same in both: <pad> (fills a batch's short sentences), <s> (the decoder's first input), </s>
(the end every sentence is trained to predict) and <unk> (a word outside the vocabulary).
"""
from __future__ import annotations

import json
from collections import Counter

from ...errors import VaekitError

PAD, BOS, EOS, UNK = 0, 1, 2, 3
SPECIALS = ("<pad>", "<s>", "</s>", "<unk>")


class WordTokenizer:
    """Words split at white space (the corpus's own tokenisation), optionally lower-cased."""

    kind = "word"

    def __init__(self, tokens: list[str], lower: bool = True):
        self.tokens, self.lower = list(tokens), lower
        self.index = {t: i for i, t in enumerate(self.tokens)}

    @classmethod
    def fit(cls, sentences: list[str], vocab_size: int, min_count: int = 2, lower: bool = True) -> WordTokenizer:
        """The vocab_size - 4 most frequent words seen at least min_count times (ties by first sight)."""
        counts = Counter(w for s in sentences for w in (s.lower() if lower else s).split())
        kept = [w for w, c in counts.most_common() if c >= min_count and w not in SPECIALS]
        return cls([*SPECIALS, *kept[:vocab_size - len(SPECIALS)]], lower)

    @property
    def vocab_size(self) -> int:
        return len(self.tokens)

    def encode(self, sentence: str) -> list[int]:
        text = sentence.lower() if self.lower else sentence
        return [self.index.get(w, UNK) for w in text.split()]

    def decode(self, ids) -> str:
        return " ".join(self.tokens[i] for i in ids if i not in (PAD, BOS, EOS))

    def to_dict(self) -> dict:
        return {"kind": self.kind, "lower": self.lower, "tokens": self.tokens}


class BPETokenizer:
    """Byte-pair encoding (Sennrich et al. 2016) by the `tokenizers` library, words marked by an end suffix so
    that decoding gives the words back."""

    kind = "bpe"

    def __init__(self, tokenizer, lower: bool = True):
        self.tok, self.lower = tokenizer, lower

    @classmethod
    def fit(cls, sentences: list[str], vocab_size: int, min_count: int = 2, lower: bool = True) -> BPETokenizer:
        from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

        tok = Tokenizer(models.BPE(unk_token="<unk>", end_of_word_suffix="</w>"))
        if lower:
            tok.normalizer = normalizers.Lowercase()
        tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        tok.decoder = decoders.BPEDecoder(suffix="</w>")
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_count, special_tokens=list(SPECIALS),
                                      end_of_word_suffix="</w>", show_progress=False)
        tok.train_from_iterator(sentences, trainer)
        return cls(tok, lower)

    @property
    def vocab_size(self) -> int:
        return self.tok.get_vocab_size()

    def encode(self, sentence: str) -> list[int]:
        return self.tok.encode(sentence).ids

    def decode(self, ids) -> str:
        return self.tok.decode([int(i) for i in ids if i not in (PAD, BOS, EOS)])

    def to_dict(self) -> dict:
        return {"kind": self.kind, "lower": self.lower, "tokenizer": json.loads(self.tok.to_str())}


TOKENIZERS = {"word": WordTokenizer, "bpe": BPETokenizer}


def fit_tokenizer(kind: str, sentences: list[str], vocab_size: int, min_count: int, lower: bool):
    if kind not in TOKENIZERS:
        raise VaekitError(f"unknown tokenizer '{kind}'; choose 'word' or 'bpe'")
    return TOKENIZERS[kind].fit(sentences, vocab_size, min_count, lower)


def tokenizer_from_dict(doc, where: str):
    """A tokenizer saved by to_dict(); a file of another shape is refused with what to do."""
    fix = f"{where} is not a vaekit tokenizer; replace it with a good copy, or train the run again"
    if not isinstance(doc, dict) or doc.get("kind") not in TOKENIZERS or not isinstance(doc.get("lower"), bool):
        raise VaekitError(fix)
    if doc["kind"] == "word":
        tokens = doc.get("tokens")
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens) \
                or tuple(tokens[:len(SPECIALS)]) != SPECIALS or len(set(tokens)) != len(tokens):
            raise VaekitError(fix + " (its token list is damaged)")
        return WordTokenizer(tokens, doc["lower"])
    from tokenizers import Tokenizer

    try:
        tok = Tokenizer.from_str(json.dumps(doc.get("tokenizer")))
    except Exception as e:  # the library's own parse error, of any type
        raise VaekitError(f"{fix} ({e})") from None
    if [tok.token_to_id(t) for t in SPECIALS] != [PAD, BOS, EOS, UNK]:
        raise VaekitError(fix + " (its special tokens are not <pad> <s> </s> <unk> as ids 0-3)")
    return BPETokenizer(tok, doc["lower"])
