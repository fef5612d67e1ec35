"""Train the mini model's tokenizer: a small BPE over the suite's own text, SentencePiece-style spaces."""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

SPECIAL = ["<unk>", "<s>", "</s>", "<pad>", "<image>"]


def train_tokenizer(corpus: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """A BPE tokenizer trained on ``corpus``, wrapped as llava-hf checkpoints wrap theirs.

    Metaspace pre-tokenisation keeps the spaces, so ``decode(encode(text)) == text``.
    Newlines and punctuation are tokens of their own, as in Llama's tokenizer: with Metaspace
    alone BPE merged across them ("red\nB." was one token), so an option's value and the
    next option's letter shared a token and each pairing had to be learned apart.
    ``<image>`` is a special token: the processor expands it to 576 patches.
    """
    tk = Tokenizer(models.BPE(unk_token="<unk>"))
    tk.normalizer = normalizers.NFKC()
    tk.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(r"[\n?.,:;!']"), behavior="isolated"),
        pre_tokenizers.Metaspace(prepend_scheme="first"),
    ])
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
        tokenizer_object=tk, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>",
        extra_special_tokens={"image_token": "<image>"},
    )
    fast.add_special_tokens({"additional_special_tokens": ["<image>"]})
    fast.padding_side = "left"
    return fast
