"""Text: sentences read from a file or folder (corpus), token ids by words or BPE (tokens), and padded,
length-bucketed batches (batches)."""
from .batches import TextBatches, TokenBatch, check_known, encode_sentences
from .corpus import read_sentences, split_sentences
from .tokens import BOS, EOS, PAD, SPECIALS, UNK, BPETokenizer, WordTokenizer, fit_tokenizer, tokenizer_from_dict

__all__ = ["TextBatches", "TokenBatch", "check_known", "encode_sentences", "read_sentences", "split_sentences",
           "BOS", "EOS", "PAD", "SPECIALS", "UNK", "BPETokenizer", "WordTokenizer", "fit_tokenizer",
           "tokenizer_from_dict"]
