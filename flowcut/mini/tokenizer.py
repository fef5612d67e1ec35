"""Train the mini model's tokenizer: a small BPE over the suite's own text, SentencePiece-style spaces."""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

SPECIAL = ["<unk>", "<s>", "</s>", "<pad>", "<image>"]


def train_tokenizer(corpus: Iterable[str], vocab_size: int, split_punctuation: bool = False) -> PreTrainedTokenizerFast:
    """A BPE tokenizer trained on ``corpus``, wrapped as llava-hf checkpoints wrap theirs.

    Metaspace pre-tokenisation keeps the spaces, so ``decode(encode(text)) == text``.
    ``<image>`` is a special token: the processor expands it to 576 patches.

    Args:
        split_punctuation: newlines and punctuation become tokens of their own, as in Llama's
            tokenizer. Without it BPE merges across them ("red\nB." is one token), so an MCQ
            option's value shares a token with the next option's letter; the shipped checkpoint
            was trained that way, and the runs with the split named fewer places (NOTES.md).
    """
    tk = Tokenizer(models.BPE(unk_token="<unk>"))
    tk.normalizer = normalizers.NFKC()
    if split_punctuation:
        tk.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(r"[\n?.,:;!']"), behavior="isolated"),
            pre_tokenizers.Metaspace(prepend_scheme="first"),
        ])  # fmt: skip
    else:
        tk.pre_tokenizer = pre_tokenizers.Metaspace()
    tk.decoder = decoders.Metaspace()
    # like Llama's tokenizer, ``tokenizer(text)`` starts with <s>: training sequences do, and
    # evaluation prompts built by the adapters must too
    # every printable ASCII character is in the alphabet, so nothing typed becomes <unk>
    alphabet = [chr(c) for c in range(32, 127)] + ["\n"]
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL, initial_alphabet=alphabet)
    tk.train_from_iterator(corpus, trainer=trainer)
    tk.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A $B", special_tokens=[("<s>", tk.token_to_id("<s>"))]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tk,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        extra_special_tokens={"image_token": "<image>"},
    )
    fast.add_special_tokens({"additional_special_tokens": ["<image>"]})
    fast.padding_side = "left"
    return fast
