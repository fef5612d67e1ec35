"""The mini LLaVA's prompt format (LLaVA-v1's) and how a dialogue becomes token ids and labels."""

from __future__ import annotations

TEMPLATE = "USER: <image>\n{q} ASSISTANT:"
CAPTION_Q = "Describe the image briefly."


def encode_dialogue(tok, turns: list[tuple[str, str]], n_img: int, image_id: int) -> tuple[list[int], list[int]]:
    """Token ids and labels of a multi-turn LLaVA-v1 dialogue; loss only on answers + </s>."""
    ids, labels = [tok.bos_token_id], [-100]
    for k, (q, a) in enumerate(turns):
        prompt = TEMPLATE.format(q=q) if k == 0 else f"USER: {q} ASSISTANT:"
        p = tok(prompt, add_special_tokens=False).input_ids
        if k == 0:
            at = p.index(image_id)
            p = p[:at] + [image_id] * n_img + p[at + 1 :]
        ans = tok(" " + a, add_special_tokens=False).input_ids + [tok.eos_token_id]
        ids += p + ans
        labels += [-100] * len(p) + ans
    return ids, labels
